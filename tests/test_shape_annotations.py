"""Closed-form descriptors of ellipses and boxes against the descriptors of their pixel masks.

Boxes: the closed forms are exact. Ellipses: the mask (pixel centres inside) differs from the
ellipse only in a band around the boundary, and the tolerances below follow from that band:

- every pixel square whose centre is on the other side of the boundary lies within
  ``d = sqrt(2) / 2`` of it, so the union of the mask's squares and the ellipse differ on at most
  the band's area ``B <= 2 d P + pi d^2`` (Steiner), with ``P <= pi sqrt(2 (a^2 + b^2))``;
- size: ``|N - pi a b| <= B``;
- centroid: sums of ``x - c`` over pixel centres equal integrals over their squares, and the
  ellipse's integral is 0: ``|dC| <= B (a + d) / (pi a b - B)``; exactly ``c`` for an integer
  centre (the pixel set is then symmetric about c);
- covariance (integer centre): the sum of ``(x - c)^2`` over pixel centres is the integral over
  their squares minus ``1/12`` each (the ``-1/12`` of the closed form), so
  ``|d cov| <= (B (a + d)^2 + (a^2 / 4) B) / (pi a b - B)``;
- length: on each grid line of an offset's direction that meets the ellipse, its pixels are one
  run, crossed twice; those lines number ``2 h(w) +- 1`` (integers in an interval of length
  ``2 h(w)``) less at most one per end whose chord is shorter than the pixel spacing along the line
  (here chords grow as ``2 sqrt(2 R t)`` with curvature radius ``R >= b^2 / a`` = 48 px): each
  offset gives ``4 h(w) - 6`` to ``4 h(w) + 2`` crossings.

The ellipses are large (semi-axes 120 to 300 px) so that these bounds are small: 1 to 2 % of the
size, under 10 % of the major variance, under 1 % of the length.
"""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.descriptors import DESCRIPTORS
from tutorial_lib.shape_annotations import box_descriptors, ellipse_descriptors

F64 = torch.float64
D = math.sqrt(2) / 2


def rasterise(shape, centre, a, b, theta):
    """The pixel centres inside the ellipse: (1, 1, H, W) float64."""
    rows = torch.arange(shape[0], dtype=F64)[:, None] - centre[0]
    cols = torch.arange(shape[1], dtype=F64)[None, :] - centre[1]
    u = rows * math.cos(theta) + cols * math.sin(theta)
    v = cols * math.cos(theta) - rows * math.sin(theta)
    return ((u / a) ** 2 + (v / b) ** 2 <= 1).to(F64)[None, None]


def measured(mask, name, **options):
    return DESCRIPTORS[name](mask, **options)[0, 0]


ELLIPSES = [  # (a, b, theta, centre): integer centres except the last
    (300.0, 120.0, 0.0, (310.0, 310.0)),
    (260.0, 150.0, 0.6, (300.0, 300.0)),
    (280.0, 160.0, -1.1, (300.0, 300.0)),
    (240.0, 200.0, 2.0, (260.3, 255.7)),
]


@pytest.mark.parametrize(("a", "b", "theta", "centre"), ELLIPSES)
def test_ellipse_closed_forms_against_the_pixel_mask(a, b, theta, centre):
    size = int(2 * max(centre) + 2)
    mask = rasterise((size, size), centre, a, b, theta)
    area = math.pi * a * b
    band = math.sqrt(2) * math.pi * math.sqrt(2 * (a * a + b * b)) + math.pi / 2
    closed = ellipse_descriptors(centre, (a, b), theta)
    assert abs(measured(mask, "size") - closed["size"][0]) <= band
    dc = (measured(mask, "centroid") - closed["centroid"]).abs().max()
    if all(float(c).is_integer() for c in centre):
        assert dc < 1e-9
        cov_tol = (band * (a + D) ** 2 + a * a / 4 * band) / (area - band)
        assert (measured(mask, "covariance") - closed["covariance"]).abs().max() <= cov_tol
        # the bound is under 10 % of the major variance: a^2/5 for a^2/4 (20 %) would fail
        assert cov_tol < 0.1 * a * a / 4
    else:
        assert dc <= band * (a + D) / (area - band)
    for connectivity, n_offsets in ((4, 2), (8, 4)):
        got = measured(mask, "length", connectivity=connectivity)
        expected = ellipse_descriptors(centre, (a, b), theta, connectivity=connectivity)["length"]
        assert -6 * n_offsets <= float(got - expected) <= 2 * n_offsets


def test_ellipse_facts_in_closed_form():
    """A disk's length is 4 (1 + sqrt 2) / pi times its perimeter; the covariance's angle is theta;
    the spread is the square root of the variances; batches broadcast."""
    disk = ellipse_descriptors((0.0, 0.0), (10.0, 10.0))
    assert math.isclose(disk["length"].item(), 4 * (1 + math.sqrt(2)) / math.pi * 2 * math.pi * 10)
    assert math.isclose(disk["size"].item(), math.pi * 100)
    thetas = torch.tensor([-1.2, -0.3, 0.0, 0.4, 1.5], dtype=F64)
    e = ellipse_descriptors(torch.zeros(5, 2), torch.tensor([9.0, 4.0]), thetas)
    rr, rc, cc = e["covariance"].unbind(-1)
    assert torch.allclose(0.5 * torch.atan2(2 * rc, rr - cc), thetas, atol=1e-12)
    assert torch.allclose(e["dist_centroid"], e["covariance"][:, [0, 2]].sqrt())
    assert {k: tuple(v.shape) for k, v in e.items()} == {
        "size": (5, 1),
        "centroid": (5, 2),
        "covariance": (5, 3),
        "dist_centroid": (5, 2),
        "length": (5, 1),
    }


@pytest.mark.parametrize("corners", [(3, 5, 12, 20), (7, 7, 7, 7), (2, 4, 2, 25), (0, 0, 17, 9)])
def test_box_closed_forms_are_exact(corners):
    r0, c0, r1, c1 = corners
    mask = torch.zeros(1, 1, r1 + 3, c1 + 3, dtype=F64)
    mask[..., r0 : r1 + 1, c0 : c1 + 1] = 1
    mask = torch.nn.functional.pad(mask, (2, 0, 2, 0))  # a margin on every side
    closed = box_descriptors((r0 + 2, c0 + 2, r1 + 2, c1 + 2))
    for name in ("size", "centroid", "covariance", "dist_centroid"):
        assert torch.allclose(measured(mask, name), closed[name], rtol=1e-9, atol=1e-9), name
    assert measured(mask, "length", connectivity=8) == closed["length"]
    four = box_descriptors((r0, c0, r1, c1), connectivity=4)["length"]
    assert measured(mask, "length", connectivity=4) == four


def test_bad_shapes_raise():
    with pytest.raises(
        ValueError, match=r"^centre: expected 2 numbers on the last axis, got shape \(3,\)"
    ):
        ellipse_descriptors((1.0, 2.0, 3.0), (2.0, 1.0))
    with pytest.raises(ValueError, match=r"^semi_axes: expected positive semi-axes"):
        ellipse_descriptors((1.0, 2.0), (2.0, 0.0))
    with pytest.raises(ValueError, match=r"^angle: expected finite numbers"):
        ellipse_descriptors((1.0, 2.0), (2.0, 1.0), math.nan)
    with pytest.raises(ValueError, match=r"^connectivity: expected 4 or 8, got 6"):
        ellipse_descriptors((1.0, 2.0), (2.0, 1.0), connectivity=6)
    with pytest.raises(ValueError, match=r"^corners: expected r0 <= r1 and c0 <= c1"):
        box_descriptors((5, 5, 4, 9))
    with pytest.raises(ValueError, match=r"^corners: expected 4 numbers on the last axis"):
        box_descriptors((5, 5, 4))
