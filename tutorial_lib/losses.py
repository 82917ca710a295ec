"""Losses: shape-descriptor constraints (the paper's loss) and the cross-entropy baseline.

A ``ShapeDescriptorLoss`` is a list of ``DescriptorTerm`` (data, not strings that are evaluated),
a penalty (``"log_barrier"`` or ``"quadratic"``), a normalisation and an empty-class policy::

    loss = sum_terms weight * sum_{b, class, value, side} psi_t(z) / norm

with ``z = f - upper`` and ``z = lower - f``; ``norm = H * W`` (``"paper"``: a sum over the batch,
divided by the number of pixels) or ``B * H * W`` (``"batch_mean"``: the same per-image scale for
every batch size). An empty batch (B = 0) gives a loss of 0 under both normalisations (a sum over
no image), as ``cross_entropy_loss`` does; empty spatial dimensions are refused. Bounds are computed inside ``forward`` from the (augmented) target, or are
constant per class (anatomical priors), by ``tutorial_lib.bounds``. The target is label maps or,
without any mask, ``WeakLabels`` (``tutorial_lib.weak_labels``: a few numbers per image and class,
bounded by the same rules). See ``paper_terms`` for the authors' settings.

``shape_descriptor_loss`` is the loss as a function; ``ShapeDescriptorLoss`` is a thin module over
it that keeps the settings and the per-column tables (``tutorial_lib.loss_tables``).
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
    check_margin,
    check_mode,
    check_policy,
    constant_table,
    labels_to_onehot,
)
from tutorial_lib.descriptor_registry import check_descriptor_name
from tutorial_lib.geometry import SpacingLike, check_probs, spacing_ok
from tutorial_lib.loss_tables import (
    LossTables,
    check_value_noise,
    column_values,
    geometries,
    target_bounds,
    term_labels,
    term_stats,
)
from tutorial_lib.penalties import PENALTIES, check_penalty_name
from tutorial_lib.weak_labels import WeakLabels, check_weak_target, weak_bounds

__all__ = [
    "NORMALISATIONS",
    "DescriptorTerm",
    "ShapeDescriptorLoss",
    "cross_entropy_loss",
    "paper_terms",
    "shape_descriptor_loss",
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
    - ``name``: label in ``last_stats`` (default: the descriptor's name). Taught in notebook 03.
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
        check_margin(self.margin)
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
    key = dataset.lower().replace("_", "-")
    if key == "acdc":
        size_cls, other_cls = (1, 2, 3), (1, 2, 3)
    elif key in ("promise12", "prostate", "msd-prostate"):
        size_cls, other_cls = (0, 1), (1,)
    else:
        raise ValueError(
            f"dataset: expected 'acdc', 'promise12' or 'msd-prostate', got {dataset!r}"
        )
    return [
        DescriptorTerm("size", size_cls, margin=0.1, mode="percentage", weight=weight),
        DescriptorTerm("centroid", other_cls, margin=20, mode="abs", weight=weight),
        DescriptorTerm("dist_centroid", other_cls, margin=20, mode="abs", weight=weight),
        DescriptorTerm("length", other_cls, margin=10, mode="percentage", weight=weight),
    ]


# ----------------------------------------------------------------------------------------------
# The loss as a function
# ----------------------------------------------------------------------------------------------
def check_loss_settings(
    terms: Sequence[DescriptorTerm], penalty: str, normalisation: str, empty_policy: str
) -> list[DescriptorTerm]:
    """The terms as a list; ValueError unless every setting is a known one."""
    terms = list(terms)
    if not terms or not all(isinstance(t, DescriptorTerm) for t in terms):
        raise ValueError(f"terms: expected a non-empty sequence of DescriptorTerm, got {terms!r}")
    check_penalty_name(penalty)
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation: expected one of {NORMALISATIONS}, got {normalisation!r}")
    check_policy(empty_policy)
    return terms


def check_loss_inputs(
    terms: Sequence[DescriptorTerm],
    probs: Tensor,
    target: Tensor | WeakLabels | None,
    spacing: SpacingLike,
    empty_policy: str,
    check_values: bool,
) -> None:
    """ValueError unless the inputs fit the terms (``check_values``: also NaN and label range)."""
    check_probs(probs, "probs", check_nan=False)
    B, K, *spatial = probs.shape
    if 0 in spatial:
        raise ValueError(f"probs: expected non-empty spatial dimensions, got {tuple(probs.shape)}")
    top = max(max(t.classes) for t in terms)
    if top >= K:
        raise ValueError(
            f"probs: expected K > {top} channels (the terms constrain class {top}), got K = {K}"
        )
    needs_target = any(not t.is_constant for t in terms) or empty_policy != "paper"
    if target is None:
        if needs_target:
            raise ValueError(
                "target: expected integer labels (B, *spatial), needed by precise bounds or the "
                "empty policy, got None"
            )
    elif isinstance(target, WeakLabels):
        check_weak_target(target, terms, probs)
    else:
        if not isinstance(target, Tensor) or target.is_floating_point() or target.is_complex():
            raise ValueError(
                f"target: expected an integer label tensor, got {getattr(target, 'dtype', type(target).__name__)}"
            )
        if tuple(target.shape) != (B, *spatial):
            raise ValueError(
                f"target: expected shape {(B, *spatial)} to match probs {tuple(probs.shape)}, got {tuple(target.shape)}"
            )
    if spacing is None and any(t.physical for t in terms):
        raise ValueError("spacing: expected mm per axis for the physical terms, got None")
    if check_values:  # one read-back for every value check
        flags = [
            ~torch.isfinite(probs).all(),
            torch.zeros((), dtype=torch.bool, device=probs.device),
        ]
        if isinstance(target, Tensor):
            flags[1] = ((target < 0) | (target >= K)).any()
        if isinstance(spacing, Tensor):
            flags.append(~spacing_ok(spacing).to(probs.device))
        bad = torch.stack(flags).tolist()
        if bad[0]:
            raise ValueError("probs: expected finite probabilities, got NaN or inf values")
        if bad[1]:
            raise ValueError(
                f"target: expected labels in [0, {K - 1}], got values outside that range"
            )
        if len(bad) > 2 and bad[2]:
            raise ValueError(f"spacing: expected positive finite mm per axis, got {spacing}")


def shape_descriptor_loss(
    probs: Tensor,
    target: Tensor | WeakLabels | None,
    t: float | Tensor,
    terms: Sequence[DescriptorTerm],
    *,
    penalty: str = "log_barrier",
    normalisation: str = "paper",
    empty_policy: str = "paper",
    spacing: SpacingLike = None,
    check_inputs: bool = True,
    collect_stats: bool = True,
    tables: dict[tuple, LossTables] | None = None,
    value_noise: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The shape-descriptor loss and its stats: ``sum weight * psi_t(z) / norm`` (module docstring).

    Arguments as ``ShapeDescriptorLoss`` and its ``forward``; ``target`` is label maps, weak
    labels of the batch, or None. ``tables``: a cache of the
    ``LossTables`` of ``terms`` keyed by (n_axes, dtype, device), filled here on first use (None:
    built for this call). Returns the loss (a scalar) and the detached stats (``last_stats``;
    empty unless ``collect_stats``). ``value_noise`` (B, columns): relative errors e on the ground
    truth's values, the precise bounds made around ``v (1 + e)`` (``tutorial_lib.loss_tables``).
    Shown in examples/train_your_own.py.
    """
    terms = check_loss_settings(terms, penalty, normalisation, empty_policy)
    check_loss_inputs(terms, probs, target, spacing, empty_policy, check_inputs)
    with torch.autocast(device_type=probs.device.type, enabled=False):
        p = probs if probs.dtype in (torch.float32, torch.float64) else probs.float()
        key = (p.ndim - 2, p.dtype, p.device)
        cache = {} if tables is None else tables
        if key not in cache:
            cache[key] = LossTables.build(terms, *key)
        check_value_noise(value_noise, (p.shape[0], sum(cache[key].widths)))
        return _loss(
            p,
            target,
            t,
            terms,
            cache[key],
            spacing=spacing,
            penalty=penalty,
            normalisation=normalisation,
            empty_policy=empty_policy,
            collect_stats=collect_stats,
            value_noise=value_noise,
        )


def _loss(
    p: Tensor,
    target: Tensor | WeakLabels | None,
    t: float | Tensor,
    terms: list[DescriptorTerm],
    tables: LossTables,
    *,
    spacing: SpacingLike,
    penalty: str,
    normalisation: str,
    empty_policy: str,
    collect_stats: bool,
    value_noise: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """All terms at once: descriptor values and bounds are laid out as (B, columns)."""
    B, K, *spatial = p.shape
    f = column_values(geometries(p, spacing), terms, tables)
    with torch.no_grad():
        weak = isinstance(target, WeakLabels)
        if target is None:  # constant bounds only
            bounds = tables.rules.table.expand(*f.shape, 2)
        elif weak:  # no mask: values and bounds given per image and class
            bounds = weak_bounds(target.to(p.device, p.dtype), terms, tables, empty_policy)
        else:
            truth = geometries(labels_to_onehot(target, K, p.dtype), spacing)
            bounds = target_bounds(truth, f, terms, tables, empty_policy, value_noise)
        # a side bounded by ±inf is free: masked out (only possible with some settings)
        free = weak or tables.rules.may_be_free(empty_policy)
        active = torch.isfinite(bounds) if free else None
    z = (f[..., None] - bounds) * tables.sign  # [lower - f, f - upper]
    if active is not None:
        z = torch.where(active, z, -1.0)
    psi = PENALTIES[penalty](z, t)
    if active is not None:
        psi = torch.where(active, psi, 0.0)
    norm = math.prod(spatial) * (max(B, 1) if normalisation == "batch_mean" else 1)  # B = 0: 0
    per_column = psi.sum((0, 2)) * (tables.weight / norm)
    total = per_column.sum()
    if not collect_stats:
        return total, {}
    return total, term_stats(tables, per_column.detach(), z.detach(), active, total.detach())


# ----------------------------------------------------------------------------------------------
# The loss as a module
# ----------------------------------------------------------------------------------------------
class ShapeDescriptorLoss(nn.Module):
    """Sum of penalised descriptor constraints (see the module docstring); ``shape_descriptor_loss``
    with its settings kept and its tables made once.

    ``forward(probs, target, t, spacing=None)``: ``probs`` (B, K, *spatial) softmax probabilities,
    ``target`` (B, *spatial) integer labels or the batch's ``WeakLabels`` (no mask: a value or
    bounds per image, class and descriptor; None only if every term has constant bounds and the
    policy is ``"paper"``), ``t`` the penalty parameter, ``spacing`` (n_axes,) or (B, n_axes) mm for
    ``physical`` terms, ``value_noise`` (B, columns) relative errors on the truth's values (an
    annotator's; see ``shape_descriptor_loss``). Descriptors run in float32 at least, outside autocast.

    ``check_inputs`` (default True) also checks probs for NaN and labels for range, one read-back
    from the device per call; turn it off in a tuned training loop. After each call, ``last_stats``
    holds detached scalars per term: ``<label>/loss``, ``<label>/violation`` (mean ``relu(z)`` over
    the active constraints, in descriptor units) and ``<label>/frac_violated``, plus ``total``.
    Taught in notebook 03.
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
        self.terms = check_loss_settings(terms, penalty, normalisation, empty_policy)
        self.penalty = penalty
        self.normalisation = normalisation
        self.empty_policy = empty_policy
        self.check_inputs = check_inputs
        self.collect_stats = collect_stats
        self.labels = term_labels(self.terms)
        self.tables: dict[tuple, LossTables] = {}  # (n_axes, dtype, device) -> LossTables
        self.last_stats: dict[str, Tensor] = {}

    def extra_repr(self) -> str:
        names = ", ".join(f"{t.label}{list(t.classes)}" for t in self.terms)
        return f"terms=[{names}], penalty={self.penalty!r}, normalisation={self.normalisation!r}, empty_policy={self.empty_policy!r}"

    def forward(
        self,
        probs: Tensor,
        target: Tensor | WeakLabels | None,
        t: float | Tensor,
        spacing: SpacingLike = None,
        value_noise: Tensor | None = None,
    ) -> Tensor:
        loss, stats = shape_descriptor_loss(
            probs,
            target,
            t,
            self.terms,
            penalty=self.penalty,
            normalisation=self.normalisation,
            empty_policy=self.empty_policy,
            spacing=spacing,
            check_inputs=self.check_inputs,
            collect_stats=self.collect_stats,
            tables=self.tables,
            value_noise=value_noise,
        )
        if self.collect_stats:
            self.last_stats = stats
        return loss


def cross_entropy_loss(logits: Tensor, target: Tensor) -> Tensor:
    """Mean pixel-wise cross-entropy of logits (B, K, *spatial) against labels (B, *spatial); 0
    for an empty batch.
    Taught in notebook 04.
    """
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
    if 0 in spatial:
        raise ValueError(
            f"logits: expected non-empty spatial dimensions, got {tuple(logits.shape)}"
        )
    if B == 0:  # the mean over no pixel: 0 (as the descriptor loss), not NaN
        return logits.sum()
    return F.cross_entropy(logits, target.long())
