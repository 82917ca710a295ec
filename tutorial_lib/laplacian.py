"""The graph Laplacian of the pixel (voxel) grid, applied without building a matrix.

For a neighbourhood (4 / 8 in 2-D, 6 / 18 / 26 in 3-D; no wrap-around) and pair weights w,
``(L p)(x) = sum_{y ~ x} w_xy (p(x) - p(y))`` and the quadratic form is
``p^T L p = sum_{pairs x~y, once} w_xy (p(x) - p(y))^2``: the authors' soft length.

Fast paths (unit weights): with the full neighbourhood (8 / 26), ``L p = box count * p - box sum``
with the separable 3x3(x3) box sum (2 shifted in-place adds per axis); with the face neighbourhood
(4 / 6) the neighbour sum is 2 shifted adds per axis. Weighted pairs (a physical spacing) or
18-connectivity use one shifted difference per neighbour offset. The quadratic form is a custom autograd function whose
backward is ``2 L p`` (saved from the forward), so a forward+backward costs about 8 passes over p.
"""

from __future__ import annotations

import itertools
import math
from functools import cache, lru_cache

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = [
    "CONNECTIVITIES",
    "check_connectivity",
    "half_offsets",
    "laplacian_apply",
    "laplacian_form",
]

CONNECTIVITIES = {2: (4, 8), 3: (6, 18, 26)}
_MAX_L1 = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}


def check_connectivity(nd: int, connectivity: int | None) -> int:
    """The connectivity to use (default 8 in 2-D, 26 in 3-D); ValueError for an unknown one."""
    if connectivity is None:
        return 8 if nd == 2 else 26
    if nd not in CONNECTIVITIES or connectivity not in CONNECTIVITIES[nd]:
        raise ValueError(
            f"connectivity: expected one of {CONNECTIVITIES.get(nd, ())} for {nd}-D images, "
            f"got {connectivity!r}"
        )
    return connectivity


@cache
def half_offsets(nd: int, connectivity: int) -> tuple[tuple[int, ...], ...]:
    """One offset per unordered neighbour pair (its first non-zero component is +1)."""
    out = []
    for d in itertools.product((-1, 0, 1), repeat=nd):
        nz = [v for v in d if v != 0]
        if nz and nz[0] > 0 and sum(abs(v) for v in d) <= _MAX_L1[connectivity]:
            out.append(d)
    return tuple(out)


def _pair_slices(d: tuple[int, ...]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Slices selecting x + d (``hi``) and x (``lo``) over every pair inside the grid."""
    hi = [slice(None), slice(None)]
    lo = [slice(None), slice(None)]
    for v in d:
        hi.append(slice(1, None) if v > 0 else slice(None, -1) if v < 0 else slice(None))
        lo.append(slice(None, -1) if v > 0 else slice(1, None) if v < 0 else slice(None))
    return tuple(hi), tuple(lo)


def _axis_slices(ndim: int, axis: int, sl: slice) -> tuple[slice, ...]:
    out = [slice(None)] * ndim
    out[axis] = sl
    return tuple(out)


def _add_axis_neighbours_(out: Tensor, src: Tensor, axis: int, alpha: float = 1.0) -> Tensor:
    """out += alpha * (src shifted by +1 and by -1 along ``axis``, zero outside the grid), in place."""
    n = src.ndim
    lo, hi = _axis_slices(n, axis, slice(None, -1)), _axis_slices(n, axis, slice(1, None))
    # add_ on the view itself: `out[sl] += x` would also copy the view back onto itself
    out[hi].add_(src[lo], alpha=alpha)
    out[lo].add_(src[hi], alpha=alpha)
    return out


def _neighbour_sum(p: Tensor, connectivity: int) -> Tensor:
    """Sum of p over the unit-weight neighbours of each voxel (fast paths only)."""
    nd = p.ndim - 2
    if connectivity in (8, 26):  # separable box sum, minus the centre
        box = p
        for axis in range(2, p.ndim):
            box = _add_axis_neighbours_(box.clone(), box, axis)
        return box.sub_(p)
    out = torch.zeros_like(p)  # face neighbours: 4 / 6
    for axis in range(2, 2 + nd):
        _add_axis_neighbours_(out, p, axis)
    return out


def _box_laplacian(p: Tensor, count: Tensor) -> Tensor:
    """``L p = count * p - box(p)`` with the full neighbourhood (8 / 26); ``count = box(ones)``.

    box, the 3x3(x3) sum with the centre, is separable: ``c = -(sum along the last axes)`` comes
    from shifted in-place adds, then the first spatial axis adds c and its two shifts straight into
    ``count * p``. 2-D: 6 passes over p.
    """
    axes = list(range(2, p.ndim))
    c = _add_axis_neighbours_(p.neg(), p, axes[-1], alpha=-1.0)
    for axis in axes[1:-1]:  # 3-D: the middle axis
        c = _add_axis_neighbours_(c.clone(), c, axis)
    return _add_axis_neighbours_(torch.addcmul(c, count, p), c, axes[0])


@lru_cache(maxsize=16)
def _degree(
    spatial: tuple[int, ...], connectivity: int, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """Neighbours of each voxel (8 / 26: plus one, the box count that ``_box_laplacian`` takes)."""
    with torch.inference_mode(False):  # usable by autograd even if first made in inference mode
        ones = torch.ones((1, 1, *spatial), device=device, dtype=dtype)
        deg = _neighbour_sum(ones, connectivity)
        return deg.add_(1) if connectivity in (8, 26) else deg


def _pair_weight(d: tuple[int, ...], spacing: Tensor) -> Tensor:
    """voxel volume / physical length of d * index length of d: (B or 1,).

    A face pair gets the area (3-D) or length (2-D) of the face it crosses; unit spacing gives 1.
    """
    idx = torch.tensor(d, dtype=spacing.dtype, device=spacing.device)
    return spacing.prod(-1) / (idx * spacing).norm(dim=-1) * math.sqrt(sum(v * v for v in d))


def laplacian_apply(
    p: Tensor, connectivity: int | None = None, spacing: Tensor | None = None
) -> Tensor:
    """``L p`` for p (B, K, *spatial); ``spacing`` None or (B or 1, n_axes) weighs the pairs."""
    nd = p.ndim - 2
    conn = check_connectivity(nd, connectivity)
    if spacing is None and conn != 18:
        deg = _degree(tuple(p.shape[2:]), conn, p.device, p.dtype)
        if conn in (8, 26):
            return _box_laplacian(p, deg)
        return _neighbour_sum(p, conn).neg_().addcmul_(deg, p)
    out = torch.zeros_like(p)
    for d in half_offsets(nd, conn):
        hi, lo = _pair_slices(d)
        diff = p[hi] - p[lo]
        if spacing is not None:
            diff = diff * _pair_weight(d, spacing).view(-1, *([1] * (p.ndim - 1)))
        out[hi].add_(diff)
        out[lo].sub_(diff)
    return out


class _LaplacianForm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p: Tensor, connectivity: int | None, spacing: Tensor | None) -> Tensor:  # type: ignore[override]
        lp = laplacian_apply(p, connectivity, spacing)
        ctx.save_for_backward(lp)
        return (p * lp).sum(tuple(range(2, p.ndim)))[..., None]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        (lp,) = ctx.saved_tensors
        g = (2 * grad).view(*grad.shape[:2], *([1] * (lp.ndim - 2)))
        return lp * g, None, None


def laplacian_form(
    p: Tensor, connectivity: int | None = None, spacing: Tensor | None = None
) -> Tensor:
    """``p^T L p`` per image and class: (B, K, 1). Gradient ``2 L p``."""
    check_connectivity(p.ndim - 2, connectivity)
    if spacing is not None and spacing.requires_grad:
        raise ValueError("spacing: expected a constant tensor, got one that requires grad")
    return _LaplacianForm.apply(p, connectivity, spacing)
