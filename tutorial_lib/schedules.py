"""The two per-epoch schedules of a training run: the barrier parameter t and the learning rate.

- ``MultiplyT``: ``t = min(t0 * factor ** epoch, max_t, MAX_T)``, stepped once per epoch (the paper:
  t0 = 1, factor 1.1). ``MAX_T = 1e18`` (reached after 435 epochs at x1.1; a 300-epoch run ends
  near 2.6e12) keeps ``1/t^2`` a normal float32 number and ``t * z`` far from float32's overflow,
  so the barrier stays finite however long a run goes.
- ``LRSchedule``: the authors' rule, halve the LR after epoch i when ``i % (best_epoch + 20) == 0``.

Both have ``state_dict()`` / ``load_state_dict()`` so that a resumed run continues exactly.
"""

from __future__ import annotations

import dataclasses
import math

import torch

__all__ = ["MultiplyT", "LRSchedule", "MAX_T"]

MAX_T = 1e18  # the largest t of the schedule (see the module docstring)


class MultiplyT:
    """t schedule of the paper: ``t = t0 * factor ** n_steps`` (``step()`` once per epoch).

    ``max_t`` (optional) caps t; t never exceeds ``MAX_T`` either. ``state_dict()`` /
    ``load_state_dict()`` make resuming exact. Taught in notebook 03.
    """

    def __init__(self, t0: float = 1.0, factor: float = 1.1, max_t: float | None = None) -> None:
        if not (isinstance(t0, (int, float)) and math.isfinite(t0) and 0 < t0 <= MAX_T):
            raise ValueError(f"t0: expected a positive number <= MAX_T = {MAX_T:g}, got {t0!r}")
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
        self.t = min(self.t * self.factor, MAX_T)
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
                f"MultiplyT state: expected keys t, t0, factor, steps, max_t, got one missing "
                f"{sorted(missing)}"
            )
        self.t = float(state["t"])
        self.t0 = float(state["t0"])
        self.factor = float(state["factor"])
        self.max_t = None if state.get("max_t") is None else float(state["max_t"])
        self.steps = int(state["steps"])

    def __repr__(self) -> str:
        return f"MultiplyT(t0={self.t0}, factor={self.factor}, max_t={self.max_t}, t={self.t:.4g}, steps={self.steps})"


@dataclasses.dataclass
class LRSchedule:
    """The authors' rule: after epoch i, halve the LR when `i % (best_epoch + 20) == 0`.

    "paper" fires after epoch 0 too (their code); "paper-skip-epoch0" skips that; "constant" never.
    Taught in notebook 05.
    """

    rule: str
    lr: float

    def step(self, epoch: int, best_epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        """Apply the rule after `epoch`; True when the LR was halved (in every param group)."""
        fire = self.rule != "constant" and epoch % (best_epoch + 20) == 0
        if self.rule == "paper-skip-epoch0":
            fire = fire and epoch > 0
        if fire:
            self.lr *= 0.5
            for group in optimizer.param_groups:
                if isinstance(group["lr"], torch.Tensor):  # graph mode: the tensor a graph reads
                    group["lr"].fill_(self.lr)
                else:
                    group["lr"] = self.lr
        return fire

    def state_dict(self) -> dict[str, str | float]:
        return {"rule": self.rule, "lr": self.lr}

    def load_state_dict(self, state: dict[str, str | float]) -> None:
        self.rule, self.lr = str(state["rule"]), float(state["lr"])
