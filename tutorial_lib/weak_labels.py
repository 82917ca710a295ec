"""Weak labels: a few numbers per image and class instead of a mask, as the loss's target.

``WeakLabels`` is what an annotator gives (an ellipse, a box, a measured size) once turned into
descriptor values, for N images and K classes:

- ``values[name]`` (N, K, n): the descriptor's value(s); NaN where not given. The loss makes the
  term's precise bounds from them (``[v - m, v + m]``, the rules of ``tutorial_lib.bounds``).
- ``bounds[name]`` (N, K, n, 2): ``[lower, upper]`` given as they are (``±inf``: an open side);
  NaN (both sides) where not given. An entry holds a value or bounds, never both.
- ``present`` (N, K) bool: is the class in the image? An absent class holds no value and no bound;
  the loss's empty-class policy bounds it, as it does for a class absent from a mask.

An entry given neither way leaves that constraint free. ``ShapeDescriptorLoss(...)(probs, weak, t)``
takes the batch's ``WeakLabels`` (``weak.select(index)``) where it takes label maps: no mask reaches
the loss. When the values are the masks' descriptors (``weak_labels_from_masks``), the loss and its
gradient equal those of the mask path. Files: ``weak_label_files``; ellipses and boxes:
``shape_annotations``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from tutorial_lib.bounds import column_bounds, labels_to_onehot
from tutorial_lib.descriptor_registry import DESCRIPTORS, check_descriptor_name
from tutorial_lib.geometry import Geometry, SpacingLike
from tutorial_lib.loss_tables import LossTables

if TYPE_CHECKING:  # for the annotations only: losses imports this module
    from tutorial_lib.losses import DescriptorTerm

__all__ = [
    "WeakLabels",
    "check_weak_target",
    "weak_bounds",
    "weak_labels_from_masks",
    "weak_labels_from_values",
]


@dataclass(frozen=True)
class WeakLabels:
    """Per image, class and descriptor: value(s) or ``[lower, upper]``, and a presence flag.

    Layout in the module docstring. Every tensor shares one floating dtype and device; a
    descriptor named in only one of ``values`` and ``bounds`` gets NaN (not given) in the other.
    ``ids``: the images' names (optional; the files need them). ``check=False`` skips the checks
    (``select`` and ``to`` use it: their input was checked). Shown in examples/train_your_own.py.
    """

    values: Mapping[str, Tensor]
    bounds: Mapping[str, Tensor]
    present: Tensor
    ids: tuple[str, ...] = ()
    check: bool = field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", tuple(self.ids))
        if not self.check:
            return
        if not isinstance(self.present, Tensor) or self.present.dtype != torch.bool:
            got = getattr(self.present, "dtype", type(self.present).__name__)
            raise ValueError(f"present: expected a bool tensor (N, K), got {got}")
        if self.present.ndim != 2:
            raise ValueError(f"present: expected shape (N, K), got {tuple(self.present.shape)}")
        n, k = self.present.shape
        if self.ids and len(self.ids) != n:
            raise ValueError(f"ids: expected {n} image names (one per image), got {len(self.ids)}")
        values, bounds = _complete(dict(self.values), dict(self.bounds), n, k, self.present)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "bounds", bounds)
        for name in values:
            _check_entries(name, values[name], bounds[name], self.present)

    def __len__(self) -> int:
        return self.present.shape[0]

    @property
    def n_classes(self) -> int:
        return self.present.shape[1]

    def select(self, index: Tensor | Sequence[int] | slice) -> WeakLabels:
        """The weak labels of some images (a batch), in the order of ``index``."""
        if isinstance(index, slice):
            ids = self.ids[index]

            def take(t: Tensor) -> Tensor:
                return t[index]

        else:  # the ids from the index where it is (a DataLoader's: the CPU, no device sync)
            where = torch.as_tensor(index, dtype=torch.long)
            ids = tuple(self.ids[i] for i in where.tolist()) if self.ids else ()
            rows = where.to(self.present.device)

            def take(t: Tensor) -> Tensor:
                return t.index_select(0, rows)

        return WeakLabels(
            {n: take(v) for n, v in self.values.items()},
            {n: take(b) for n, b in self.bounds.items()},
            take(self.present),
            ids,
            check=False,
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> WeakLabels:
        """The same weak labels on ``device`` with the values in ``dtype``."""

        def move(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype)

        return WeakLabels(
            {n: move(v) for n, v in self.values.items()},
            {n: move(b) for n, b in self.bounds.items()},
            self.present.to(device=device),
            self.ids,
            check=False,
        )


def _complete(
    values: dict[str, Tensor], bounds: dict[str, Tensor], n: int, k: int, present: Tensor
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Both dicts with the same names, the missing side NaN; ValueError on a bad shape or dtype."""
    for name, t in [*values.items(), *bounds.items()]:
        check_descriptor_name(name)
        if not isinstance(t, Tensor) or not t.is_floating_point():
            got = getattr(t, "dtype", type(t).__name__)
            raise ValueError(f"{name}: expected a floating tensor, got {got}")
    for name, t in values.items():
        if t.ndim != 3 or t.shape[:2] != (n, k):
            raise ValueError(
                f"values[{name!r}]: expected shape ({n}, {k}, n), got {tuple(t.shape)}"
            )
    for name, t in bounds.items():
        if t.ndim != 4 or t.shape[:2] != (n, k) or t.shape[-1] != 2:
            raise ValueError(
                f"bounds[{name!r}]: expected shape ({n}, {k}, n, 2), got {tuple(t.shape)}"
            )
    for name in set(values) & set(bounds):
        if values[name].shape[2] != bounds[name].shape[2]:
            raise ValueError(
                f"bounds[{name!r}]: expected {values[name].shape[2]} values per class as in "
                f"values, got {bounds[name].shape[2]}"
            )
    for name in sorted(set(values) | set(bounds)):
        ref = values[name] if name in values else bounds[name]
        nan = torch.full((n, k, ref.shape[2]), math.nan, dtype=ref.dtype, device=ref.device)
        values.setdefault(name, nan)
        bounds.setdefault(name, nan[..., None].expand(-1, -1, -1, 2).clone())
    return values, bounds


def _check_entries(name: str, values: Tensor, bounds: Tensor, present: Tensor) -> None:
    """ValueError unless each entry is a finite value, a pair lower <= upper, or nothing."""
    lo, hi = bounds[..., 0], bounds[..., 1]
    given_value, given_bounds = ~values.isnan(), ~lo.isnan()
    problems = {
        "a value that is not finite": (values.isinf()).any(),
        "one side of [lower, upper] NaN (an open side is ±inf)": (lo.isnan() != hi.isnan()).any(),
        "lower > upper": (lo > hi).any(),
        "a value and bounds for the same entry": (given_value & given_bounds).any(),
        "a value or bounds for an absent class": (
            (given_value | given_bounds) & ~present[..., None]
        ).any(),
    }
    flags = torch.stack(list(problems.values())).tolist()
    for (what, _), bad in zip(problems.items(), flags, strict=True):
        if bad:
            raise ValueError(
                f"{name}: expected a value, [lower, upper] or nothing per entry, got {what}"
            )


def weak_labels_from_masks(
    labels: Tensor,
    n_classes: int,
    terms: Sequence[DescriptorTerm],
    *,
    spacing: SpacingLike = None,
    dtype: torch.dtype = torch.float64,
    ids: Sequence[str] = (),
) -> WeakLabels:
    """The values the terms' precise bounds read from label maps (B, *spatial), as ``WeakLabels``.

    The values of each non-constant term's descriptor on the term's classes, with its options
    (and in mm with ``spacing`` for ``physical`` terms); NaN elsewhere and for absent classes;
    ``present`` = the class has a pixel. Two terms on one descriptor must share options and units.
    Shown in examples/train_your_own.py.
    """
    onehot = labels_to_onehot(labels, n_classes, dtype)
    present = onehot.flatten(2).sum(-1) > 0
    seen: dict[str, tuple] = {}
    values: dict[str, Tensor] = {}
    wanted: dict[str, Tensor] = {}  # per descriptor: the classes its terms constrain
    for term in terms:
        if term.is_constant:
            continue
        if max(term.classes) >= n_classes:
            raise ValueError(
                f"terms: expected classes below n_classes = {n_classes}, got {term.classes} "
                f"in term {term.label!r}"
            )
        how = (dict(term.options), term.physical)
        if seen.setdefault(term.descriptor, how) != how:
            raise ValueError(
                f"terms: expected one set of options and units per descriptor, got two for "
                f"{term.descriptor!r}: {seen[term.descriptor]} and {how}"
            )
        if term.descriptor not in values:
            g = Geometry(onehot, spacing if term.physical else None)
            values[term.descriptor] = DESCRIPTORS[term.descriptor].compute(g, **term.options)
        classes = torch.zeros(n_classes, dtype=torch.bool, device=labels.device)
        classes[list(term.classes)] = True
        wanted[term.descriptor] = wanted.get(term.descriptor, classes) | classes
    keep = {name: present & wanted[name] for name in values}  # the terms' classes, where present
    values = {n: torch.where(keep[n][..., None], v.to(dtype), math.nan) for n, v in values.items()}
    return WeakLabels(values, {}, present, tuple(ids))


def weak_labels_from_values(
    per_class: Mapping[int, Mapping[str, Tensor]],
    n_classes: int,
    *,
    ids: Sequence[str] = (),
    dtype: torch.dtype = torch.float64,
) -> WeakLabels:
    """``WeakLabels`` from ``{class: {descriptor: values (N, n)}}`` (e.g. ``ellipse_descriptors``).

    NaN rows: not given. A class is present in an image where it has a value; the classes not
    listed are absent. Shown in examples/train_your_own.py.
    """
    tables = [t for by_name in per_class.values() for t in by_name.values()]
    if not tables or any(not isinstance(t, Tensor) or t.ndim != 2 for t in tables):
        raise ValueError(
            f"per_class: expected {{class: {{descriptor: (N, n) tensor}}}}, got {per_class!r}"
        )
    n = tables[0].shape[0]
    if any(c not in range(n_classes) for c in per_class) or any(t.shape[0] != n for t in tables):
        raise ValueError(
            f"per_class: expected classes in [0, {n_classes - 1}] and {n} images in every "
            f"table, got classes {sorted(per_class)} and {[t.shape[0] for t in tables]} images"
        )
    present = torch.zeros(n, n_classes, dtype=torch.bool)
    values: dict[str, Tensor] = {}
    for c, by_name in per_class.items():
        for name, t in by_name.items():
            if name not in values:
                values[name] = torch.full((n, n_classes, t.shape[1]), math.nan, dtype=dtype)
            if values[name].shape[2] != t.shape[1]:
                raise ValueError(
                    f"per_class[{c}][{name!r}]: expected {values[name].shape[2]} values per "
                    f"image as for the other classes, got {t.shape[1]}"
                )
            values[name][:, c] = t.to(dtype)
            present[:, c] |= ~t.isnan().all(1).cpu()
    return WeakLabels(values, {}, present, tuple(ids))


def check_weak_target(weak: WeakLabels, terms: Sequence[DescriptorTerm], probs: Tensor) -> None:
    """ValueError unless ``weak`` holds B images, K classes and every precise term's descriptor."""
    B, K, *spatial = probs.shape
    if (len(weak), weak.n_classes) != (B, K):
        raise ValueError(
            f"target: expected weak labels of {B} images and {K} classes to match probs, got "
            f"{len(weak)} images and {weak.n_classes} classes"
        )
    for term in terms:
        if term.is_constant:
            continue
        n = DESCRIPTORS[term.descriptor].n_values(len(spatial))
        if term.descriptor not in weak.values:
            raise ValueError(
                f"target: expected weak labels for {term.descriptor!r} (term {term.label!r}), "
                f"got descriptors {sorted(weak.values)}"
            )
        if weak.values[term.descriptor].shape[2] != n:
            raise ValueError(
                f"target: expected {n} values of {term.descriptor!r} per class for "
                f"{len(spatial)}-D images, got {weak.values[term.descriptor].shape[2]}"
            )


def weak_bounds(
    weak: WeakLabels, terms: Sequence[DescriptorTerm], tables: LossTables, policy: str
) -> Tensor:
    """Bounds (B, columns, 2) from weak labels: the mask path's rules, values given directly.

    A value gets the term's precise bounds and the empty policy (``column_bounds``); given
    bounds are used as they are; an entry given neither way is free (``[-inf, inf]``).
    """
    values, given = [], []
    ref = weak.present
    for term, select, width in zip(terms, tables.selectors, tables.widths, strict=True):
        if term.is_constant:  # constant bounds: nothing to read
            nan = torch.full(
                (len(weak), width), math.nan, dtype=tables.weight.dtype, device=ref.device
            )
            values.append(nan)
            given.append(nan[..., None].expand(-1, -1, 2))
            continue
        v, b = weak.values[term.descriptor], weak.bounds[term.descriptor]
        if not isinstance(select, slice):
            v, b = v.index_select(1, select), b.index_select(1, select)
        else:
            v, b = v[:, select], b[:, select]
        values.append(v.flatten(1))
        given.append(b.flatten(1, 2))
    present = weak.present.index_select(1, tables.cls)
    bounds = column_bounds(tables.rules, torch.cat(values, dim=1), present, policy)
    given_bounds = torch.cat(given, dim=1)
    bounds = torch.where(given_bounds.isnan(), bounds, given_bounds)
    return torch.where(
        bounds.isnan(),
        torch.tensor([-math.inf, math.inf], dtype=bounds.dtype, device=bounds.device),
        bounds,
    )
