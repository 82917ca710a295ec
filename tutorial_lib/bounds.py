"""Bounds ``[lower, upper]`` for descriptor values: tensors of shape ``(B, K, n, 2)``.

``[..., 0]`` is the lower bound, ``[..., 1]`` the upper; ``-inf`` / ``+inf`` mean "no constraint on
that side" (the losses skip them).

- **Precise bounds** (the authors' ``PreciseBounds``): from the descriptor value v of the ground truth
  of the same (augmented) image, ``[v - m, v + m]`` with ``m = margin * |v|`` (``"percentage"``) or
  ``m = margin`` (``"abs"``), then clamped below at 0.
- **Constant bounds** (the authors' ``ConstantBounds``, the anatomical-prior form): fixed per class.
- **Empty-class policy**, for classes absent from the ground truth:

  * ``"paper"``: the authors' behaviour. The descriptor value of an absent class is taken as 0, so
    size and length get ``[0, 0]`` and centroid / spread get ``[0, margin]`` (``[0, 20]`` px with
    their settings): stray probability is pulled towards the image's top-left corner. Constant
    bounds are applied unchanged.
  * ``"corrected"``: size and length (``EXTENSIVE`` descriptors) get ``[0, 0]``; every other
    descriptor (centroid, spread, compactness, moments) is left free.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from tutorial_lib.descriptors import (
    EXTENSIVE,
    GEOMETRY_FNS,
    Geometry,
    SpacingLike,
    check_descriptor_name,
)

__all__ = [
    "EMPTY_POLICIES",
    "MARGIN_MODES",
    "SIGNED",
    "apply_empty_policy",
    "bounds_from_target",
    "check_bounds",
    "constant_bounds",
    "labels_to_onehot",
    "population_bounds",
    "precise_bounds",
]

EMPTY_POLICIES = ("paper", "corrected")
MARGIN_MODES = ("percentage", "abs")
# Descriptors that can be negative: their bounds are not clamped at 0.
SIGNED = frozenset({"covariance", "orientation"})

BoundValue = float | Sequence[float] | Sequence[Sequence[float]] | Tensor


def check_policy(policy: str) -> None:
    if policy not in EMPTY_POLICIES:
        raise ValueError(f"empty_policy: expected one of {EMPTY_POLICIES}, got {policy!r}")


def check_mode(mode: str) -> None:
    if mode not in MARGIN_MODES:
        raise ValueError(f"mode: expected one of {MARGIN_MODES}, got {mode!r}")


def precise_bounds(
    values: Tensor, margin: float, mode: str = "percentage", *, clamp_min: float | None = 0.0
) -> Tensor:
    """``[v - m, v + m]`` per value, clamped below at ``clamp_min`` (None: no clamp): (..., n, 2).

    ``mode="percentage"``: ``m = margin * |v|``; ``mode="abs"``: ``m = margin``.
    """
    check_mode(mode)
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a non-negative finite number, got {margin!r}")
    m = values.abs() * margin if mode == "percentage" else torch.full_like(values, float(margin))
    out = torch.stack([values - m, values + m], dim=-1)
    if clamp_min is not None:
        out = out.clamp_min(clamp_min)
    return out


def _as_table(value: BoundValue, n_classes: int, what: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.ndim == 0:
        t = t.reshape(1, 1)
    elif t.ndim == 1:
        if t.shape[0] != n_classes:
            raise ValueError(
                f"{what}: expected a number, one value per class ({n_classes}) or a "
                f"({n_classes}, n) table, got {t.shape[0]} values"
            )
        t = t[:, None]
    elif t.ndim != 2 or t.shape[0] != n_classes:
        raise ValueError(
            f"{what}: expected a number, one value per class ({n_classes}) or a ({n_classes}, n) "
            f"table, got shape {tuple(t.shape)}"
        )
    if torch.isnan(t).any():
        raise ValueError(
            f"{what}: expected numbers (inf allowed for 'no bound'), got NaN in {value!r}"
        )
    return t


def constant_table(lower: BoundValue | None, upper: BoundValue | None, n_classes: int) -> Tensor:
    """Validated (n_classes, n or 1, 2) float64 table of constant bounds (None: unbounded side)."""
    lo = _as_table(-math.inf if lower is None else lower, n_classes, "lower")
    hi = _as_table(math.inf if upper is None else upper, n_classes, "upper")
    try:
        lo, hi = torch.broadcast_tensors(lo, hi)
    except RuntimeError as err:
        raise ValueError(
            f"lower / upper: shapes {tuple(lo.shape)} and {tuple(hi.shape)} do not match"
        ) from err
    if (lo > hi).any():
        raise ValueError(
            f"bounds: expected lower <= upper, got lower={lo.tolist()} > upper={hi.tolist()}"
        )
    return torch.stack([lo, hi], dim=-1)


def constant_bounds(
    lower: BoundValue | None,
    upper: BoundValue | None,
    *,
    batch_size: int,
    n_classes: int,
    n_values: int,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Fixed bounds (the anatomical-prior form) expanded to ``(batch_size, n_classes, n_values, 2)``.

    ``lower`` / ``upper``: a number, one per class, or a ``(n_classes, n_values)`` table; None or
    ``±inf`` leaves that side free. Values are in the units of the descriptor (mm with a spacing).
    """
    table = constant_table(lower, upper, n_classes)
    if table.shape[1] not in (1, n_values):
        raise ValueError(f"bounds: expected {n_values} values per class, got {table.shape[1]}")
    return table.to(dtype=dtype, device=device).expand(batch_size, n_classes, n_values, 2)


def apply_empty_policy(bounds: Tensor, present: Tensor, descriptor: str, policy: str) -> Tensor:
    """Bounds (B, C, n, 2) with the policy applied where ``present`` (B, C) is False.

    ``"paper"`` returns ``bounds`` unchanged (for precise bounds, the paper's effect comes from
    computing them on the value 0: see ``bounds_from_values``). ``"corrected"``: absent classes get
    ``[0, 0]`` for size and length, ``[-inf, inf]`` (free) for every other descriptor.
    """
    check_policy(policy)
    if policy == "paper":
        return bounds
    if descriptor in EXTENSIVE:
        absent = torch.zeros((), dtype=bounds.dtype, device=bounds.device)
        return torch.where(present[..., None, None], bounds, absent)
    free = torch.tensor([-math.inf, math.inf], dtype=bounds.dtype, device=bounds.device)
    return torch.where(present[..., None, None], bounds, free)


def bounds_from_values(
    values: Tensor, present: Tensor, *, descriptor: str, margin: float, mode: str, policy: str
) -> Tensor:
    """Precise bounds (B, C, n, 2) from ground-truth values (B, C, n) with the empty-class policy."""
    check_policy(policy)
    clamp = None if descriptor in SIGNED else 0.0
    if policy == "paper":
        values = torch.where(
            present[..., None], values, torch.zeros((), dtype=values.dtype, device=values.device)
        )
        return precise_bounds(values, margin, mode, clamp_min=clamp)
    return apply_empty_policy(
        precise_bounds(values, margin, mode, clamp_min=clamp), present, descriptor, policy
    )


def labels_to_onehot(target: Tensor, n_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Integer labels (B, *spatial) -> one-hot (B, K, *spatial) of ``dtype``, in one pass."""
    classes = torch.arange(n_classes, device=target.device).view(
        1, n_classes, *([1] * (target.ndim - 1))
    )
    return (target.unsqueeze(1) == classes).to(dtype)


def bounds_from_target(
    target: Tensor,
    n_classes: int,
    descriptor: str,
    classes: Sequence[int],
    *,
    margin: float,
    mode: str = "percentage",
    policy: str = "paper",
    spacing: SpacingLike = None,
    **options,
) -> Tensor:
    """Precise bounds (B, len(classes), n, 2) of one descriptor from integer labels (B, *spatial)."""
    check_descriptor_name(descriptor)
    if target.ndim not in (3, 4) or target.is_floating_point():
        raise ValueError(
            f"target: expected integer labels of shape (B, H, W) or (B, D, H, W), got shape "
            f"{tuple(target.shape)} and dtype {target.dtype}"
        )
    idx = list(classes)
    with torch.no_grad():
        g = Geometry(labels_to_onehot(target, n_classes), spacing)
        values = GEOMETRY_FNS[descriptor](g, **options)[:, idx]
        present = g.mass()[:, idx, 0] > 0
        return bounds_from_values(
            values, present, descriptor=descriptor, margin=margin, mode=mode, policy=policy
        )


def check_bounds(bounds: Tensor, values: Tensor | None = None) -> None:
    """Raise ValueError unless ``bounds`` is (..., n, 2) (matching ``values`` (..., n)), NaN-free, lower <= upper."""
    if not isinstance(bounds, Tensor) or bounds.ndim < 2 or bounds.shape[-1] != 2:
        shape = tuple(bounds.shape) if isinstance(bounds, Tensor) else type(bounds).__name__
        raise ValueError(f"bounds: expected a tensor of shape (B, K, n, 2), got {shape}")
    if values is not None and tuple(bounds.shape[:-1]) != tuple(values.shape):
        raise ValueError(
            f"bounds: expected shape {(*values.shape, 2)} to match descriptor values of shape "
            f"{tuple(values.shape)}, got {tuple(bounds.shape)}"
        )
    if bool(torch.isnan(bounds).any()):
        raise ValueError("bounds: expected numbers (inf allowed for 'no bound'), got NaN")
    bad = bounds[..., 0] > bounds[..., 1]
    if bool(bad.any()):
        first = [int(i) for i in bad.nonzero()[0]]
        raise ValueError(
            f"bounds: expected lower <= upper, got lower={bounds[..., 0][bad][0].tolist()} > "
            f"upper={bounds[..., 1][bad][0].tolist()} at index {first}"
        )


def population_bounds(
    values: Tensor,
    present: Tensor,
    classes: Sequence[int],
    *,
    quantiles: tuple[float, float] = (0.0, 1.0),
    margin: float = 0.0,
) -> Tensor:
    """Constant bounds ``(len(classes), n, 2)`` from a population: the anatomical-prior form.

    ``values`` (N, K, n) are descriptor values of N ground truths, ``present`` (N, K) says where
    class k is in image i. For each class, over the images where it is present:
    ``[q_lo (1 - margin), q_hi (1 + margin)]`` with q the ``quantiles`` of the values (0 and 1: the
    population's min and max). Feed the result to ``DescriptorTerm(lower=b[..., 0], upper=b[..., 1])``.
    """
    if values.ndim != 3 or present.shape != values.shape[:2]:
        raise ValueError(
            f"values, present: expected shapes (N, K, n) and (N, K), got {tuple(values.shape)} "
            f"and {tuple(present.shape)}"
        )
    lo, hi = quantiles
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"quantiles: expected 0 <= low <= high <= 1, got {quantiles}")
    if margin < 0:
        raise ValueError(f"margin: expected a number >= 0, got {margin}")
    rows = []
    for k in classes:  # a handful of classes, once per population: not a hot path
        if not 0 <= k < values.shape[1]:
            raise ValueError(f"classes: expected indices below {values.shape[1]}, got {k}")
        v = values[present[:, k].bool(), k].to(torch.promote_types(values.dtype, torch.float32))
        if v.shape[0] == 0:
            raise ValueError(
                f"class {k}: expected at least one image where it is present, got none"
            )
        q = torch.quantile(v, torch.tensor([lo, hi], dtype=v.dtype, device=v.device), dim=0)
        rows.append(torch.stack([q[0] * (1 - margin), q[1] * (1 + margin)], dim=-1))
    return torch.stack(rows)
