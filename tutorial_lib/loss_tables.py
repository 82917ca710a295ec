"""The shape-descriptor loss's per-column layout: ``LossTables``, built once from the terms.

The loss lays every constraint out as one column per (term, class, descriptor value), so all the
terms are computed at once: descriptor values (``column_values``) and bounds (``target_bounds``)
are (B, columns) tensors, and the stats per term come from one matrix product over the columns
(``term_stats``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tutorial_lib.bounds import BoundRules, ColumnRule, bound_rules, column_bounds, constant_table
from tutorial_lib.descriptor_registry import DESCRIPTORS
from tutorial_lib.geometry import Geometry, SpacingLike

if TYPE_CHECKING:  # for the annotations only: losses imports this module
    from tutorial_lib.losses import DescriptorTerm

__all__ = [
    "LossTables",
    "check_value_noise",
    "column_values",
    "geometries",
    "target_bounds",
    "term_labels",
    "term_stats",
]


@dataclass(frozen=True)
class LossTables:
    """The loss's per-column tables: one column per (term, class, descriptor value).

    Built once from the terms for one image dimension, dtype and device (``LossTables.build``);
    ``ShapeDescriptorLoss`` keeps them, so a training step makes no table.

    - ``rules``: how each column's bounds are made (``tutorial_lib.bounds.BoundRules``);
    - ``weight`` (columns,): the weight of the column's term; ``cls`` (columns,): its class;
    - ``selectors``: per term, its classes in a (B, K, n) descriptor output (a slice when they
      are contiguous, else an index tensor);
    - ``widths``: the number of columns of each term (its classes x its descriptor's values);
    - ``term_matrix`` (terms, columns): sums the columns of each term with one matrix product;
    - ``sides_per_term`` (terms,): 2 x the columns of each term (constraints per image);
    - ``sign``: ``[-1, 1]``, turning ``f - [lower, upper]`` into ``[lower - f, f - upper]``;
    - ``labels``: the terms' names in the stats (made unique).
    """

    rules: BoundRules
    weight: Tensor
    cls: Tensor
    selectors: tuple[slice | Tensor, ...]
    widths: tuple[int, ...]
    term_matrix: Tensor
    sides_per_term: Tensor
    sign: Tensor
    labels: tuple[str, ...]

    @classmethod
    def build(
        cls,
        terms: Sequence[DescriptorTerm],
        n_axes: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> LossTables:
        """The tables of ``terms`` for images with ``n_axes`` spatial axes."""
        labels = term_labels(terms)
        columns: list[ColumnRule] = []
        weight, classes, per_term = [], [], []
        for term, label in zip(terms, labels, strict=True):
            n = DESCRIPTORS[term.descriptor].n_values(n_axes)
            fixed = _constant_rows(term, label, n, n_axes)
            for i, c in enumerate(term.classes):
                for j in range(n):
                    bounds = None if fixed is None else fixed[i * n + j]
                    columns.append((term.descriptor, term.margin, term.mode, bounds))
                    weight.append(term.weight)
                    classes.append(c)
            per_term.append(len(term.classes) * n)
        term_of_column = torch.repeat_interleave(torch.arange(len(terms)), torch.tensor(per_term))
        return cls(
            rules=bound_rules(columns, dtype, device),
            weight=torch.tensor(weight, dtype=dtype, device=device),
            cls=torch.tensor(classes, dtype=torch.long, device=device),
            selectors=tuple(_selector(t.classes, device) for t in terms),
            widths=tuple(per_term),
            term_matrix=(term_of_column == torch.arange(len(terms))[:, None]).to(device, dtype),
            sides_per_term=torch.tensor([2.0 * n for n in per_term], dtype=dtype, device=device),
            sign=torch.tensor([-1.0, 1.0], dtype=dtype, device=device),
            labels=tuple(labels),
        )


def _constant_rows(
    term: DescriptorTerm, label: str, n: int, n_axes: int
) -> list[tuple[float, float]] | None:
    """A constant term's (lower, upper) per (class, value), row-major; None for precise bounds."""
    if not term.is_constant:
        return None
    table = constant_table(term.lower, term.upper, len(term.classes))
    if table.shape[1] not in (1, n):
        raise ValueError(
            f"term {label!r}: expected bounds with {n} values per class for {n_axes}-D images, "
            f"got {table.shape[1]}"
        )
    return [
        (float(lo), float(hi)) for lo, hi in table.expand(len(term.classes), n, 2).flatten(0, 1)
    ]


def _selector(classes: tuple[int, ...], device: torch.device | str) -> slice | Tensor:
    if classes == tuple(range(classes[0], classes[0] + len(classes))):
        return slice(classes[0], classes[0] + len(classes))
    return torch.tensor(classes, device=device)


def term_labels(terms: Sequence[DescriptorTerm]) -> list[str]:
    """The terms' labels in ``last_stats``, made unique (``size``, ``size[1]``, ...)."""
    labels: list[str] = []
    for term in terms:
        label = term.label
        if label in labels:
            label = f"{label}{list(term.classes)}".replace(" ", "")
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def geometries(x: Tensor, spacing: SpacingLike) -> Callable[[bool], Geometry]:
    """``physical -> Geometry`` of ``x`` (with the spacing or without), each made once."""
    return functools.cache(lambda physical: Geometry(x, spacing if physical else None))


def column_values(
    geometry: Callable[[bool], Geometry],
    terms: Sequence[DescriptorTerm],
    tables: LossTables,
    skip_constant: bool = False,
) -> Tensor:
    """Every term's descriptor values on its classes, (B, columns); zeros for skipped terms."""
    values = []
    for term, select, width in zip(terms, tables.selectors, tables.widths, strict=True):
        if skip_constant and term.is_constant:
            x = geometry(False).p
            values.append(x.new_zeros(x.shape[0], width))
            continue
        out = DESCRIPTORS[term.descriptor].compute(geometry(term.physical), **term.options)
        out = out[:, select] if isinstance(select, slice) else out.index_select(1, select)
        values.append(out.flatten(1))
    return torch.cat(values, dim=1)


def target_bounds(
    truth: Callable[[bool], Geometry],
    f: Tensor,
    terms: Sequence[DescriptorTerm],
    tables: LossTables,
    empty_policy: str,
    value_noise: Tensor | None = None,
) -> Tensor:
    """Bounds (B, columns, 2) from the ground truth's geometry, with the empty-class policy.

    ``value_noise`` (B, columns): relative errors e, the bounds made around ``v (1 + e)`` (an
    annotator's error on each value) instead of v; None: the exact values.
    """
    present = (truth(False).mass()[..., 0] > 0).index_select(1, tables.cls)
    if tables.rules.all_constant:
        values = torch.zeros_like(f)
    else:
        values = column_values(truth, terms, tables, skip_constant=True)
    if value_noise is not None:
        values = values * (1 + value_noise)
    return column_bounds(tables.rules, values, present, empty_policy)


def term_stats(
    tables: LossTables, per_column: Tensor, z: Tensor, active: Tensor | None, total: Tensor
) -> dict[str, Tensor]:
    """Per-term loss, mean violation and fraction violated: one matrix product, no read-back."""
    violation = torch.relu(z)  # masked-out constraints hold z = -1: no violation
    per_col = [
        per_column,
        violation.sum((0, 2)),
        violation.sign().sum((0, 2)),  # the number of violated constraints
    ]
    if active is not None:
        per_col.append(active.sum((0, 2)).to(z.dtype))
    sums = tables.term_matrix @ torch.stack(per_col, dim=1)  # (terms, 3 or 4)
    if active is None:
        n_active = tables.sides_per_term * z.shape[0]
    else:
        n_active = sums[:, 3].clamp_min(1)
    ratios = sums[:, 1:3] / n_active[:, None]  # mean violation, fraction violated
    stats: dict[str, Tensor] = {}
    for i, label in enumerate(tables.labels):
        stats[f"{label}/loss"] = sums[i, 0]
        stats[f"{label}/violation"] = ratios[i, 0]
        stats[f"{label}/frac_violated"] = ratios[i, 1]
    stats["total"] = total
    return stats


def check_value_noise(value_noise: torch.Tensor | None, shape: tuple[int, int]) -> None:
    """`value_noise` is None or a (B, columns) tensor of relative errors (`shape`)."""
    if value_noise is not None and (
        not isinstance(value_noise, torch.Tensor) or tuple(value_noise.shape) != shape
    ):
        got = tuple(value_noise.shape) if isinstance(value_noise, torch.Tensor) else value_noise
        raise ValueError(f"value_noise: expected a tensor (B, columns) = {shape}, got {got!r}")
