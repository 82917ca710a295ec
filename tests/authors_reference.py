"""Test-only re-implementation of the authors' formulation (Kervadec et al., MIDL 2021 code), from
the description in docs/method.md: coordinate grids, a sparse Laplacian matrix,
a Python loop over batch and class for the length, and a fixed working dtype (the authors cast to
float32; the tests pass float64). Written here for comparison; slow on purpose, never imported by
the library (the tests and ``benchmarks/descriptors.py`` import it). Extended to 3-D with the same
recipe (grids, 26-neighbour sparse Laplacian).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import torch
from torch import Tensor

EPS = 1e-10


def _grids(shape: tuple[int, ...], dtype: torch.dtype, device) -> list[Tensor]:
    axes = [torch.arange(n, dtype=dtype, device=device) for n in shape]
    return list(torch.meshgrid(*axes, indexing="ij"))


def ref_size(p: Tensor, dtype=torch.float32) -> Tensor:
    return p.to(dtype).sum(tuple(range(2, p.ndim)))[..., None]


def ref_centroid(p: Tensor, dtype=torch.float32) -> Tensor:
    x = p.to(dtype)
    tot = x.sum(tuple(range(2, p.ndim))) + EPS
    dims = tuple(range(2, p.ndim))
    return torch.stack(
        [(x * g).sum(dims) / tot for g in _grids(p.shape[2:], dtype, p.device)], dim=2
    )


def ref_dist_centroid(p: Tensor, dtype=torch.float32) -> Tensor:
    x = p.to(dtype)
    b, k, *shape = x.shape
    dims = tuple(range(2, p.ndim))
    sizes = x.sum(dims)
    out = []
    for g in _grids(tuple(shape), dtype, p.device):
        c = (x * g).sum(dims) / (sizes + EPS)
        diff = g.repeat(b, k, *([1] * len(shape))) - c.view(b, k, *([1] * len(shape)))
        out.append(((x * diff**2).sum(dims) / (sizes + EPS)).sqrt())
    return torch.stack(out, dim=2)


@lru_cache(maxsize=8)
def sparse_laplacian(shape: tuple[int, ...], connectivity: int, device=None) -> Tensor:
    """float64 sparse (N, N) Laplacian of the grid graph (no wrap-around)."""
    max_l1 = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    n = math.prod(shape)
    index = torch.arange(n).view(shape)
    rows, cols = [], []
    for d in itertools.product((-1, 0, 1), repeat=len(shape)):
        if not any(d) or sum(map(abs, d)) > max_l1:
            continue
        src = tuple(slice(max(0, -v), s - max(0, v)) for v, s in zip(d, shape, strict=True))
        dst = tuple(slice(max(0, v), s - max(0, -v)) for v, s in zip(d, shape, strict=True))
        rows.append(index[src].flatten())
        cols.append(index[dst].flatten())
    r, c = torch.cat(rows), torch.cat(cols)  # both directions are enumerated: A is symmetric
    adj = torch.sparse_coo_tensor(
        torch.stack([r, c]), torch.ones(len(r), dtype=torch.float64), (n, n), check_invariants=False
    )
    deg = torch.sparse_coo_tensor(
        torch.stack([torch.arange(n), torch.arange(n)]),
        torch.bincount(r, minlength=n).double(),
        (n, n),
        check_invariants=False,
    )
    return (deg - adj).coalesce().to(device)


def ref_length(p: Tensor, connectivity: int | None = None, dtype=torch.float32) -> Tensor:
    b, k, *shape = p.shape
    conn = connectivity or (8 if len(shape) == 2 else 26)
    lap = sparse_laplacian(tuple(shape), conn, p.device)
    out = []
    for i in range(b):
        row = []
        for j in range(k):
            x = p[i, j].flatten()[:, None].to(torch.float64)
            row.append((x.t() @ torch.sparse.mm(lap, x)).view(1).to(dtype))
        out.append(torch.stack(row))
    return torch.stack(out)


REF_DESCRIPTORS = {
    "size": ref_size,
    "centroid": ref_centroid,
    "dist_centroid": ref_dist_centroid,
    "length": ref_length,
}


def ref_precise_bounds(values: Tensor, margin: float, mode: str) -> Tensor:
    m = values * margin if mode == "percentage" else torch.ones_like(values) * margin
    return torch.stack([values - m, values + m], dim=-1).clamp_min(0)


def ref_log_barrier(z: Tensor, t: float) -> Tensor:
    """The authors' way: log(-z) evaluated everywhere, NaNs zeroed afterwards."""
    barrier = -torch.log(-z) / t
    barrier = torch.where(torch.isnan(barrier), torch.zeros_like(barrier), barrier)
    linear = t * z - math.log(1 / t**2) / t + 1 / t
    return torch.where(z <= -1 / t**2, barrier, linear)


def ref_term_bounds(onehot: Tensor, terms, dtype=torch.float32) -> list[Tensor]:
    """The authors' PreciseBounds of each term from the one-hot ground truth, as their data loader
    makes them: values of absent classes are 0, bounds clamped below at 0. ``terms``: (descriptor,
    classes, margin, mode, weight)."""
    with torch.no_grad():
        return [
            ref_precise_bounds(
                REF_DESCRIPTORS[name](onehot[:, list(classes)], dtype=dtype), m, mode
            )
            for name, classes, m, mode, _ in terms
        ]


def ref_loss_from_bounds(
    probs: Tensor, bounds: list[Tensor], terms, t: float, dtype=torch.float32
) -> Tensor:
    """Sum over terms of weight * sum(psi(f - upper) + psi(lower - f)) / (H W), with the bounds of
    ``ref_term_bounds`` (the benchmarks make them outside the timed region, as the authors do)."""
    norm = math.prod(probs.shape[2:])
    total = 0
    for (name, classes, _, _, weight), b in zip(terms, bounds, strict=True):
        value = REF_DESCRIPTORS[name](probs[:, list(classes)], dtype=dtype)
        z_up = value - b[..., 1]
        z_lo = b[..., 0] - value
        total = total + weight * (ref_log_barrier(z_up, t) + ref_log_barrier(z_lo, t)).sum() / norm
    return total


def ref_loss(probs: Tensor, onehot: Tensor, terms, t: float, dtype=torch.float32) -> Tensor:
    """The authors' loss: ``ref_term_bounds`` from ``onehot``, then ``ref_loss_from_bounds``."""
    return ref_loss_from_bounds(probs, ref_term_bounds(onehot, terms, dtype), terms, t, dtype)
