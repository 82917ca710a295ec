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
        margin, pct, constant = cols[1], cols[2], cols[5]
        bounds = list(zip(cols[6], cols[7], strict=True))

        def tensor(values, dt=dtype):
            return torch.tensor(values, dtype=dt, device=device)

        term_of_column = torch.tensor(cols[9])
        out = {
            "weight": tensor(cols[0]),
            # margin = |v| * pct_margin + abs_margin: one of the two is 0 in each column
            "pct_margin": tensor([m if p else 0.0 for m, p in zip(margin, pct, strict=True)]),
            "abs_margin": tensor([0.0 if p else m for m, p in zip(margin, pct, strict=True)]),
            "clamp": tensor(cols[3], torch.bool)[:, None],
            "extensive": tensor(cols[4], torch.bool),
            "constant": tensor(constant, torch.bool)[:, None],
            "table": tensor(bounds),  # (columns, 2) constant bounds (0 where not constant)
            "cls": tensor(cols[8], torch.long),
            # (terms, columns): sums the columns of each term with one matrix product
            "term_matrix": (term_of_column == torch.arange(len(self.terms))[:, None]).to(
                dtype=dtype, device=device
            ),
            "term_columns": torch.bincount(term_of_column, minlength=len(self.terms)).tolist(),
            "sign": tensor([-1.0, 1.0]),
            "free": tensor([-math.inf, math.inf]),
            "all_clamp": all(cols[3]),
            "any_constant": any(constant),
            "all_constant": all(constant),
            # can a bound be infinite (a free side)? Only then are constraints masked out
            "may_be_free": self.empty_policy == "corrected"
            or any(math.isinf(v) for lo_hi in bounds for v in lo_hi),
        }
        self._device_cache[key] = out
        return out

    def _n_active(self, cols: dict[str, Any], batch: int, dtype: torch.dtype) -> Tensor:
        """Constraints per term when none is masked out: 2 sides x B images x its columns."""
        key = ("n_active", batch, dtype, cols["weight"].device)
        if key not in self._device_cache:
            self._device_cache[key] = torch.tensor(
                [2.0 * batch * n for n in cols["term_columns"]],
                dtype=dtype,
                device=cols["weight"].device,
            )
        return self._device_cache[key]

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
            bounds = self._bounds(cols, geo if onehot is not None else None, f)  # (B, columns, 2)
            # a side bounded by ±inf is free: masked out (only possible with some settings)
            active = torch.isfinite(bounds) if cols["may_be_free"] else None
        z = (f[..., None] - bounds) * cols["sign"]  # [lower - f, f - upper]
        if active is not None:
            z = torch.where(active, z, -1.0)
        psi = PENALTIES[self.penalty](z, t)
        if active is not None:
            psi = torch.where(active, psi, 0.0)
        norm = math.prod(spatial) * (B if self.normalisation == "batch_mean" else 1)
        per_column = psi.sum((0, 2)) * (cols["weight"] / norm)
        total = per_column.sum()
        if self.collect_stats:
            self._record_stats(cols, per_column.detach(), z.detach(), active, total.detach())
        return total

    def _bounds(self, cols: dict[str, Any], geo, f: Tensor) -> Tensor:
        """Bounds (B, columns, 2), ``[..., 0]`` lower and ``[..., 1]`` upper, with the empty-class policy."""
        if geo is None:  # constant bounds only, no target
            return cols["table"].expand(*f.shape, 2)
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
            values = torch.where(present, values, 0.0)
        margin = torch.addcmul(cols["abs_margin"], values.abs(), cols["pct_margin"])
        bounds = torch.addcmul(values[..., None], margin[..., None], cols["sign"])  # v -/+ m
        if cols["all_clamp"]:
            bounds = bounds.clamp_min_(0)
        else:
            bounds = torch.where(cols["clamp"], bounds.clamp_min(0), bounds)
        if cols["any_constant"]:
            bounds = torch.where(cols["constant"], cols["table"], bounds)
        if self.empty_policy == "corrected":
            absent = ~present
            to_zero = (absent & cols["extensive"])[..., None]
            free = (absent & ~cols["extensive"])[..., None]
            bounds = torch.where(to_zero, 0.0, torch.where(free, cols["free"], bounds))
        return bounds

    def _record_stats(
        self,
        cols: dict[str, Any],
        per_column: Tensor,
        z: Tensor,
        active: Tensor | None,
        total: Tensor,
    ) -> None:
        """``last_stats``: per-term sums over columns with one matrix product (no read-back)."""
        violation = torch.relu(z)  # masked-out constraints hold z = -1: no violation
        per_col = [
            per_column,
            violation.sum((0, 2)),
            violation.sign().sum((0, 2)),  # the number of violated constraints
        ]
        if active is not None:
            per_col.append(active.sum((0, 2)).to(z.dtype))
        sums = cols["term_matrix"] @ torch.stack(per_col, dim=1)  # (terms, 3 or 4)
        if active is None:
            n_active = self._n_active(cols, z.shape[0], z.dtype)
        else:
            n_active = sums[:, 3].clamp_min(1)
        ratios = sums[:, 1:3] / n_active[:, None]  # mean violation, fraction violated
        stats: dict[str, Tensor] = {}
        for i, label in enumerate(self.labels):
            stats[f"{label}/loss"] = sums[i, 0]
            stats[f"{label}/violation"] = ratios[i, 0]
            stats[f"{label}/frac_violated"] = ratios[i, 1]
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
