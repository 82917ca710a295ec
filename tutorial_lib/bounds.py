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
  * ``"corrected"``: size and length (the ``extensive`` descriptors of
    ``tutorial_lib.descriptor_registry.DESCRIPTORS``) get ``[0, 0]``; every other descriptor (centroid,
    spread, compactness, moments) is left free.

The loss lays its bounds out as one column per (term, class, descriptor value) and makes all of
them in one call: ``column_bounds`` with the per-column rules of ``BoundRules``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

from tutorial_lib.descriptor_registry import DESCRIPTORS

__all__ = [
    "EMPTY_POLICIES",
    "MARGIN_MODES",
    "BoundRules",
    "bound_rules",
    "column_bounds",
    "constant_table",
    "labels_to_onehot",
    "margin_bounds",
    "population_bounds",
    "precise_bounds",
]

EMPTY_POLICIES = ("paper", "corrected")
MARGIN_MODES = ("percentage", "abs")

BoundValue = float | Sequence[float] | Sequence[Sequence[float]] | Tensor
# One column's rule: (descriptor, margin, mode, constant (lower, upper) or None for precise bounds)
ColumnRule = tuple[str, float, str, tuple[float, float] | None]


def check_policy(policy: str) -> None:
    if policy not in EMPTY_POLICIES:
        raise ValueError(f"empty_policy: expected one of {EMPTY_POLICIES}, got {policy!r}")


def check_mode(mode: str) -> None:
    if mode not in MARGIN_MODES:
        raise ValueError(f"mode: expected one of {MARGIN_MODES}, got {mode!r}")


def check_margin(margin: object) -> None:
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a non-negative finite number, got {margin!r}")


def split_margin(margin: float, mode: str) -> tuple[float, float]:
    """``(percentage part, absolute part)`` of a margin: ``m = pct * |v| + abs``, one of them 0."""
    return (float(margin), 0.0) if mode == "percentage" else (0.0, float(margin))


@lru_cache(maxsize=32)
def _pair(low: float, high: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The constant ``[low, high]`` (e.g. the signs ``[-1, 1]``), made once per dtype and device."""
    with torch.inference_mode(False):  # usable by autograd even if first made in inference mode
        return torch.tensor([low, high], dtype=dtype, device=device)


def margin_bounds(
    values: Tensor, pct_margin: Tensor, abs_margin: Tensor, clamp: bool | Tensor = True
) -> Tensor:
    """Precise bounds ``[v - m, v + m]`` with ``m = pct_margin * |v| + abs_margin``: (..., 2).

    ``pct_margin``, ``abs_margin`` and ``clamp`` (True: both sides clamped below at 0; a bool
    tensor: per value, False for signed descriptors) broadcast against ``values`` (e.g. one per
    column of a (B, columns) layout).
    """
    margin = torch.addcmul(abs_margin, values.abs(), pct_margin)
    sign = _pair(-1.0, 1.0, values.dtype, values.device)
    bounds = torch.addcmul(values[..., None], margin[..., None], sign)  # v -/+ m
    if isinstance(clamp, Tensor):
        return torch.where(clamp[..., None], bounds.clamp_min(0), bounds)
    return bounds.clamp_min_(0) if clamp else bounds


def precise_bounds(
    values: Tensor, margin: float, mode: str = "percentage", *, signed: bool = False
) -> Tensor:
    """``[v - m, v + m]`` per value, clamped below at 0 unless ``signed``: (..., n, 2).

    ``mode="percentage"``: ``m = margin * |v|``; ``mode="abs"``: ``m = margin``.
    Taught in notebook 05.
    """
    check_mode(mode)
    check_margin(margin)
    pct, ab = split_margin(margin, mode)
    return margin_bounds(values, values.new_tensor(pct), values.new_tensor(ab), not signed)


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
            f"lower, upper: expected tables that broadcast to one shape, got shapes "
            f"{tuple(lo.shape)} and {tuple(hi.shape)}"
        ) from err
    if (lo > hi).any():
        raise ValueError(
            f"bounds: expected lower <= upper, got lower={lo.tolist()} > upper={hi.tolist()}"
        )
    return torch.stack([lo, hi], dim=-1)


@dataclass(frozen=True)
class BoundRules:
    """How the bounds of each column (one value of one descriptor on one class) are made.

    Tensors of shape (columns,) unless said otherwise, on the device and dtype of the values:

    - ``pct_margin``, ``abs_margin``: precise bounds ``[v - m, v + m]``, ``m = pct |v| + abs``;
    - ``clamp``: bool, clamp the precise bounds below at 0 (False for signed descriptors);
    - ``constant``: bool, take the fixed bounds of ``table`` (columns, 2) instead;
    - ``extensive``: bool, an absent class gets ``[0, 0]`` under the corrected policy (else free).

    ``all_clamp``, ``any_constant``, ``all_constant`` and ``any_infinite`` (a constant side is
    ``±inf``) let ``column_bounds`` skip the work that cannot change anything.
    """

    pct_margin: Tensor
    abs_margin: Tensor
    clamp: Tensor
    constant: Tensor
    table: Tensor
    extensive: Tensor
    all_clamp: bool
    any_constant: bool
    all_constant: bool
    any_infinite: bool

    def may_be_free(self, policy: str) -> bool:
        """Can a side be infinite (unconstrained)? Only then must the loss mask sides out."""
        return policy == "corrected" or self.any_infinite


def bound_rules(
    columns: Sequence[ColumnRule], dtype: torch.dtype, device: torch.device | str
) -> BoundRules:
    """``BoundRules`` of the given columns; signed and extensive come from the descriptor registry."""
    entries = [DESCRIPTORS[name] for name, *_ in columns]
    margins = [split_margin(margin, mode) for _, margin, mode, _ in columns]
    constant = [fixed is not None for *_, fixed in columns]
    table = [(0.0, 0.0) if fixed is None else fixed for *_, fixed in columns]
    clamp = [not d.signed for d in entries]

    def tensor(values: list, dt: torch.dtype = dtype) -> Tensor:
        return torch.tensor(values, dtype=dt, device=device)

    return BoundRules(
        pct_margin=tensor([pct for pct, _ in margins]),
        abs_margin=tensor([ab for _, ab in margins]),
        clamp=tensor(clamp, torch.bool),
        constant=tensor(constant, torch.bool),
        table=tensor(table),
        extensive=tensor([d.extensive for d in entries], torch.bool),
        all_clamp=all(clamp),
        any_constant=any(constant),
        all_constant=all(constant),
        any_infinite=any(math.isinf(v) for lo_hi in table for v in lo_hi),
    )


def column_bounds(rules: BoundRules, values: Tensor, present: Tensor, policy: str) -> Tensor:
    """Bounds (B, columns, 2) from ground-truth ``values`` (B, columns), with the empty policy.

    ``present`` (B, columns): is the column's class in the ground truth? ``values`` of constant
    columns are not read (zeros will do). Steps: the paper policy reads an absent class as 0;
    precise bounds; constant columns take their table; the corrected policy sets absent classes
    to ``[0, 0]`` (extensive descriptors) or ``[-inf, inf]`` (the others).
    """
    if policy == "paper":  # the authors: an absent class reads as the value 0
        values = torch.where(present, values, 0.0)
    bounds = margin_bounds(
        values, rules.pct_margin, rules.abs_margin, True if rules.all_clamp else rules.clamp
    )
    if rules.any_constant:
        bounds = torch.where(rules.constant[:, None], rules.table, bounds)
    if policy == "corrected":
        absent = ~present
        to_zero = (absent & rules.extensive)[..., None]
        free = (absent & ~rules.extensive)[..., None]
        free_bounds = _pair(-math.inf, math.inf, bounds.dtype, bounds.device)
        bounds = torch.where(to_zero, 0.0, torch.where(free, free_bounds, bounds))
    return bounds


def labels_to_onehot(target: Tensor, n_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Integer labels (B, *spatial) -> one-hot (B, K, *spatial) of ``dtype``, in one pass.

    Taught in notebook 04.
    """
    classes = torch.arange(n_classes, device=target.device).view(
        1, n_classes, *([1] * (target.ndim - 1))
    )
    return (target.unsqueeze(1) == classes).to(dtype)


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
    Taught in notebook 07.
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
