"""Checkers for the notebooks' exercises: ``check(exercise_id, answer) -> bool``.

A checker runs the learner's answer on inputs of its own, compares the result with a reference (a
closed form, a library function or a hand count) and prints one line: ``✓ Exercise 01.2: right.``
or ``✗ Exercise 01.2: <a hint>``. A wrong answer, or one that raises, is reported, never raised.

An untouched stub (a function that raises ``NotImplementedError`` or returns ``...``, or the value
``...`` itself; see ``tutorial_lib.exercise_stubs``) is not an error either: ``check`` says so and
checks the reference solution of ``tutorial_lib.solutions`` instead, so that a notebook runs from
top to bottom as shipped; ``check_without_solution`` (the student copy's) only says "not yet", with
a first step, and never runs the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import numpy as np
import torch
from torch import Tensor

from tutorial_lib import solutions
from tutorial_lib.bounds import population_bounds, precise_bounds
from tutorial_lib.data.prepare import resize_slices
from tutorial_lib.descriptors import DESCRIPTORS, soft_centroid, soft_dist_centroid, soft_length
from tutorial_lib.exercise_stubs import not_yet_message
from tutorial_lib.exercise_tools import Hint, StubUntouched
from tutorial_lib.exercise_tools import as_tensor as _t
from tutorial_lib.exercise_tools import fmt as _fmt
from tutorial_lib.exercise_tools import run_answer as _run  # every checker runs answers through it
from tutorial_lib.exercise_tools import same as _same
from tutorial_lib.exercise_tools import wrong_shape as _wrong_shape
from tutorial_lib.exercises_what_works import WHAT_WORKS_EXERCISES
from tutorial_lib.metrics import dice_2d, dice_3d_per_volume
from tutorial_lib.penalties import log_barrier_extension
from tutorial_lib.schedules import LRSchedule
from tutorial_lib.widgets import make_shape


def _maps() -> list[Tensor]:
    """A few (H, W) float64 probability maps: random, a soft disk, a soft crescent off-centre."""
    g, f64 = torch.Generator().manual_seed(0), torch.float64
    return [
        torch.rand(5, 7, generator=g, dtype=f64),
        make_shape("disk", size=(20, 24), radius=6, softness=1.5, dtype=f64),
        make_shape("crescent", size=24, centre=(9.0, 14.0), radius=7, softness=0.8, dtype=f64),
    ]


def _masks() -> list[Tensor]:
    """A few binary (H, W) masks, one touching the border (pairs outside the image do not count)."""
    noise = (torch.rand(6, 10, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    square = torch.zeros(8, 9)
    square[2:6, 3:8] = 1
    return [square, noise, make_shape("disk", size=17, radius=8)]


# --- 01 ------------------------------------------------------------------------------------------
def _size(answer: object) -> Hint:
    for p in _maps():
        got, expected = _run(answer, p.clone()), p.sum()
        if _same(got, expected):
            continue
        if _same(got, (p > 0.5).sum()):
            return "your size counts pixels with p > 0.5; the soft size sums the probabilities"
        if _same(got, p.mean()):
            return "you averaged p; the size is a sum over pixels, not a mean"
        return f"on a {tuple(p.shape)} map you returned {_fmt(got)}, the size is {_fmt(expected)}"
    return None


def _centroid(answer: object) -> Hint:
    for p in _maps():
        got, expected = _run(answer, p.clone()), soft_centroid(p[None, None])[0, 0]
        if _same(got, expected):
            continue
        if _same(got, expected.flip(0)):
            return "your (row, col) are swapped: array order puts the row first"
        if _same(got, expected * p.sum()):
            return "divide the weighted sum of positions by the size (the sum of p)"
        return f"on a {tuple(p.shape)} map you returned {_fmt(got)}, expected {_fmt(expected)} (row, col)"
    return None


# --- 02 ------------------------------------------------------------------------------------------
def _spread(answer: object) -> Hint:
    for p in _maps():
        got, expected = _run(answer, p.clone()), soft_dist_centroid(p[None, None])[0, 0]
        if _same(got, expected, 1e-5):
            continue
        if _same(got, expected**2, 1e-5):
            return "you returned the variance; the spread is its square root (a distance in pixels)"
        if _same(got, expected.flip(0), 1e-5):
            return "your axes are swapped: return (row spread, col spread)"
        return f"on a {tuple(p.shape)} map you returned {_fmt(got)}, expected {_fmt(expected)}: measure from the centroid, weight by p, divide by the size"
    return None


def _length_4(answer: object) -> Hint:
    for m in _masks():
        got = _run(answer, m.clone())
        expected = soft_length(m[None, None], connectivity=4)[0, 0, 0]
        if _same(got, expected):
            continue
        if _same(got, soft_length(m[None, None])[0, 0, 0]):
            return "you counted diagonal pairs too: 4 neighbours are up, down, left, right only"
        if _same(got, 2 * expected):
            return "you counted each pair twice (once from each end); count a pair once"
        return f"on a {tuple(m.shape)} mask you returned {_fmt(got)}, expected {expected:.0f}: pairs that leave the image do not count"
    return None


# --- 03 ------------------------------------------------------------------------------------------
def _barrier(answer: object) -> Hint:
    for t in (1.0, 5.0, 20.0):
        for z in (-2.0, -0.5, -1e-3, 0.0, 0.3):
            x = torch.tensor(z, dtype=torch.float64, requires_grad=True)
            value = log_barrier_extension(x, t)
            (slope,) = torch.autograd.grad(value, x)
            got = _run(answer, z, t)
            if _same(got, (value.detach(), slope), 1e-9):
                continue
            if z > -1 / t**2:
                return f"at z = {z}, t = {t} you returned {_fmt(got)}: beyond z = -1/t² the extension is the straight line with slope t that meets -log(-z)/t there"
            return f"at z = {z}, t = {t} you returned {_fmt(got)}: inside, psi = -log(-z)/t; its slope is the derivative of that"
    return None


def _minimiser(answer: object) -> Hint:
    for a, upper, weight in ((3.0, 1.0, 1.0), (3.0, 1.0, 9.0), (0.5, 1.0, 4.0), (-2.0, 0.0, 0.5)):
        got = _run(answer, a, upper, weight)
        xs = torch.linspace(-5, 5, 200_001, dtype=torch.float64)  # the minimum, by brute force
        expected = xs[((xs - a) ** 2 + weight * torch.relu(xs - upper) ** 2).argmin()]
        if _same(got, expected, 1e-4):
            continue
        if a > upper and _same(got, upper):
            return "a penalty is soft: the minimiser lies between a and upper, nearer upper as the weight grows"
        if a > upper and _same(got, a):
            return "when a > upper the penalty pulls x down: set the derivative of both terms to 0"
        return f"for a = {a}, upper = {upper}, weight = {weight} you returned {_fmt(got)}"
    return None


# --- 04 ------------------------------------------------------------------------------------------
def _dice(answer: object) -> Hint:
    truth = torch.zeros(3, 8, 8, dtype=torch.long)
    truth[0, 2:6, 2:6] = 1  # slice 1 empty in both, slice 2 a false blob only
    pred = torch.zeros_like(truth)
    pred[0, 2:6, 3:7], pred[2, 0:2, 0:2] = 1, 1
    per_slice = dice_2d(pred, truth, 2)[:, 1]
    expected = (per_slice.nanmean(), dice_3d_per_volume(pred, truth, ["v"] * 3, 2)[1][0, 1])
    got = _run(answer, pred.bool(), truth.bool())
    if _same(got, expected):
        return None
    if _wrong_shape(got, expected):
        return "return two numbers: (2-D Dice, 3-D Dice)"
    if _same(got, expected[::-1]):
        return "return (2-D, 3-D) in that order"
    if _same(_t(got)[0], per_slice.nan_to_num(1.0).mean()):
        return "a slice empty in both masks has no Dice: skip it (the authors count 1)"
    if _same(_t(got)[0], per_slice.nan_to_num(0.0).mean()):
        return "a slice empty in both masks has no Dice: skip it rather than count 0"
    return f"on a 3-slice volume you returned {_fmt(got)}; 2-D: score each slice then average, 3-D: pool the counts first"


def _hd95(answer: object) -> Hint:
    a = torch.rand(30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 10
    b = torch.cat([a[:25] + 0.5, torch.tensor([[30.0, 30.0]], dtype=torch.float64)])  # one outlier
    d = torch.cdist(a, b)
    expected = torch.quantile(torch.cat([d.amin(1), d.amin(0)]), 0.95)
    got = _run(answer, a.clone(), b.clone())
    if _same(got, expected):
        return None
    if _same(got, torch.cat([d.amin(1), d.amin(0)]).max()):
        return "that is the Hausdorff distance (the maximum); HD95 takes the 95th percentile"
    if _same(got, torch.quantile(d.amin(1), 0.95)) or _same(got, torch.quantile(d.amin(0), 0.95)):
        return "measure both ways: each point of a to b, and each point of b to a, in one list"
    return f"you returned {_fmt(got)}, expected {_fmt(expected)}: nearest distances both ways, then the 95th percentile"


# --- 05 ------------------------------------------------------------------------------------------
def _halvings(answer: object) -> Hint:
    improved = {0, 3, 12, 47}  # the epochs where validation improved, over 120 epochs
    best_epochs = [max(e for e in improved if e <= i) for i in range(120)]
    schedule, stand_in = LRSchedule("paper", 1.0), SimpleNamespace(param_groups=[{"lr": 1.0}])
    expected = [i for i, b in enumerate(best_epochs) if schedule.step(i, b, stand_in)]
    got = _run(answer, list(best_epochs))
    if _same(got, expected):
        return None
    if _same(got, expected[1:]):
        return "the paper's rule fires after epoch 0 too: 0 % n is 0"
    if _same(got, [i for i in range(120) if i % 20 == 0]):
        return "the period is best_epoch + 20, and best_epoch moves as the run improves"
    return f"you returned {got}: the rule is a modulo, i % (best_epochs[i] + 20) == 0, not '20 epochs after the best'"


def _paper_centroid(answer: object) -> Hint:
    centroid = torch.tensor([[30.0, 12.5], [40.0, 41.0], [5.0, 8.0]])
    present = torch.tensor([True, False, True])
    margin = 20.0
    values = torch.where(present[:, None], centroid, 0.0)
    expected = precise_bounds(values, margin, "abs")
    got = _run(answer, centroid.clone(), present.clone(), margin)
    if _same(got, expected):
        return None
    if _wrong_shape(got, expected):
        return _wrong_shape(got, expected) + " ((image, axis, [lower, upper]))"
    if _same(_t(got)[1], [[-np.inf, np.inf]] * 2):
        return "that is the corrected policy; the paper reads an absent class as the value 0"
    if _same(_t(got)[1], precise_bounds(centroid, margin, "abs")[1]):
        return "the class is absent from image 1: the paper reads its centroid as (0, 0), not its stray value"
    if _same(_t(got)[2], [[-15.0, 25.0], [-12.0, 28.0]]):
        return "bounds are clamped below at 0"
    return f"you returned {_fmt(got)}; expected [v - margin, v + margin] clamped at 0"


# --- 06 ------------------------------------------------------------------------------------------
def _survivors(answer: object) -> Hint:
    shape = make_shape("ellipse", size=80, radius=25, aspect=0.7, angle=30)
    label = torch.stack([shape, shape.roll(7, 1)]).numpy().astype(np.uint8)  # (2, 80, 80)
    expected = int(resize_slices(label.astype(np.float32), label, 56, label_quirk=True)[1].sum())
    got = _run(answer, label.copy(), 56)
    if _same(got, expected):
        return None
    if _same(got, resize_slices(label.astype(np.float32), label, 56)[1].sum()):
        return "that is nearest-neighbour resizing (the library's); the authors resize bilinearly"
    return f"you returned {_fmt(got)}; a value of 0.99 after the bilinear resize is truncated to 0, not rounded to 1"


def _empty_share(answer: object) -> Hint:
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 2, (10, 6, 6), generator=g)
    labels[[0, 1, 7, 9]] = 0  # 4 of 10 slices without class 1
    got = _run(answer, labels.clone(), 1)
    if _same(got, 0.4):
        return None
    if _same(got, 0.6):
        return "you returned the share of slices that have the class"
    return f"you returned {_fmt(got)}: count slices (not pixels) where class k has no pixel, over all slices"


# --- 07 ------------------------------------------------------------------------------------------
def _quantiles(answer: object) -> Hint:
    g = torch.Generator().manual_seed(4)
    values = torch.rand(40, generator=g, dtype=torch.float64) * 500 + 100
    present = torch.ones(40, dtype=torch.bool)
    present[::5] = False
    values[~present] = 0.0  # an absent class has size 0
    table = values[:, None, None]  # (N, K = 1, n = 1), as population_bounds takes it
    for q in (0.0, 0.05, 0.25):
        got = _run(answer, values.clone(), present.clone(), q)
        expected = population_bounds(table, present[:, None], [0], quantiles=(q, 1 - q))[0, 0]
        if _same(got, expected):
            continue
        if _wrong_shape(got, expected):
            return _wrong_shape(got, expected) + " ([lower, upper])"
        if _same(_t(got)[0], torch.quantile(values, q)):
            return "images where the class is absent (value 0) must not count"
        if q > 0 and _same(got, [values[present].min(), values[present].max()]):
            return "min and max are the 0 and 1 quantiles; use q and 1 - q"
        return f"for q = {q} you returned {_fmt(got)}, expected {_fmt(expected)}"
    return None


def _coverage(answer: object) -> Hint:
    values = torch.tensor([[1.0, 5.0], [2.0, 9.0], [3.0, 5.0], [0.0, 0.0], [4.0, 6.0]])
    present = torch.tensor([True, True, True, False, True])
    bounds = torch.tensor([[1.0, 3.0], [4.0, 8.0]])  # inclusive: 1 and 3 are inside
    got = _run(answer, values.clone(), present.clone(), bounds.clone())
    if _same(got, 0.5):
        return None
    if _same(got, 0.75):
        return "an image is covered when all its values are inside, not on average over its values"
    if _same(got, 0.4) or _same(got, 0.6):
        return "only images where the class is present count"
    return f"you returned {_fmt(got)}: bounds are inclusive, lower <= v <= upper"


# --- 08 ------------------------------------------------------------------------------------------
def _percentage(answer: object) -> Hint:
    g = torch.Generator().manual_seed(5)
    values = torch.randn(4, 3, 2, generator=g, dtype=torch.float64) * 50
    for margin in (0.0, 0.1, 10.0):
        got = _run(answer, values.clone(), margin)
        if _same(got, precise_bounds(values, margin)):
            continue
        if _same(got, precise_bounds(values, margin, "abs")):
            return "the margin is a fraction of |v| (percentage mode), not an absolute amount"
        if _same(got, precise_bounds(values, margin, signed=True)):
            return "clamp the bounds below at 0"
        return f"with margin {margin}: expected shape {(*values.shape, 2)}, [v - m|v|, v + m|v|] clamped at 0"
    return None


def _volume(answer: object) -> Hint:
    label = torch.randint(0, 4, (5, 12, 10), generator=torch.Generator().manual_seed(6))
    spacing = (8.0, 1.25, 1.5)
    for k in (1, 3):
        expected = float((label == k).sum()) * 8.0 * 1.25 * 1.5 / 1000  # voxels x mm³ / 1000
        got = _run(answer, label.clone(), k, spacing)
        if _same(got, expected, 1e-9):
            continue
        if _same(got, expected * 1000):
            return "that is mm³; 1 mL = 1000 mm³"
        if _same(got, expected / 8.0):
            return "multiply the slices' areas by the slice thickness, spacing[0]"
        return f"for class {k} you returned {_fmt(got)}; spacing is (slice, row, col) in mm"
    return None


def _cube(answer: object) -> Hint:
    for s in (1, 2, 5):
        cube = torch.zeros(1, 1, s + 4, s + 4, s + 4)
        cube[..., 2 : 2 + s, 2 : 2 + s, 2 : 2 + s] = 1
        expected = int(soft_length(cube)[0, 0, 0])
        got = _run(answer, s)
        if _same(got, expected):
            continue
        if _same(got, 6 * s * s):
            return "6 s² counts face neighbours only; add the 6 edge and 4 corner offsets"
        return f"for s = {s} you returned {_fmt(got)}: count pairs both ways out of the cube, 2 (s³ - overlap)"
    return None


def _crescent(answer: object) -> Hint:
    name = _run(answer)
    if name not in DESCRIPTORS:
        return f"expected a name among {sorted(DESCRIPTORS)}, got {name!r}"
    crescent = make_shape("crescent", size=64, radius=18, dtype=torch.float64)[None, None]
    size, centre = float(crescent.sum()), tuple(soft_centroid(crescent)[0, 0].tolist())
    shape = dict(size=64, centre=centre, dtype=torch.float64)  # blobs of its size and centroid
    blobs = [  # a disk, and ellipses upright or lying, rounder to thinner
        make_shape("ellipse", radius=(size / (torch.pi * a)) ** 0.5, aspect=a, angle=r, **shape)
        for a in (1.0, 0.8, 0.6, 0.45, 0.3)
        for r in (0, 90)
    ]
    f, values = DESCRIPTORS[name], DESCRIPTORS[name](torch.stack(blobs)[:, None])[:, 0]
    gaps = (f(crescent)[0, 0] - values).norm(dim=-1) / values.norm(dim=-1).clamp_min(1e-9)
    if float(gaps.min()) > 0.5:  # more than 50 % away from every blob's value
        return None
    return f"a blob of the crescent's size and centroid comes within {float(gaps.min()):.0%} of the crescent's {name}"


EXERCISES: dict[str, tuple[Callable[[object], Hint], object]] = {
    "01.1": (_size, solutions.soft_size_by_hand),
    "01.2": (_centroid, solutions.centroid_by_hand),
    "02.1": (_spread, solutions.spread_by_hand),
    "02.2": (_length_4, solutions.length_4_by_hand),
    "03.1": (_barrier, solutions.barrier_value_and_slope),
    "03.2": (_minimiser, solutions.penalty_minimiser),
    "04.1": (_dice, solutions.dice_2d_and_3d),
    "04.2": (_hd95, solutions.hd95_of_points),
    "05.1": (_halvings, solutions.halving_epochs),
    "05.2": (_paper_centroid, solutions.paper_centroid_bounds),
    "06.1": (_survivors, solutions.surviving_pixels),
    "06.2": (_empty_share, solutions.empty_slice_fraction),
    "07.1": (_quantiles, solutions.quantile_bounds),
    "07.2": (_coverage, solutions.coverage),
    "08.1": (_percentage, solutions.percentage_bounds),
    "08.2": (_volume, solutions.volume_ml),
    "08.3": (_cube, solutions.cube_length_26),
    "08.4": (_crescent, solutions.CRESCENT_DESCRIPTOR),
    **WHAT_WORKS_EXERCISES,  # 04b.k, in their own module
}
"""Exercise id ("NN.k": notebook NN, exercise k) -> (checker, reference solution)."""


def run_check(exercise_id: str, answer: object, *, reference: bool = True) -> bool:
    """Check ``answer``, print one line, return True when right; an unknown id is a ValueError.

    On an untouched stub: checks the reference solution and says so (``reference=True``), or only
    prints "not yet" and a first step, and returns False (``reference=False``).
    """
    if exercise_id not in EXERCISES:
        raise ValueError(f"exercise_id: expected one of {sorted(EXERCISES)}, got {exercise_id!r}")
    checker, solution = EXERCISES[exercise_id]
    label = f"Exercise {exercise_id}"
    try:
        hint = checker(answer)
    except StubUntouched:
        if not reference:
            print(not_yet_message(exercise_id))
            return False
        hint = checker(solution)
        mark = "✓" if hint is None else f"✗ {hint}"
        print(f"{label}: not yet: the stub is untouched; checking the reference solution: {mark}")
        return hint is None
    except Exception as error:  # the learner's code may fail in any way: report it, never raise
        hint = f"your answer raised {type(error).__name__}: {error}"
    print(f"✓ {label}: right." if hint is None else f"✗ {label}: {hint}")
    return hint is None


def check(exercise_id: str, answer: object) -> None:
    """The notebooks' check: ``run_check``'s line, and no value for Jupyter to echo under it."""
    run_check(exercise_id, answer)


def check_without_solution(exercise_id: str, answer: object) -> None:
    """``check`` for the student copy: an untouched stub is "not yet", never the reference run."""
    run_check(exercise_id, answer, reference=False)
