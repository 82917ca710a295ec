"""The course's shapes and the reference values the explorers print, against hand counts."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.descriptors import soft_length
from tutorial_lib.widgets import make_shape, reference_perimeter


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
