"""The free-mask laboratory: a shape recovered from its descriptors, lost with loose margins or a
wrong annotation, and every bad argument refused with a clear message."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib.descriptors import DESCRIPTORS
from tutorial_lib.free_mask import DEFAULT_MARGINS, optimise_free_mask
from tutorial_lib.widgets import make_shape

DISK = make_shape("disk", size=64, radius=14, centre=(28.0, 36.0)).long()  # 613 pixels
ELLIPSE = make_shape(
    "ellipse", size=64, radius=18, aspect=0.55, angle=30, centre=(28.0, 36.0)
).long()
TIGHT = {"size": 0.05, "centroid": 1.0, "dist_centroid": 1.0, "length": 0.10}


pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_disk_is_recovered_from_its_four_descriptors():
    # measured: Dice 0.929, every constraint met. For a given area the disk has the smallest
    # spread, so size and spread within a pixel leave little else; 0.9 keeps a margin for
    # floating-point differences between machines
    result = optimise_free_mask(DISK, margins=TIGHT)
    assert result.final_dice > 0.9
    assert result.violated[-1] <= 1 / 12  # at most one side of the 12 (6 values) still broken
    assert result.dice[0] == 0.0  # the uniform start predicts background everywhere
    assert len(result.dice) == len(result.violated) == 301


def test_loosening_the_pixel_margins_lowers_the_dice_on_average():
    # measured (disk, ellipse): ±1 px 0.93, 0.80; ±10 px 0.76, 0.00 (the mask stays diffuse)
    def mean_dice(px: float) -> float:
        margins = {**TIGHT, "centroid": px, "dist_centroid": px}
        runs = [optimise_free_mask(shape, margins=margins) for shape in (DISK, ELLIPSE)]
        return sum(r.final_dice for r in runs) / len(runs)

    tight, loose = mean_dice(1.0), mean_dice(10.0)
    assert tight > loose + 0.2


def test_a_wrong_annotation_gives_the_wrong_shape():
    # the bounds of the same disk 22 px away: the mask follows the annotation, not the truth
    shifted = make_shape("disk", size=64, radius=14, centre=(46.0, 48.0)).long()
    wrong = optimise_free_mask(DISK, margins=TIGHT, bounds_from=shifted)
    followed = optimise_free_mask(shifted, margins=TIGHT)
    assert wrong.final_dice < 0.3 < 0.85 < followed.final_dice
    assert torch.allclose(wrong.values["centroid"], torch.tensor([[46.0, 48.0]]), atol=0.5)


def test_the_spread_is_the_descriptor_a_disk_cannot_do_without():
    # without the spread nothing keeps the mass together: measured Dice 0 (a diffuse map whose
    # probabilities stay below one half), against 0.93 with it
    without = optimise_free_mask(
        DISK, descriptors=("size", "centroid", "length"), margins=TIGHT, steps=150
    )
    assert without.final_dice < 0.5


def test_noise_moves_the_values_the_bounds_are_made_around():
    exact = optimise_free_mask(DISK, margins=TIGHT, steps=2)
    noisy = optimise_free_mask(DISK, margins=TIGHT, steps=2, noise=0.1, seed=3)
    again = optimise_free_mask(DISK, margins=TIGHT, steps=2, noise=0.1, seed=3)
    other = optimise_free_mask(DISK, margins=TIGHT, steps=2, noise=0.1, seed=4)
    assert float(exact.values["size"]) == float(DISK.sum())
    for name in TIGHT:
        assert torch.equal(noisy.values[name], again.values[name])
        assert not torch.equal(noisy.values[name], exact.values[name])
    assert not torch.equal(noisy.values["size"], other.values["size"])
    ratio = noisy.values["centroid"] / exact.values["centroid"]
    assert float((ratio - 1).abs().max()) < 0.5  # 1 + e, e ~ N(0, 0.1²)


def test_snapshots_and_the_redraw_callback():
    seen = []
    result = optimise_free_mask(
        DISK,
        steps=30,
        snapshot_every=10,
        on_snapshot=lambda r: seen.append((r.snapshots[-1][0], len(r.dice), r.dice[-1])),
    )
    assert [s for s, _ in result.snapshots] == [0, 10, 20, 30] == [s for s, *_ in seen]
    assert all(p.shape == (2, 64, 64) for _, p in result.snapshots)
    # the run so far: its curves end at the snapshot's step
    assert [(n, d) for _, n, d in seen] == [(s + 1, result.dice[s]) for s in (0, 10, 20, 30)]
    assert result.probs.shape == (2, 64, 64) and result.seconds > 0


def test_several_classes_are_constrained_and_scored_each():
    label = DISK.clone()
    label[make_shape("square", size=64, radius=6, centre=(48.0, 16.0)) > 0] = 2
    result = optimise_free_mask(label, margins=TIGHT)
    assert result.probs.shape == (3, 64, 64)
    assert result.values["size"].shape == (2, 1) and result.values["centroid"].shape == (2, 2)
    assert result.final_dice > 0.8  # measured 0.93: the mean of the two classes' Dice


def test_default_margins_are_notebook_03s():
    assert DEFAULT_MARGINS == {"size": 0.1, "centroid": 2.0, "dist_centroid": 1.0, "length": 0.1}
    assert set(DEFAULT_MARGINS) <= set(DESCRIPTORS)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": DISK.float()}, r"^target: expected a \(H, W\) integer label map"),
        ({"target": DISK[None]}, r"^target: expected .* got \(1, 64, 64\)"),
        (
            {"bounds_from": DISK[:32]},
            r"^bounds_from: expected the target's shape \(64, 64\), got \(32, 64\)",
        ),
        (
            {"descriptors": ("size", "moments")},
            r"^descriptors, margins: expected names among .*got \['moments'\]",
        ),
        ({"descriptors": "size"}, r"^descriptors: expected distinct names"),
        ({"descriptors": ()}, r"^descriptors: expected distinct names"),
        ({"margins": {"spread": 1.0}}, r"^descriptors, margins: expected names .*got \['spread'\]"),
        ({"margins": {"size": -1.0}}, r"^margin: expected a non-negative finite number, got -1.0"),
        ({"penalty": "l2"}, r"^penalty: expected one of \['log_barrier', 'quadratic'\], got 'l2'"),
        ({"steps": 0}, r"^steps: expected an integer in \[1, 100000\], got 0"),
        ({"lr": 0.0}, r"^lr: expected a finite number > 0, got 0.0"),
        ({"t_factor": 0.9}, r"^t_factor: expected a finite number >= 1, got 0.9"),
        ({"t_every": 0}, r"^t_every: expected an integer >= 1, got 0"),
        ({"noise": 1.5}, r"^noise: expected a relative error in \[0, 1\], got 1.5"),
        ({"noise": -0.1}, r"^noise: expected a finite number >= 0, got -0.1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    arguments = {"target": DISK, "steps": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        optimise_free_mask(**arguments)
