"""The shared geometry of a probability map: input checks and ``Geometry`` (cached moments).

Probabilities ``p`` are ``(B, K, H, W)`` or ``(B, K, D, H, W)``. Internally the sums run in float32
at least (float64 stays float64). Coordinates are array indices in array order ((row, col) or
(slice, row, col)), multiplied by ``spacing`` (mm per axis) when one is given: a sequence of one
value per spatial axis, or a tensor of shape ``(n_axes,)`` or ``(B, n_axes)``.

How it stays fast: moments come from 1-D marginals (``p`` summed over the other axes, two passes
over ``p``), never from coordinate grids; the length is the graph-Laplacian form computed with
shifted in-place sums (``tutorial_lib.laplacian``), never a Laplacian matrix. No loop over batch or
class, no ``.item()``, no numpy. The descriptors built on it are in ``descriptor_registry``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from tutorial_lib.laplacian import laplacian_form

__all__ = ["Geometry", "SpacingLike", "check_probs", "safe_sqrt", "spacing_ok"]

EPS = 1e-10  # the authors' epsilon for divisions by the size (keeps empty classes finite)
SpacingLike = Sequence[float] | Tensor | None


# ----------------------------------------------------------------------------------------------
# Validation (at the boundary, once)
# ----------------------------------------------------------------------------------------------
def check_probs(p: Tensor, name: str = "p", *, check_nan: bool = True) -> None:
    """Raise ValueError unless ``p`` is a floating (B, K, H, W) or (B, K, D, H, W) tensor, finite.

    The NaN / inf check reads one boolean back from the device (a synchronisation on GPU).
    """
    if not isinstance(p, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(p).__name__}")
    if p.ndim not in (4, 5):
        raise ValueError(
            f"{name}: expected shape (B, K, H, W) or (B, K, D, H, W) (ndim 4 or 5), "
            f"got shape {tuple(p.shape)} (ndim {p.ndim})"
        )
    if not p.is_floating_point():
        raise ValueError(
            f"{name}: expected a floating-point tensor of probabilities, got dtype {p.dtype}"
        )
    if check_nan and not bool(torch.isfinite(p).all()):
        raise ValueError(f"{name}: expected finite probabilities, got NaN or inf values")


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)


def spacing_ok(spacing: Tensor) -> Tensor:
    """A boolean tensor (no read-back): every value of a spacing tensor positive and finite."""
    return ((spacing > 0) & torch.isfinite(spacing)).all()


def _spacing_tensor(spacing: SpacingLike, p: Tensor, dtype: torch.dtype) -> Tensor | None:
    """Spacing as a (B or 1, n_axes) tensor on p's device, or None for unit spacing."""
    if spacing is None:
        return None
    nd = p.ndim - 2
    if isinstance(spacing, Tensor):
        s = spacing.to(device=p.device, dtype=dtype)
    else:
        try:
            s = torch.tensor([float(v) for v in spacing], dtype=dtype, device=p.device)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"spacing: expected a sequence of {nd} floats or a tensor, got {spacing!r}"
            ) from err
    if s.ndim == 1:
        s = s[None]
    if s.ndim != 2 or s.shape[-1] != nd or s.shape[0] not in (1, p.shape[0]):
        raise ValueError(
            f"spacing: expected {nd} values (one per spatial axis), shape ({nd},) or "
            f"({p.shape[0]}, {nd}), for probabilities of shape {tuple(p.shape)}; got shape {tuple(s.shape)}"
        )
    if not isinstance(spacing, Tensor) and not bool(spacing_ok(s)):
        raise ValueError(f"spacing: expected positive finite mm per axis, got {list(spacing)}")
    return s


# ----------------------------------------------------------------------------------------------
# Shared computations: one object per probability map, caching marginals and moments
# ----------------------------------------------------------------------------------------------
class Geometry:
    """Lazily computed, cached moments of one probability map (used by the losses to share work).

    ``p`` must already be validated. Values are in the compute dtype (float32 at least).
    """

    def __init__(self, p: Tensor, spacing: SpacingLike = None, eps: float = EPS) -> None:
        dtype = _compute_dtype(p.dtype)
        self.p = p.to(dtype)
        self.nd = p.ndim - 2
        self.spacing = _spacing_tensor(spacing, p, dtype)
        self.eps = eps
        self._cache: dict[object, Tensor] = {}

    # -- building blocks ------------------------------------------------------------------------
    def _cached(self, key: object, fn: Callable[[], Tensor]) -> Tensor:
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def marginal2(self, i: int, j: int) -> Tensor:
        """p summed over every spatial axis but i < j: (B, K, N_i, N_j)."""
        if self.nd == 2:
            return self.p
        other = 2 + ({0, 1, 2} - {i, j}).pop()
        return self._cached(("m2", i, j), lambda: self.p.sum(other))

    def marginal(self, a: int) -> Tensor:
        """p summed over every spatial axis but a: (B, K, N_a)."""

        def compute() -> Tensor:
            if self.nd == 2:
                return self.p.sum(-1) if a == 0 else self.p.sum(-2)
            if a == 2:
                return self.p.sum((-2, -3))
            return self.marginal2(0, 1).sum(-1 if a == 0 else -2)

        return self._cached(("m", a), compute)

    def marginals(self) -> Tensor:
        """The marginals of all axes, zero-padded to the longest axis N: (B, K, n_axes, N).

        One tensor for all axes, so each moment below is a few kernels whatever n_axes is; the
        padding holds no mass, so it adds exact zeros to every sum.
        """

        def compute() -> Tensor:
            n = max(self.p.shape[2:])
            ms = [self.marginal(a) for a in range(self.nd)]
            ms = [m if m.shape[-1] == n else F.pad(m, (0, n - m.shape[-1])) for m in ms]
            return torch.stack(ms, dim=2)

        return self._cached("marginals", compute)

    def coords(self) -> Tensor:
        """Coordinates ``0..N-1`` of every axis (N, the longest), in mm if a spacing is given.

        (N,) without a spacing, (B or 1, 1, n_axes, N) with one: broadcasts against ``marginals()``.
        """

        def compute() -> Tensor:
            x = _arange(max(self.p.shape[2:]), self.p.device, self.p.dtype)
            return x if self.spacing is None else x * self.spacing[:, None, :, None]

        return self._cached("x", compute)

    def voxel_volume(self) -> Tensor | float:
        return 1.0 if self.spacing is None else self.spacing.prod(-1)[:, None, None]

    def mass(self) -> Tensor:
        """Sum of p over space, (B, K, 1) (the size in voxels)."""
        return self._cached("mass", lambda: self.marginal(0).sum(-1, keepdim=True))

    def _denominator(self) -> Tensor:
        """``mass + eps``: what the normalised moments divide by, (B, K, 1)."""
        return self._cached("denominator", lambda: self.mass() + self.eps)

    # -- descriptors ----------------------------------------------------------------------------
    def size(self) -> Tensor:
        return self.mass() if self.spacing is None else self.mass() * self.voxel_volume()

    def centroid(self) -> Tensor:
        def compute() -> Tensor:
            return (self.marginals() * self.coords()).sum(-1) / self._denominator()

        return self._cached("centroid", compute)

    def _centred(self) -> Tensor:
        """Coordinates minus the centroid, every axis: (B, K, n_axes, N)."""
        return self._cached("xc", lambda: self.coords() - self.centroid()[..., None])

    def centred(self, a: int) -> Tensor:
        """Coordinates minus the centroid along axis a: (B, K, N_a)."""
        return self._centred()[..., a, : self.p.shape[2 + a]]

    def variance(self) -> Tensor:
        """Per-axis second central moment divided by the size: (B, K, n_axes)."""

        def compute() -> Tensor:
            return (self.marginals() * self._centred().square()).sum(-1) / self._denominator()

        return self._cached("variance", compute)

    def dist_centroid(self) -> Tensor:
        return safe_sqrt(self.variance())

    def covariance(self) -> Tensor:
        """Upper triangle (row-major) of the normalised central second-moment matrix."""

        def compute() -> Tensor:
            var = self.variance()
            out = []
            for i in range(self.nd):
                for j in range(i, self.nd):
                    if i == j:
                        out.append(var[..., i : i + 1])
                    else:
                        m = self.marginal2(i, j)
                        cross = torch.einsum(
                            "bkij,bkj->bki", m, self.centred(j).expand(*m.shape[:2], -1)
                        )
                        num = (cross * self.centred(i)).sum(-1, keepdim=True)
                        out.append(num / self._denominator())
            return torch.cat(out, dim=-1)

        return self._cached("covariance", compute)

    def length(self, connectivity: int | None = None) -> Tensor:
        return self._cached(
            ("length", connectivity), lambda: laplacian_form(self.p, connectivity, self.spacing)
        )


@lru_cache(maxsize=32)
def _arange(n: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """``arange(n)``, made once per (length, device, dtype): one kernel less per axis and call."""
    with torch.inference_mode(False):  # usable by autograd even if first made in inference mode
        return torch.arange(n, dtype=dtype, device=device)


def safe_sqrt(x: Tensor) -> Tensor:
    """sqrt(max(x, 0)), exact in value, with gradient 0 (instead of inf) where x <= 0."""
    positive = x > 0
    return torch.where(positive, torch.where(positive, x, 1.0).sqrt(), 0.0)
