"""Errors that end a training run (kept free of torch so the command line can import it cheaply).

Exit codes of `python -m tutorial_lib`: 0 done, 1 a run failed (`RunError`), 2 bad input
(`ValueError`, a missing or already existing file).
"""

from __future__ import annotations

__all__ = ["RunError", "NonFiniteLossError", "RunFailedError"]


class RunError(RuntimeError):
    """A training run stopped before its end; its run directory keeps the last finished epoch."""


class NonFiniteLossError(RunError):
    """The loss became NaN or infinite; the run stopped and `last.pt` holds the last good epoch."""


class RunFailedError(RunError):
    """A run's process ended without a result (killed, out of memory, crashed)."""
