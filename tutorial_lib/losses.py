"""Losses: shape-descriptor constraints (the paper's loss) and the cross-entropy baseline.

A ``ShapeDescriptorLoss`` is a list of ``DescriptorTerm`` (data, not strings that are evaluated),
a penalty (``"log_barrier"`` or ``"quadratic"``), a normalisation and an empty-class policy::

    loss = sum_terms weight * sum_{b, class, value, side} psi_t(z) / norm

with ``z = f - upper`` and ``z = lower - f``; ``norm = H * W`` (``"paper"``: a sum over the batch,
divided by the number of pixels) or ``B * H * W`` (``"batch_mean"``: the same per-image scale for
every batch size). Bounds are computed inside ``forward`` from the (augmented) target, or are
constant per class (anatomical priors). See ``paper_terms`` for the authors' settings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tutorial_lib.bounds import (
    SIGNED,
    BoundValue,
    check_mode,
    check_policy,
    constant_table,
    labels_to_onehot,
)
from tutorial_lib.descriptors import (
    EXTENSIVE,
    GEOMETRY_FNS,
    Geometry,
    SpacingLike,
    check_descriptor_name,
    check_probs,
    descriptor_size,
)
from tutorial_lib.penalties import PENALTIES, check_penalty_name

__all__ = [
    "NORMALISATIONS",
    "DescriptorTerm",
    "ShapeDescriptorLoss",
    "cross_entropy_loss",
    "paper_loss",
    "paper_terms",
]

NORMALISATIONS = ("paper", "batch_mean")


@dataclass(frozen=True)
class DescriptorTerm:
    """One constrained descriptor on some classes.

    - ``descriptor``: a key of ``tutorial_lib.descriptors.DESCRIPTORS`` (``"size"``, ``"centroid"``, ...).
    - ``classes``: the class indices constrained.
    - ``margin`` / ``mode``: precise bounds ``[v - m, v + m]`` around the ground truth's value v,
      ``m = margin * |v|`` (``"percentage"``) or ``m = margin`` (``"abs"``).
    - ``lower`` / ``upper``: constant bounds instead (anatomical priors): a number, one per class, or
      a (len(classes), n) table; None / ``±inf`` leaves a side free. Given either, margin is unused.
    - ``weight``: factor of this term in the loss (the paper: 1e-2).
    - ``options``: keyword options of the descriptor (e.g. ``{"connectivity": 4}`` for the length).
    - ``physical``: compute in mm with the ``spacing`` passed to ``forward``.
    - ``name``: label in ``last_stats`` (default: the descriptor's name).
    """

    descriptor: str
    classes: tuple[int, ...]
    margin: float = 0.1
    mode: str = "percentage"
    weight: float = 1e-2
    options: Mapping[str, Any] = field(default_factory=dict)
    lower: BoundValue | None = None
    upper: BoundValue | None = None
    physical: bool = False
    name: str | None = None

    def __post_init__(self) -> None:
        check_descriptor_name(self.descriptor)
        classes = (self.classes,) if isinstance(self.classes, int) else tuple(self.classes)
        if not classes or any(
            not isinstance(c, int) or isinstance(c, bool) or c < 0 for c in classes
        ):
            raise ValueError(
                f"classes: expected a non-empty sequence of class indices >= 0, got {self.classes!r}"
            )
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes: expected distinct class indices, got {self.classes!r}")
        object.__setattr__(self, "classes", classes)
        check_mode(self.mode)
        if not (
            isinstance(self.margin, (int, float))
            and math.isfinite(self.margin)
            and self.margin >= 0
        ):
            raise ValueError(f"margin: expected a non-negative finite number, got {self.margin!r}")
        if not (
            isinstance(self.weight, (int, float))
            and math.isfinite(self.weight)
            and self.weight >= 0
        ):
            raise ValueError(f"weight: expected a non-negative finite number, got {self.weight!r}")
        if self.is_constant:
            constant_table(
                self.lower, self.upper, len(classes)
            )  # validates shape and lower <= upper

    @property
    def is_constant(self) -> bool:
        return self.lower is not None or self.upper is not None

    @property
    def label(self) -> str:
        return self.name or self.descriptor


def paper_terms(dataset: str, *, weight: float = 1e-2) -> list[DescriptorTerm]:
    """The authors' terms: size ±10 %, centroid ±20 px, spread ±20 px, length margin 10 (percentage).

    ``"acdc"``: classes 1, 2, 3 (RV, myocardium, LV) for every term. ``"promise12"`` (also for MSD
    prostate): size on classes 0 and 1, the other three on class 1. Length ``margin=10`` in
    percentage mode gives ``[0, 11 L]``: faithful to the authors' recipe (probably meant as 10 %).
    """
    key = dataset.lower()
    if key == "acdc":
        size_cls, other_cls = (1, 2, 3), (1, 2, 3)
    elif key in ("promise12", "prostate", "msd_prostate"):
        size_cls, other_cls = (0, 1), (1,)
    else:
        raise ValueError(f"dataset: expected 'acdc' or 'promise12', got {dataset!r}")
    return [
        DescriptorTerm("size", size_cls, margin=0.1, mode="percentage", weight=weight),
        DescriptorTerm("centroid", other_cls, margin=20, mode="abs", weight=weight),
        DescriptorTerm("dist_centroid", other_cls, margin=20, mode="abs", weight=weight),
        DescriptorTerm("length", other_cls, margin=10, mode="percentage", weight=weight),
    ]


class ShapeDescriptorLoss(nn.Module):
    """Sum of penalised descriptor constraints (see the module docstring).

    ``forward(probs, target, t, spacing=None)``: ``probs`` (B, K, *spatial) softmax probabilities,
    ``target`` (B, *spatial) integer labels (None only if every term has constant bounds and the
    policy is ``"paper"``), ``t`` the penalty parameter, ``spacing`` (n_axes,) or (B, n_axes) mm for
    ``physical`` terms. Descriptors run in float32 at least, outside autocast.

    ``check_inputs`` (default True) also checks probs for NaN and labels for range, one read-back
    from the device per call; turn it off in a tuned training loop. After each call, ``last_stats``
    holds detached scalars per term: ``<label>/loss``, ``<label>/violation`` (mean ``relu(z)`` over
    the active constraints, in descriptor units) and ``<label>/frac_violated``, plus ``total``.
    """

    def __init__(
        self,
        terms: Sequence[DescriptorTerm],
        penalty: str = "log_barrier",
        normalisation: str = "paper",
        empty_policy: str = "paper",
        *,
        check_inputs: bool = True,
        collect_stats: bool = True,
    ) -> None:
        super().__init__()
        terms = list(terms)
        if not terms or not all(isinstance(t, DescriptorTerm) for t in terms):
            raise ValueError(
                f"terms: expected a non-empty sequence of DescriptorTerm, got {terms!r}"
            )
        check_penalty_name(penalty)
        if normalisation not in NORMALISATIONS:
            raise ValueError(
                f"normalisation: expected one of {NORMALISATIONS}, got {normalisation!r}"
            )
        check_policy(empty_policy)
        self.terms = terms
        self.penalty = penalty
        self.normalisation = normalisation
        self.empty_policy = empty_policy
        self.check_inputs = check_inputs
        self.collect_stats = collect_stats
        self.labels = _unique_labels(terms)
        self._tables = [
            constant_table(t.lower, t.upper, len(t.classes)) if t.is_constant else None
            for t in terms
        ]
        self._device_cache: dict[tuple, Tensor] = {}
        self.last_stats: dict[str, Tensor] = {}

    def extra_repr(self) -> str:
        names = ", ".join(f"{t.label}{list(t.classes)}" for t in self.terms)
        return f"terms=[{names}], penalty={self.penalty!r}, normalisation={self.normalisation!r}, empty_policy={self.empty_policy!r}"

    # -- validation -----------------------------------------------------------------------------
    def _validate(self, probs: Tensor, target: Tensor | None, spacing: SpacingLike) -> None:
        check_probs(probs, "probs", check_nan=False)
        B, K, *spatial = probs.shape
        top = max(max(t.classes) for t in self.terms)
        if top >= K:
            raise ValueError(
                f"probs: terms constrain class {top}, so expected K > {top} channels, got K = {K}"
            )
        needs_target = any(not t.is_constant for t in self.terms) or self.empty_policy != "paper"
        if target is None:
            if needs_target:
                raise ValueError(
                    "target: expected integer labels (B, *spatial); got None (needed by precise bounds or the empty policy)"
                )
        else:
            if not isinstance(target, Tensor) or target.is_floating_point() or target.is_complex():
                raise ValueError(
                    f"target: expected an integer label tensor, got {getattr(target, 'dtype', type(target).__name__)}"
                )
            if tuple(target.shape) != (B, *spatial):
                raise ValueError(
                    f"target: expected shape {(B, *spatial)} to match probs {tuple(probs.shape)}, got {tuple(target.shape)}"
                )
        if spacing is None and any(t.physical for t in self.terms):
            raise ValueError("spacing: expected mm per axis for the physical terms, got None")
        if self.check_inputs:
            flags = [torch.isnan(probs).any()]
            if target is not None:
                flags.append(((target < 0) | (target >= K)).any())
            bad = torch.stack(flags).tolist()
            if bad[0]:
                raise ValueError(
                    "probs: expected finite probabilities, got a tensor containing NaN"
                )
            if len(bad) > 1 and bad[1]:
                raise ValueError(
                    f"target: expected labels in [0, {K - 1}], got values outside that range"
                )

    def _select(self, x: Tensor, classes: tuple[int, ...]) -> Tensor:
        if classes == tuple(range(classes[0], classes[0] + len(classes))):
            return x[:, classes[0] : classes[0] + len(classes)]
        key = ("idx", classes, x.device)
        if key not in self._device_cache:
            self._device_cache[key] = torch.tensor(classes, device=x.device)
        return x.index_select(1, self._device_cache[key])

    def _columns(self, nd: int, dtype: torch.dtype, device: torch.device) -> dict[str, Any]:
        """Per-column constants (one column per term, class and descriptor value), cached."""
        key = ("columns", nd, dtype, device)
        if key in self._device_cache:
            return self._device_cache[key]
        rows: list[tuple] = []
        for i, term in enumerate(self.terms):
            n = descriptor_size(term.descriptor, nd)
            table = None
            if term.is_constant:
                table = self._tables[i]
                if table.shape[1] not in (1, n):
                    raise ValueError(
                        f"term {self.labels[i]!r}: expected bounds with {n} values per class for "
                        f"{nd}-D images, got {table.shape[1]}"
                    )
                table = table.expand(len(term.classes), n, 2)
            for ci, c in enumerate(term.classes):
                for j in range(n):
                    lo, hi = (
                        (0.0, 0.0)
                        if table is None
                        else (float(table[ci, j, 0]), float(table[ci, j, 1]))
                    )
                    rows.append(
                        (
                            term.weight,
                            term.margin,
                            term.mode == "percentage",
                            term.descriptor not in SIGNED,
                            term.descriptor in EXTENSIVE,
                            term.is_constant,
                            lo,
                            hi,
                            c,
                            i,
                        )
                    )
        cols = list(zip(*rows, strict=True))

        def tensor(values, dt=dtype):
            return torch.tensor(values, dtype=dt, device=device)

        out = {
            "weight": tensor(cols[0]),
            "margin": tensor(cols[1]),
            "pct": tensor(cols[2], torch.bool),
            "clamp": tensor(cols[3], torch.bool),
            "extensive": tensor(cols[4], torch.bool),
            "constant": tensor(cols[5], torch.bool),
            "lower": tensor(cols[6]),
            "upper": tensor(cols[7]),
            "cls": tensor(cols[8], torch.long),
            "term": tensor(cols[9], torch.long),
            "sign": tensor([-1.0, 1.0]),
            "all_clamp": all(cols[3]),
            "any_constant": any(cols[5]),
            "all_constant": all(cols[5]),
        }
        self._device_cache[key] = out
        return out

    # -- forward --------------------------------------------------------------------------------
    def forward(
        self, probs: Tensor, target: Tensor | None, t: float | Tensor, spacing: SpacingLike = None
    ) -> Tensor:
        self._validate(probs, target, spacing)
        with torch.autocast(device_type=probs.device.type, enabled=False):
            return self._loss(probs, target, t, spacing)

    def _loss(
        self, probs: Tensor, target: Tensor | None, t: float | Tensor, spacing: SpacingLike
    ) -> Tensor:
        """All terms at once: descriptor values and bounds are laid out as (B, columns)."""
        p = probs if probs.dtype in (torch.float32, torch.float64) else probs.float()
        B, K, *spatial = p.shape
        cols = self._columns(len(spatial), p.dtype, p.device)
        geos: dict[tuple[bool, bool], Geometry] = {}

        def geo(truth: bool, physical: bool) -> Geometry:
            if (truth, physical) not in geos:
                x = onehot if truth else p
                geos[truth, physical] = Geometry(x, spacing if physical else None)
            return geos[truth, physical]

        onehot = None if target is None else labels_to_onehot(target, K, p.dtype)
        f = torch.cat(
            [
                self._select(
                    GEOMETRY_FNS[term.descriptor](geo(False, term.physical), **term.options),
                    term.classes,
                ).flatten(1)
                for term in self.terms
            ],
            dim=1,
        )
        with torch.no_grad():
            lower, upper = self._bounds(cols, geo if onehot is not None else None, f)
            bounds = torch.stack([lower, upper], dim=-1)  # (B, columns, 2)
            active = torch.isfinite(bounds)
        z = (f[..., None] - bounds) * cols["sign"]  # [lower - f, f - upper]
        z_safe = torch.where(active, z, -torch.ones((), dtype=z.dtype, device=z.device))
        psi = PENALTIES[self.penalty](z_safe, t)
        psi = torch.where(active, psi, torch.zeros((), dtype=z.dtype, device=z.device))
        norm = math.prod(spatial) * (B if self.normalisation == "batch_mean" else 1)
        per_column = psi.sum((0, 2)) * (cols["weight"] / norm)
        total = per_column.sum()
        if self.collect_stats:
            self._record_stats(cols, per_column.detach(), z_safe.detach(), active, total.detach())
        return total

    def _bounds(self, cols: dict[str, Any], geo, f: Tensor) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds (B, columns), with the empty-class policy applied."""
        zero = torch.zeros((), dtype=f.dtype, device=f.device)
        if geo is None:  # constant bounds only, no target
            return cols["lower"].expand_as(f), cols["upper"].expand_as(f)
        present = (geo(True, False).mass()[..., 0] > 0).index_select(1, cols["cls"])
        nd = geo(True, False).nd
        if cols["all_constant"]:
            values = torch.zeros_like(f)
        else:
            values = torch.cat(
                [
                    f.new_zeros(
                        f.shape[0], len(term.classes) * descriptor_size(term.descriptor, nd)
                    )
                    if term.is_constant
                    else self._select(
                        GEOMETRY_FNS[term.descriptor](geo(True, term.physical), **term.options),
                        term.classes,
                    ).flatten(1)
                    for term in self.terms
                ],
                dim=1,
            )
        if self.empty_policy == "paper":
            values = torch.where(present, values, zero)
        margin = torch.where(cols["pct"], values.abs() * cols["margin"], cols["margin"])
        lower, upper = values - margin, values + margin
        if cols["all_clamp"]:
            lower, upper = lower.clamp_min(0), upper.clamp_min(0)
        else:
            lower = torch.where(cols["clamp"], lower.clamp_min(0), lower)
            upper = torch.where(cols["clamp"], upper.clamp_min(0), upper)
        if cols["any_constant"]:
            lower = torch.where(cols["constant"], cols["lower"], lower)
            upper = torch.where(cols["constant"], cols["upper"], upper)
        if self.empty_policy == "corrected":
            absent = ~present
            to_zero = absent & cols["extensive"]
            free = absent & ~cols["extensive"]
            inf = torch.full((), math.inf, dtype=f.dtype, device=f.device)
            lower = torch.where(to_zero, zero, torch.where(free, -inf, lower))
            upper = torch.where(to_zero, zero, torch.where(free, inf, upper))
        return lower, upper

    def _record_stats(
        self, cols: dict[str, Any], per_column: Tensor, z: Tensor, active: Tensor, total: Tensor
    ) -> None:
        """``last_stats``: per-term sums over columns with one index_add (no read-back)."""
        per_col = torch.stack(
            [
                per_column,
                torch.relu(z).sum((0, 2)),  # inactive constraints hold z = -1: no violation
                (z > 0).sum((0, 2)).to(z.dtype),
                active.sum((0, 2)).to(z.dtype),
            ],
            dim=1,
        )
        sums = torch.zeros(len(self.terms), 4, dtype=z.dtype, device=z.device)
        sums.index_add_(0, cols["term"], per_col)
        n_active = sums[:, 3].clamp_min(1)
        violation = sums[:, 1] / n_active
        fraction = sums[:, 2] / n_active
        stats: dict[str, Tensor] = {}
        for i, label in enumerate(self.labels):
            stats[f"{label}/loss"] = sums[i, 0]
            stats[f"{label}/violation"] = violation[i]
            stats[f"{label}/frac_violated"] = fraction[i]
        stats["total"] = total
        self.last_stats = stats


def _unique_labels(terms: Sequence[DescriptorTerm]) -> list[str]:
    labels: list[str] = []
    for term in terms:
        label = term.label
        if label in labels:
            label = f"{label}{list(term.classes)}".replace(" ", "")
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def paper_loss(
    dataset: str, *, empty_policy: str = "paper", normalisation: str = "paper"
) -> ShapeDescriptorLoss:
    """The authors' loss for ``"acdc"`` or ``"promise12"``: ``paper_terms`` + log barrier."""
    return ShapeDescriptorLoss(paper_terms(dataset), "log_barrier", normalisation, empty_policy)


def cross_entropy_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Mean pixel-wise cross-entropy of logits (B, K, *spatial) against labels (B, *spatial)."""
    if (
        not isinstance(logits, Tensor)
        or logits.ndim not in (4, 5)
        or not logits.is_floating_point()
    ):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(
            f"logits: expected a floating tensor (B, K, H, W) or (B, K, D, H, W), got {shape}"
        )
    B, K, *spatial = logits.shape
    if (
        not isinstance(target, Tensor)
        or tuple(target.shape) != (B, *spatial)
        or target.is_floating_point()
    ):
        shape = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"target: expected integer labels of shape {(B, *spatial)}, got {shape}")
    return F.cross_entropy(logits, target.long())
