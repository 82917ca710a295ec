"""Errors that end a training run (kept free of torch so the command line can import it cheaply).

Exit codes of `python -m tutorial_lib`: 0 done, 1 a run failed (`RunError`), 2 bad input
(`ValueError`, a missing or already existing file), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

__all__ = [
    "RunError",
    "NonFiniteLossError",
    "RunFailedError",
    "DamagedRunFileError",
    "RunFolderBusyError",
]


class RunError(RuntimeError):
    """A training run stopped before its end; its run directory keeps the last finished epoch."""


class NonFiniteLossError(RunError):
    """The loss became NaN or infinite; the run stopped and `last.pt` holds the last good epoch."""


class RunFailedError(RunError):
    """A run's process ended without a result (killed, out of memory, crashed)."""


class DamagedRunFileError(ValueError):
    """A file of a run folder cannot be read back (truncated, garbage, keys missing): bad input.

    Not a failed run: `--resume` cannot repair it; the message names the file and what to do.
    """


class RunFolderBusyError(ValueError):
    """Another process holds the run folder's lock (it is training or evaluating into it)."""
