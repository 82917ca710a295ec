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
    BoundValue,
    apply_empty_policy,
    bounds_from_values,
    check_mode,
    check_policy,
    constant_table,
    labels_to_onehot,
)
from tutorial_lib.descriptors import (
    GEOMETRY_FNS,
    Geometry,
    SpacingLike,
    check_descriptor_name,
    check_probs,
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

    def _table(self, i: int, dtype: torch.dtype, device: torch.device) -> Tensor:
        key = ("table", i, dtype, device)
        if key not in self._device_cache:
            self._device_cache[key] = self._tables[i].to(dtype=dtype, device=device)
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
        p = probs if probs.dtype in (torch.float32, torch.float64) else probs.float()
        B, K, *spatial = p.shape
        norm = math.prod(spatial) * (B if self.normalisation == "batch_mean" else 1)
        pen = PENALTIES[self.penalty]
        pred_geo: dict[bool, Geometry] = {}
        true_geo: dict[bool, Geometry] = {}
        onehot = None if target is None else labels_to_onehot(target, K, p.dtype)

        def geo(cache: dict[bool, Geometry], x: Tensor, physical: bool) -> Geometry:
            if physical not in cache:
                cache[physical] = Geometry(x, spacing if physical else None)
            return cache[physical]

        total = p.new_zeros(())
        stats: dict[str, Tensor] = {}
        for i, term in enumerate(self.terms):
            f = self._select(
                GEOMETRY_FNS[term.descriptor](geo(pred_geo, p, term.physical), **term.options),
                term.classes,
            )
            with torch.no_grad():
                present = None
                if onehot is not None:
                    g_true = geo(true_geo, onehot, term.physical)
                    present = self._select(g_true.mass()[..., 0], term.classes) > 0
                if term.is_constant:
                    table = self._table(i, f.dtype, f.device)
                    bounds = table.expand(B, len(term.classes), f.shape[-1], 2)
                    if present is not None:
                        bounds = apply_empty_policy(
                            bounds, present, term.descriptor, self.empty_policy
                        )
                else:
                    values = self._select(
                        GEOMETRY_FNS[term.descriptor](g_true, **term.options), term.classes
                    )
                    bounds = bounds_from_values(
                        values,
                        present,
                        descriptor=term.descriptor,
                        margin=term.margin,
                        mode=term.mode,
                        policy=self.empty_policy,
                    )
                active = torch.isfinite(bounds)
            z = torch.stack([bounds[..., 0] - f, f - bounds[..., 1]], dim=-1)
            z_safe = torch.where(active, z, -torch.ones((), dtype=z.dtype, device=z.device))
            psi = torch.where(
                active, pen(z_safe, t), torch.zeros((), dtype=z.dtype, device=z.device)
            )
            term_loss = psi.sum() * (term.weight / norm)
            total = total + term_loss
            if self.collect_stats:
                with torch.no_grad():
                    n_active = active.sum().clamp_min(1)
                    violated = (z_safe > 0) & active
                    label = self.labels[i]
                    stats[f"{label}/loss"] = term_loss.detach()
                    stats[f"{label}/violation"] = (torch.relu(z_safe) * active).sum() / n_active
                    stats[f"{label}/frac_violated"] = violated.sum() / n_active
        if self.collect_stats:
            stats["total"] = total.detach()
            self.last_stats = stats
        return total


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
