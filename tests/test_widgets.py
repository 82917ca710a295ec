"""The course's shapes and the reference values the explorers print, against hand counts."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.descriptors import soft_length
from tutorial_lib.widgets import (
    bounds_explorer,
    bounds_figure,
    make_shape,
    quantile_bounds,
    reference_perimeter,
)


@pytest.mark.parametrize(("size", "side"), [(40, 20), (41, 21)])
def test_square_perimeter_counts_the_pixels_of_its_side(size, side):
    # centre 19.5 (even size): rows 10..29 hold the square; centre 20 (odd size): rows 10..30
    square = make_shape("square", size=size, radius=10.0)
    assert int(square.sum()) == side * side
    assert reference_perimeter("square", size=size, radius=10.0) == 4 * side


def test_length_over_perimeter_of_the_default_square():
    # the length explorer's default square: 20 px wide, perimeter 80, length / perimeter about 2.95
    m = make_shape("square", size=40, radius=10.0)
    ratio = float(soft_length(m[None, None])) / reference_perimeter("square", size=40, radius=10.0)
    assert 2.9 < ratio < 3.0


def test_disk_perimeter_is_the_circle_and_other_shapes_have_none():
    assert reference_perimeter("disk", size=40, radius=10.0) == pytest.approx(20 * math.pi)
    assert reference_perimeter("crescent", size=40, radius=10.0) is None


def test_octagon_is_the_regular_octagon_of_the_given_apothem():
    r = 30.0
    m = make_shape("octagon", size=96, radius=r, dtype=torch.float64)
    area = 8 * math.tan(math.pi / 8) * r**2  # regular octagon with apothem r
    assert abs(float(m.sum()) - area) / area < 0.02
    # symmetric under a quarter turn and a transpose, as its 8 grid-aligned sides are
    assert torch.equal(m, torch.rot90(m, 1, (0, 1)))
    assert torch.equal(m, m.T)
    # its widest row is 2r (+1) pixels, as a square's; its corners are cut at 45 degrees
    assert int(m.amax(1).sum()) in (2 * int(r), 2 * int(r) + 1)
    assert m[0].sum() == 0 and float(m.sum()) < (2 * r + 1) ** 2


def test_quantile_bounds_cut_from_the_population():
    values = {"lv": torch.arange(1.0, 101.0)}
    assert quantile_bounds(values, margin=0.0) == {"lv": (1.0, 100.0)}
    lo, hi = quantile_bounds(values, margin=0.1, quantile=0.1)["lv"]
    assert lo == pytest.approx(float(torch.quantile(values["lv"].double(), 0.1)) * 0.9)
    assert hi == pytest.approx(float(torch.quantile(values["lv"].double(), 0.9)) * 1.1)


def test_bounds_figure_shows_the_held_out_values_inside_the_training_bounds():
    train, held_out = {"lv": torch.arange(1.0, 101.0)}, {"lv": torch.tensor([50.0, 150.0])}
    fig = bounds_figure(train, margin=0.0, held_out=held_out)
    assert fig.axes[0].get_title() == "lv: 50% inside"  # 150 is outside [1, 100]
    assert bounds_figure(train, margin=0.0).axes[0].get_title() == "lv: 100% inside"


def test_explorer_sliders_redraw_on_release():
    box = bounds_explorer({"lv": torch.arange(1.0, 101.0)})
    sliders = box.children[0].children
    assert sliders and all(s.continuous_update is False for s in sliders)
