"""Descriptor values of the shapes an annotator draws: an ellipse or a box per structure.

Closed forms for the mask of the pixel centres inside the shape, in pixels, array order
(row, col), for the library's descriptors (``size``, ``centroid``, ``covariance``,
``dist_centroid``, ``length``). Each function takes batches (``...`` leading dimensions) and
returns ``{name: (..., n)}``, ready to fill ``WeakLabels.values``.

**Ellipse** with centre c, semi-axis a along u = (cos θ, sin θ) (θ from the row axis towards the
col axis, the convention of ``soft_orientation``) and semi-axis b along v = (-sin θ, cos θ):

- size ``pi a b``; centroid ``c``;
- covariance ``a²/4 u uᵀ + b²/4 v vᵀ - I/12``: a filled ellipse's second moments (``a²/4`` along
  its axis), rotated, less ``1/12`` px² per axis: sums over pixel centres miss each pixel's own
  spread (Sheppard's correction; a box of h pixels gives ``(h² - 1)/12``, not ``h²/12``);
- dist_centroid ``sqrt(cov_rr), sqrt(cov_cc)``;
- length, the Laplacian form (neighbour pairs with one end inside): for a convex shape the pairs
  of offset o cross its boundary twice on each grid line of direction o that meets it, and the
  lines that meet it span the shape's extent across o. With ``h(w) = sqrt(a² (w·u)² + b² (w·v)²)``
  the half-extent of ``w·x``: ``L4 = 4 (h(1, 0) + h(0, 1))`` and
  ``L8 = L4 + 4 (h(1, 1) + h(1, -1))``. For a disk, ``L8 = 8 (1 + √2) r``: ``4 (1 + √2) / pi``
  (3.07) times the perimeter ``2 pi r``. (Ramanujan's perimeter times 3.07 assumes an isotropic
  boundary; ``h`` follows the ellipse's direction.)

**Box** from inclusive pixel corners (r0, c0, r1, c1): h = r1 - r0 + 1 rows, w = c1 - c0 + 1
columns; exact: size ``h w``, centroid the middle, covariance ``((h² - 1)/12, 0, (w² - 1)/12)``,
``L4 = 2 (h + w)``, ``L8 = 6 (h + w) - 4`` (each diagonal direction crosses on h + w - 1 lines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["box_descriptors", "ellipse_descriptors"]

Numbers = float | Sequence[float] | Tensor
_OFFSETS = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, -1.0))  # 4-connectivity: the first two


def _tensor(x: Numbers, name: str, last: int | None) -> Tensor:
    t = torch.as_tensor(x, dtype=torch.float64)
    if last is not None and (t.ndim == 0 or t.shape[-1] != last):
        raise ValueError(
            f"{name}: expected {last} numbers on the last axis, got shape {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: expected finite numbers, got {x!r}")
    return t


def _check_connectivity(connectivity: int) -> int:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity: expected 4 or 8, got {connectivity!r}")
    return 2 if connectivity == 4 else 4


def ellipse_descriptors(
    centre: Numbers, semi_axes: Numbers, angle: Numbers = 0.0, *, connectivity: int = 8
) -> dict[str, Tensor]:
    """Descriptor values of filled ellipses (formulas in the module docstring), float64.

    ``centre`` (..., 2) (row, col) px; ``semi_axes`` (..., 2) (a, b) > 0 px, a along the direction
    at ``angle`` (..., radians) from the row axis. Shown in examples/train_your_own.py.
    """
    n_offsets = _check_connectivity(connectivity)
    c = _tensor(centre, "centre", 2)
    ab = _tensor(semi_axes, "semi_axes", 2)
    theta = _tensor(angle, "angle", None)
    if not bool((ab > 0).all()):
        raise ValueError(f"semi_axes: expected positive semi-axes, got {semi_axes!r}")
    batch = torch.broadcast_shapes(c.shape[:-1], ab.shape[:-1], theta.shape)
    c, ab, theta = c.expand(*batch, 2), ab.expand(*batch, 2), theta.expand(batch)
    a, b = ab[..., 0], ab[..., 1]
    cos, sin = theta.cos(), theta.sin()
    a2, b2 = a.square() / 4, b.square() / 4
    rr = a2 * cos.square() + b2 * sin.square() - 1 / 12
    cc = a2 * sin.square() + b2 * cos.square() - 1 / 12
    rc = (a2 - b2) * sin * cos
    cov = torch.stack([rr, rc, cc], dim=-1)
    length = sum(
        4 * ((a * (wr * cos + wc * sin)).square() + (b * (wc * cos - wr * sin)).square()).sqrt()
        for wr, wc in _OFFSETS[:n_offsets]
    )
    return _descriptors(math.pi * a * b, c, cov, length)


def box_descriptors(corners: Numbers, *, connectivity: int = 8) -> dict[str, Tensor]:
    """Descriptor values of filled boxes, exact (formulas in the module docstring), float64.

    ``corners`` (..., 4): (r0, c0, r1, c1), the first and last pixel rows and columns, inclusive.
    """
    n_offsets = _check_connectivity(connectivity)
    r0, c0, r1, c1 = _tensor(corners, "corners", 4).unbind(-1)
    h, w = r1 - r0 + 1, c1 - c0 + 1
    if not bool(((h >= 1) & (w >= 1)).all()):
        raise ValueError(f"corners: expected r0 <= r1 and c0 <= c1, got {corners!r}")
    cov = torch.stack([(h.square() - 1) / 12, torch.zeros_like(h), (w.square() - 1) / 12], dim=-1)
    length = 2 * (h + w) if n_offsets == 2 else 6 * (h + w) - 4
    return _descriptors(h * w, torch.stack([r0 + r1, c0 + c1], dim=-1) / 2, cov, length)


def _descriptors(size: Tensor, centroid: Tensor, cov: Tensor, length: Tensor) -> dict[str, Tensor]:
    """The values as {name: (..., n)}; the spread is the square root of the variances."""
    return {
        "size": size[..., None],
        "centroid": centroid,
        "covariance": cov,
        "dist_centroid": cov[..., [0, 2]].clamp_min(0).sqrt(),
        "length": length[..., None],
    }
