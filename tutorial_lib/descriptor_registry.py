"""The descriptor registry: one ``Descriptor`` per name, the built-in ones and your own.

``DESCRIPTORS[name]`` says how a descriptor is computed (from a shared ``Geometry``), how many
values it has, and how the loss bounds it (``extensive``, ``signed``). ``register_descriptor`` adds
a descriptor of your own after checking it on probes, so that ``DescriptorTerm(name, ...)`` works
in the loss; ``unregister_descriptor`` and ``registered_descriptor`` (a context manager) remove it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from tutorial_lib.geometry import Geometry, SpacingLike, check_probs, safe_sqrt, spacing_ok
from tutorial_lib.laplacian import check_connectivity

__all__ = [
    "BUILT_IN",
    "DESCRIPTORS",
    "RESERVED",
    "Descriptor",
    "check_descriptor_name",
    "register_descriptor",
    "registered_descriptor",
    "unregister_descriptor",
]


@dataclass(frozen=True)
class Descriptor:
    """One soft descriptor: how it is computed, how many values it has, how it is bounded.

    - ``compute(g, **options)``: the values (B, K, n) from a shared ``Geometry`` (compute dtype).
    - ``n_values(n_axes)``: n for images with ``n_axes`` spatial axes.
    - ``extensive``: vanishes on an empty class (size, length): the corrected empty-class policy
      bounds an absent class to ``[0, 0]``; other descriptors of an absent class are left free.
    - ``signed``: can be negative (covariance, orientation): precise bounds are not clamped at 0.
    - ``options``: the keyword options it accepts (``"connectivity"`` for the length).

    Calling it, ``DESCRIPTORS[name](p, *, spacing=None, **options)``, validates ``p`` and returns
    ``(B, K, n)`` in the dtype of ``p``.
    """

    name: str
    compute: Callable[..., Tensor]
    n_values: Callable[[int], int] = lambda n_axes: 1
    extensive: bool = False
    signed: bool = False
    options: tuple[str, ...] = ()

    def check_options(self, n_axes: int, options: Mapping[str, int | None]) -> None:
        """Raise ValueError unless every option is one this descriptor takes, with a valid value."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise ValueError(
                f"options: expected keywords among {list(self.options)} for {self.name!r}, "
                f"got {unknown}"
            )
        if "connectivity" in self.options:
            check_connectivity(n_axes, options.get("connectivity"))

    def __call__(self, p: Tensor, *, spacing: SpacingLike = None, **options) -> Tensor:
        check_probs(p)
        if isinstance(spacing, Tensor) and not bool(spacing_ok(spacing)):
            raise ValueError(f"spacing: expected positive finite mm per axis, got {spacing}")
        self.check_options(p.ndim - 2, options)
        return self.compute(Geometry(p, spacing), **options).to(p.dtype)


def _compactness(g: Geometry, connectivity: int | None = None) -> Tensor:
    return g.length(connectivity).square() / (g.size() + g.eps)


def _eigen_2d(cov: Tensor) -> tuple[Tensor, Tensor]:
    a, b, c = cov[..., 0:1], cov[..., 1:2], cov[..., 2:3]
    half_sum = (a + c) / 2
    rad = safe_sqrt(((a - c) / 2).square() + b.square())
    return half_sum + rad, half_sum - rad


def _eccentricity(g: Geometry) -> Tensor:
    cov = g.covariance()
    if g.nd == 2:
        big, small = _eigen_2d(cov)
    else:
        idx = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 4, 5]], device=cov.device)
        eig = torch.linalg.eigvalsh(cov[..., idx])
        big, small = eig[..., 2:3], eig[..., 0:1]
    return safe_sqrt(1 - small.clamp_min(0) / (big + g.eps))


def _orientation(g: Geometry) -> Tensor:
    if g.nd != 2:
        raise ValueError(
            f"orientation: expected 2-D probabilities (B, K, H, W), got shape {tuple(g.p.shape)}"
        )
    cov = g.covariance()
    a, b, c = cov[..., 0:1], cov[..., 1:2], cov[..., 2:3]
    y, x = 2 * b, a - c
    degenerate = (x == 0) & (y == 0)
    return 0.5 * torch.atan2(y, torch.where(degenerate, torch.ones_like(x), x))


_CONNECTIVITY = ("connectivity",)
DESCRIPTORS: dict[str, Descriptor] = {
    d.name: d
    for d in (
        Descriptor("size", Geometry.size, extensive=True),
        Descriptor("centroid", Geometry.centroid, lambda n_axes: n_axes),
        Descriptor("dist_centroid", Geometry.dist_centroid, lambda n_axes: n_axes),
        Descriptor("length", Geometry.length, extensive=True, options=_CONNECTIVITY),
        Descriptor("compactness", _compactness, options=_CONNECTIVITY),
        Descriptor("covariance", Geometry.covariance, lambda n: n * (n + 1) // 2, signed=True),
        Descriptor("eccentricity", _eccentricity),
        Descriptor("orientation", _orientation, signed=True),
    )
}
"""Name -> ``Descriptor``; each is called as ``f(p, *, spacing=None, **options) -> (B, K, n)``.

Taught in notebook 00 (and your own, with ``register_descriptor``, in notebook 08).
"""


def check_descriptor_name(name: str) -> None:
    if name not in DESCRIPTORS:
        raise ValueError(f"descriptor: expected one of {sorted(DESCRIPTORS)}, got {name!r}")


BUILT_IN = frozenset(DESCRIPTORS)
"""The names of the library's own descriptors: they cannot be replaced or unregistered."""
RESERVED = frozenset({"present"})
"""Words that are not descriptor names: the weak-label tables' presence row."""

_PROBE_BATCH = (2, 3)  # (B, K) of the probes a new descriptor is checked on


def _on_probabilities(fn: Callable[..., Tensor], g: Geometry, **options) -> Tensor:
    """A descriptor written for probabilities, called on the shared geometry's ``p``."""
    return fn(g.p, **options)


def register_descriptor(
    name: str,
    fn: Callable[..., Tensor],
    n_values: int | Callable[[int], int] = 1,
    *,
    extensive: bool = False,
    signed: bool = False,
    options: Sequence[str] = (),
    uses_geometry: bool = False,
    probe_shape: Sequence[int] = (8, 8),
) -> Descriptor:
    """Add a descriptor of your own to ``DESCRIPTORS``; then ``DescriptorTerm(name, ...)`` works.

    - ``fn(p, **options)``: probabilities ``p`` (B, K, *spatial), float32 or float64, to values
      (B, K, n) in the dtype of ``p``, differentiable. With ``uses_geometry=True``, ``fn(g, **options)``
      gets the shared ``Geometry`` instead (``g.p``, ``g.spacing`` in mm for ``physical`` terms,
      ``g.centroid()``, ...); without it, a spacing does not reach ``fn``.
    - ``n_values``: n, or a function ``n_axes -> n``.
    - ``extensive``, ``signed``, ``options``: as the fields of ``Descriptor``.

    Checked before it is added, with the same messages as bad input elsewhere: the name is new (no
    clash with a built-in or registered one); on random probabilities (2, 3, *probe_shape) in
    float32 and float64, ``fn`` returns a finite (2, 3, n) tensor of that dtype with a finite
    gradient (``probe_shape``: 2 or 3 sizes, e.g. the images' own for a descriptor tied to them).
    Returns the new entry. Taught in notebook 08.
    """
    if not (isinstance(name, str) and name.isidentifier()):
        raise ValueError(
            f"name: expected a Python identifier such as 'my_descriptor', got {name!r}"
        )
    if name in RESERVED:
        raise ValueError(
            f"name: expected a name other than {name!r} (a word of the tables), got {name!r}"
        )
    if name in DESCRIPTORS:
        kind = "a built-in descriptor" if name in BUILT_IN else "registered already"
        raise ValueError(f"name: expected a name not in DESCRIPTORS, got {name!r} ({kind})")
    if not callable(fn):
        raise ValueError(f"fn: expected a function of the probabilities, got {type(fn).__name__}")
    count = _n_values_function(n_values)
    for flag, value in (
        ("extensive", extensive),
        ("signed", signed),
        ("uses_geometry", uses_geometry),
    ):
        if not isinstance(value, bool):
            raise ValueError(f"{flag}: expected True or False, got {value!r}")
    names = (options,) if isinstance(options, str) else tuple(options)
    if not all(isinstance(o, str) and o.isidentifier() for o in names):
        raise ValueError(f"options: expected a sequence of keyword names, got {options!r}")
    compute = fn if uses_geometry else functools.partial(_on_probabilities, fn)
    entry = Descriptor(name, compute, count, extensive, signed, names)
    _probe(entry, _probe_spatial(probe_shape))
    DESCRIPTORS[name] = entry
    return entry


def _n_values_function(n_values: int | Callable[[int], int]) -> Callable[[int], int]:
    if callable(n_values):
        return n_values
    if isinstance(n_values, bool) or not isinstance(n_values, int) or n_values < 1:
        raise ValueError(
            f"n_values: expected an integer >= 1 or a function n_axes -> n, got {n_values!r}"
        )
    return functools.partial(_constant_count, n_values)


def _constant_count(n: int, n_axes: int) -> int:
    return n


def _probe_spatial(shape: Sequence[int]) -> tuple[int, ...]:
    spatial = tuple(shape) if isinstance(shape, Sequence) else ()
    if len(spatial) not in (2, 3) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in spatial
    ):
        raise ValueError(f"probe_shape: expected 2 or 3 positive sizes (H, W), got {shape!r}")
    return spatial


def _probe(entry: Descriptor, spatial: tuple[int, ...]) -> None:
    """ValueError unless ``entry`` gives finite, differentiable (B, K, n) values of p's dtype."""
    shape = (*_PROBE_BATCH, *spatial)
    n = entry.n_values(len(spatial))
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"n_values: expected an integer >= 1 for {len(spatial)}-D images, got {n!r}"
        )
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        p = torch.randn(shape, generator=generator, dtype=dtype).softmax(1)
        p.requires_grad_(True)
        try:
            out = entry.compute(Geometry(p))
        except Exception as err:
            raise ValueError(
                f"fn: expected a function of probabilities {shape} ({dtype}), got an "
                f"error on a probe: {type(err).__name__}: {err}"
            ) from err
        if not isinstance(out, Tensor) or tuple(out.shape) != (*_PROBE_BATCH, n):
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"fn: expected values of shape {(*_PROBE_BATCH, n)} (B, K, n_values) for "
                f"probabilities {shape}, got {got}"
            )
        if out.dtype != dtype:
            raise ValueError(f"fn: expected values in the dtype of p ({dtype}), got {out.dtype}")
        if not out.requires_grad:
            raise ValueError(
                "fn: expected values differentiable in p, got values without a gradient "
                "(a detach, an .item(), numpy or an integer step?)"
            )
        (grad,) = torch.autograd.grad(out.sum(), p, allow_unused=True)
        if (
            not bool(torch.isfinite(out).all())
            or grad is None
            or not bool(torch.isfinite(grad).all())
        ):
            raise ValueError(
                f"fn: expected finite values and gradients on random probabilities ({dtype}), "
                f"got {'no gradient' if grad is None else 'NaN or inf'}"
            )


def unregister_descriptor(name: str) -> None:
    """Remove a descriptor added by ``register_descriptor`` (the built-in ones stay).

    Taught in notebook 08.
    """
    if name in BUILT_IN:
        raise ValueError(f"name: expected a registered descriptor, got {name!r} (a built-in one)")
    if name not in DESCRIPTORS:
        raise ValueError(
            f"name: expected a registered descriptor among {sorted(set(DESCRIPTORS) - BUILT_IN)}, "
            f"got {name!r}"
        )
    del DESCRIPTORS[name]


@contextmanager
def registered_descriptor(
    name: str, fn: Callable[..., Tensor], *args, **kwargs
) -> Iterator[Descriptor]:
    """``register_descriptor(name, fn, ...)`` for the ``with`` block only (tests, a notebook cell)."""
    entry = register_descriptor(name, fn, *args, **kwargs)
    try:
        yield entry
    finally:
        DESCRIPTORS.pop(name, None)
