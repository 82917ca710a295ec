"""Penalties that turn a constraint ``z <= 0`` into a loss (the schedule of t is in ``schedules``).

- ``log_barrier_extension(z, t)`` (Kervadec et al. 2019), with ``thr = -1/t^2``::

      psi_t(z) = -log(-z) / t                      if z <= thr
      psi_t(z) = t z - log(1/t^2) / t + 1/t        otherwise

  C^1 at ``thr`` (value ``2 log(t) / t``, slope ``t``). The logarithm is only ever evaluated on
  ``max(-z, 1/t^2) > 0``, so value and gradient are finite for every finite z (the authors' code
  evaluates ``log(-z)`` everywhere and produces NaN at z = 0). ``1/t^2`` is kept at or above the
  smallest normal number of z's dtype (float32: t > 9.2e18 only), so that it never rounds to 0
  in float32; the t of a run stays far below (``schedules.MAX_T``).
- ``quadratic_penalty(z, t)``: ``relu(z)^2`` (the authors' tutorial); t is accepted for a common
  signature and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "PENALTIES",
    "check_penalty_name",
    "log_barrier_extension",
    "quadratic_penalty",
]


def _check_t(t: float | Tensor) -> None:
    if isinstance(t, Tensor):
        if t.numel() != 1:
            raise ValueError(
                f"t: expected a positive scalar, got a tensor of shape {tuple(t.shape)}"
            )
        return  # no read-back from the device in the hot path
    if not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
        raise ValueError(f"t: expected a positive finite number, got {t!r}")


def log_barrier_extension(z: Tensor, t: float | Tensor) -> Tensor:
    """Element-wise log-barrier extension ``psi_t(z)`` (see the module docstring).

    Taught in notebook 03.
    """
    _check_t(t)
    if isinstance(t, Tensor):
        t = t.to(z.dtype)
        log_t = t.log()
    else:
        log_t = math.log(t)
    # the constants are Python numbers for a float t: no extra kernel per call on a GPU
    tiny = torch.finfo(z.dtype).tiny  # 1/t^2 must not round to 0 (then log(0)) in z's dtype
    thr = -(1.0 / (t * t)).clamp_min(tiny) if isinstance(t, Tensor) else -max(1.0 / (t * t), tiny)
    inside = z <= thr
    # log branch on a value that is always >= 1/t^2 > 0: no NaN, no inf, in value or gradient
    barrier = torch.where(inside, z, thr).neg().log() * (-1.0 / t)
    linear = z * t + (2.0 * log_t / t + 1.0 / t)
    return torch.where(inside, barrier, linear)


def quadratic_penalty(z: Tensor, t: float | Tensor | None = None) -> Tensor:
    """Element-wise ``relu(z)^2``; ``t`` is ignored (same signature as the log barrier).

    Taught in notebook 03.
    """
    return torch.relu(z).square()


PENALTIES: dict[str, Callable[[Tensor, float | Tensor], Tensor]] = {
    "log_barrier": log_barrier_extension,
    "quadratic": quadratic_penalty,
}
"""Name -> ``f(z, t)`` applied element-wise to constraint values ``z`` (feasible where z <= 0)."""


def check_penalty_name(name: str) -> None:
    if name not in PENALTIES:
        raise ValueError(f"penalty: expected one of {sorted(PENALTIES)}, got {name!r}")
