"""Penalties that turn a constraint ``z <= 0`` into a loss, and the schedule of their parameter t.

- ``log_barrier_extension(z, t)`` (Kervadec et al. 2019), with ``thr = -1/t^2``::

      psi_t(z) = -log(-z) / t                      if z <= thr
      psi_t(z) = t z - log(1/t^2) / t + 1/t        otherwise

  C^1 at ``thr`` (value ``2 log(t) / t``, slope ``t``). The logarithm is only ever evaluated on
  ``max(-z, 1/t^2) > 0``, so value and gradient are finite for every finite z (the authors' code
  evaluates ``log(-z)`` everywhere and produces NaN at z = 0).
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
    "MultiplyT",
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
    """Element-wise log-barrier extension ``psi_t(z)`` (see the module docstring)."""
    _check_t(t)
    if isinstance(t, Tensor):
        t = t.to(z.dtype)
        log_t = t.log()
    else:
        log_t = math.log(t)
    # the constants are Python numbers for a float t: no extra kernel per call on a GPU
    thr = -1.0 / (t * t)
    inside = z <= thr
    # log branch on a value that is always >= 1/t^2 > 0: no NaN, no inf, in value or gradient
    barrier = torch.where(inside, z, thr).neg().log() * (-1.0 / t)
    linear = z * t + (2.0 * log_t / t + 1.0 / t)
    return torch.where(inside, barrier, linear)


def quadratic_penalty(z: Tensor, t: float | Tensor | None = None) -> Tensor:
    """Element-wise ``relu(z)^2``; ``t`` is ignored (same signature as the log barrier)."""
    return torch.relu(z).square()


PENALTIES: dict[str, Callable[[Tensor, float | Tensor], Tensor]] = {
    "log_barrier": log_barrier_extension,
    "quadratic": quadratic_penalty,
}
"""Name -> ``f(z, t)`` applied element-wise to constraint values ``z`` (feasible where z <= 0)."""


def check_penalty_name(name: str) -> None:
    if name not in PENALTIES:
        raise ValueError(f"penalty: expected one of {sorted(PENALTIES)}, got {name!r}")


class MultiplyT:
    """t schedule of the paper: ``t = t0 * factor ** n_steps`` (``step()`` once per epoch).

    ``max_t`` (optional) caps t. ``state_dict()`` / ``load_state_dict()`` make resuming exact.
    """

    def __init__(self, t0: float = 1.0, factor: float = 1.1, max_t: float | None = None) -> None:
        if not (isinstance(t0, (int, float)) and math.isfinite(t0) and t0 > 0):
            raise ValueError(f"t0: expected a positive finite number, got {t0!r}")
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor: expected a positive finite number, got {factor!r}")
        if max_t is not None and not max_t >= t0:
            raise ValueError(f"max_t: expected None or a number >= t0 = {t0}, got {max_t!r}")
        self.t0 = float(t0)
        self.factor = float(factor)
        self.max_t = None if max_t is None else float(max_t)
        self.steps = 0
        self.t = self.t0

    def step(self) -> float:
        """Advance one epoch and return the new t."""
        self.steps += 1
        self.t = self.t * self.factor
        if self.max_t is not None:
            self.t = min(self.t, self.max_t)
        return self.t

    def state_dict(self) -> dict[str, float | int | None]:
        return {
            "t": self.t,
            "t0": self.t0,
            "factor": self.factor,
            "max_t": self.max_t,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict) -> None:
        missing = {"t", "t0", "factor", "steps"} - set(state)
        if missing:
            raise ValueError(
                f"MultiplyT state: expected keys t, t0, factor, steps, max_t; missing {sorted(missing)}"
            )
        self.t = float(state["t"])
        self.t0 = float(state["t0"])
        self.factor = float(state["factor"])
        self.max_t = None if state.get("max_t") is None else float(state["max_t"])
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return f"MultiplyT(t0={self.t0}, factor={self.factor}, max_t={self.max_t}, t={self.t:.4g}, steps={self.steps})"
