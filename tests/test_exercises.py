"""The exercise checkers: each accepts its reference solution, rejects a typical wrong answer with
a hint, and runs the reference (and says so) when the notebook's stub is untouched; the student
copy's check says "not yet" with a first step instead, and never runs the reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tutorial_lib import solutions
from tutorial_lib.data.prepare import resize_slices
from tutorial_lib.descriptors import soft_length
from tutorial_lib.exercise_stubs import START_HINTS, not_yet_message
from tutorial_lib.exercises import EXERCISES, check, check_without_solution, run_check


# --- one typical wrong answer per exercise, and a fragment of the hint it must get -------------
def _hard_size(p):
    return (p > 0.5).sum()


def _swapped_centroid(p):
    return solutions.centroid_by_hand(p).flip(0)


def _variance(p):
    return solutions.spread_by_hand(p) ** 2


def _length_8(mask):
    return int(soft_length(mask[None, None])[0, 0, 0])


def _log_only(z, t):  # forgets the linear extension: log of a non-positive number beyond -1/t²
    return -math.log(-z) / t, -1 / (t * z)


def _hard_constraint(a, upper, weight):
    return min(a, upper)


def _dice_empty_is_one(pred, truth):
    inter = (pred & truth).flatten(1).sum(1).double()
    total = (pred.flatten(1).sum(1) + truth.flatten(1).sum(1)).double()
    per_slice = torch.where(total > 0, 2 * inter / total.clamp_min(1), 1.0)
    return float(per_slice.mean()), float(2 * inter.sum() / total.sum())


def _hausdorff(a, b):
    d = torch.cdist(a, b)
    return float(torch.cat([d.amin(1), d.amin(0)]).max())


def _skip_epoch0(best_epochs):
    return [i for i, b in enumerate(best_epochs) if i > 0 and i % (b + 20) == 0]


def _corrected_policy(centroid, present, margin):
    bounds = solutions.paper_centroid_bounds(centroid, present, margin)
    bounds[~present] = torch.tensor([-math.inf, math.inf])
    return bounds


def _nearest(label, size):
    return int(resize_slices(label.astype(np.float32), label, size)[1].sum())


def _share_with_class(labels, k):
    return 1 - solutions.empty_slice_fraction(labels, k)


def _absent_counted(values, present, q):
    return torch.quantile(values.double(), torch.tensor([q, 1 - q], dtype=torch.float64))


def _mean_per_value(values, present, bounds):
    kept = values[present]
    return float(((kept >= bounds[:, 0]) & (kept <= bounds[:, 1])).double().mean())


def _not_clamped(values, margin):
    m = margin * values.abs()
    return torch.stack([values - m, values + m], dim=-1)


def _in_mm3(label, k, spacing):
    return solutions.volume_ml(label, k, spacing) * 1000


def _faces_only(s):
    return 6 * s * s


def _rolled(mask, shift):  # torch.roll wraps the pixels pushed out back in on the other side
    moved = mask.bool().roll(shift, 1)
    return float(2 * (mask.bool() & moved).sum() / (mask.bool().sum() + moved.sum()))


def _symmetric(noise, margin):  # |e| > m: forgets that the bounds are around the noisy value
    return 2 * (1 - 0.5 * (1 + math.erf(margin / noise / math.sqrt(2))))


WRONG = {
    "01.1": (_hard_size, "p > 0.5"),
    "01.2": (_swapped_centroid, "swapped"),
    "02.1": (_variance, "variance"),
    "02.2": (_length_8, "diagonal"),
    "03.1": (_log_only, "beyond z = -1/t²"),
    "03.2": (_hard_constraint, "a penalty is soft"),
    "04.1": (_dice_empty_is_one, "authors count 1"),
    "04.2": (_hausdorff, "Hausdorff"),
    "05.1": (_skip_epoch0, "after epoch 0 too"),
    "05.2": (_corrected_policy, "corrected policy"),
    "06.1": (_nearest, "nearest-neighbour"),
    "06.2": (_share_with_class, "share of slices that have"),
    "07.1": (_absent_counted, "absent"),
    "07.2": (_mean_per_value, "all its values"),
    "08.1": (_not_clamped, "clamp"),
    "08.2": (_in_mm3, "mm³"),
    "08.3": (_faces_only, "face neighbours"),
    "08.4": ("size", "a blob of the crescent's size"),
    "04b.1": (_rolled, "torch.roll"),
    "04b.2": (_symmetric, "around the noisy value"),
}
IDS = sorted(EXERCISES)


def _stub(*args):
    raise NotImplementedError


def _stub_returning_ellipsis(*args):
    return ...


def test_every_exercise_has_a_wrong_answer_here() -> None:
    assert sorted(WRONG) == IDS


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_solution_is_right(exercise_id: str, capsys) -> None:
    reference = EXERCISES[exercise_id][1]
    assert run_check(exercise_id, reference) is True
    assert capsys.readouterr().out == f"✓ Exercise {exercise_id}: right.\n"


@pytest.mark.parametrize("exercise_id", IDS)
def test_typical_wrong_answer_gets_a_hint(exercise_id: str, capsys) -> None:
    wrong, fragment = WRONG[exercise_id]
    assert run_check(exercise_id, wrong) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ Exercise {exercise_id}: ") and out.count("\n") == 1
    assert fragment in out


@pytest.mark.parametrize("exercise_id", IDS)
def test_untouched_stub_checks_the_reference(exercise_id: str, capsys) -> None:
    stubs = [_stub, _stub_returning_ellipsis] if callable(EXERCISES[exercise_id][1]) else [...]
    for stub in stubs:
        assert run_check(exercise_id, stub) is True
        assert capsys.readouterr().out == (
            f"Exercise {exercise_id}: not yet: the stub is untouched; "
            "checking the reference solution: ✓\n"
        )


@pytest.mark.parametrize("exercise_id", IDS)
def test_an_answer_that_raises_is_reported(exercise_id: str, capsys) -> None:
    def broken(*args):
        raise ZeroDivisionError("division by zero")

    answer = broken if callable(EXERCISES[exercise_id][1]) else 42
    assert run_check(exercise_id, answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ Exercise {exercise_id}: ") and out.count("\n") == 1


def test_the_chapter_04b_checkers_need_their_reference_to_be_exact(capsys) -> None:
    # a Dice off by one pixel, and a probability off by 0.01, are answers the checkers refuse
    def one_pixel_off(mask, shift):
        return solutions.dice_after_shift(mask, shift) * 0.999

    def slightly_off(noise, margin):
        return solutions.truth_outside_probability(noise, margin) + 0.01

    assert run_check("04b.1", one_pixel_off) is False
    assert run_check("04b.2", slightly_off) is False
    out = capsys.readouterr().out
    assert "expected" in out and "a simulation gives" in out


def test_unknown_exercise_id_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"^exercise_id: expected one of .*got '09.1'"):
        run_check("09.1", solutions.soft_size_by_hand)


# --- the student copy's check: no reference solution behind an untouched stub -------------------
def test_every_exercise_has_a_first_step_that_is_not_the_answer() -> None:
    assert sorted(START_HINTS) == IDS
    assert solutions.CRESCENT_DESCRIPTOR not in START_HINTS["08.4"]


def _stubs_for(exercise_id: str) -> list:
    return [_stub, _stub_returning_ellipsis] if callable(EXERCISES[exercise_id][1]) else [...]


@pytest.mark.parametrize("exercise_id", IDS)
def test_without_solution_an_untouched_stub_is_not_yet(exercise_id, capsys, monkeypatch) -> None:
    checker, solution = EXERCISES[exercise_id]
    seen = []

    def recording(answer):
        seen.append(answer)
        return checker(answer)

    monkeypatch.setitem(EXERCISES, exercise_id, (recording, solution))
    for stub in _stubs_for(exercise_id):
        assert run_check(exercise_id, stub, reference=False) is False
        out = capsys.readouterr().out
        assert out == not_yet_message(exercise_id) + "\n"
        assert "reference" not in out and START_HINTS[exercise_id] in out
    assert all(answer is not solution for answer in seen)  # the reference never ran
    assert len(seen) == len(_stubs_for(exercise_id))


@pytest.mark.parametrize("exercise_id", IDS)
def test_without_solution_right_and_wrong_answers_are_told(exercise_id, capsys) -> None:
    assert run_check(exercise_id, EXERCISES[exercise_id][1], reference=False) is True
    assert capsys.readouterr().out == f"✓ Exercise {exercise_id}: right.\n"
    wrong, fragment = WRONG[exercise_id]
    assert run_check(exercise_id, wrong, reference=False) is False
    out = capsys.readouterr().out
    assert out.startswith(f"✗ Exercise {exercise_id}: ") and fragment in out


@pytest.mark.parametrize("exercise_id", ["01.1", "04b.1", "08.4"])
def test_the_notebook_checks_print_the_verdict_and_return_nothing(exercise_id, capsys) -> None:
    # a cell that ends with check(...) must show the ✓/✗ line and no echoed True or False under it
    right, (wrong, _) = EXERCISES[exercise_id][1], WRONG[exercise_id]
    for answer in (right, wrong):
        for notebook_check, reference in ((check, True), (check_without_solution, False)):
            assert notebook_check(exercise_id, answer) is None
            shown = capsys.readouterr().out
            run_check(exercise_id, answer, reference=reference)
            assert shown == capsys.readouterr().out and shown.count("\n") == 1
