"""Checkpoints that resume a run exactly, written atomically and read with `weights_only=True`.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts (nothing pickled beyond
that), so `torch.load(..., weights_only=True)` reads it:

    {"format": 1, "epoch": epochs completed, "model": state_dict, "optimizer": state_dict,
     "lr_schedule": {...}, "t_schedule": {...}, "rng": {"torch", "cuda", "augment", "shuffle"},
     "best": {"score", "epoch"}, "history": [metrics row per epoch], "config": config dict}
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from tutorial_lib.runlog import atomic_write_bytes, damaged_file

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint",
    "load_checkpoint",
    "require_keys",
    "capture_rng",
    "restore_rng",
]

CHECKPOINT_FORMAT = 1


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Atomically write `state` (plus the format number) to `path`."""
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(
    path: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (weights_only=True: no arbitrary code).

    A file that torch cannot read (truncated, garbage, a pickle with code) or of another format
    raises DamagedRunFileError (a ValueError) naming the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint: expected a file at {path}, got none")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types for one cause: bad bytes
        raise damaged_file(path, "a checkpoint written by train", error) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise damaged_file(path, f"checkpoint format {CHECKPOINT_FORMAT}", f"format {got!r}")
    return state


def require_keys(state: dict[str, Any], keys: tuple[str, ...], path: str | os.PathLike) -> None:
    """DamagedRunFileError when the checkpoint `state` (read from `path`) lacks one of `keys`."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise damaged_file(path, f"the keys {', '.join(keys)}", f"a file without {missing}")


def capture_rng(generators: dict[str, torch.Generator]) -> dict[str, Any]:
    """The global torch (and CUDA) RNG states plus the states of the named generators."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    for name, generator in generators.items():
        state[name] = generator.get_state()
    return state


def restore_rng(state: dict[str, Any], generators: dict[str, torch.Generator]) -> None:
    """Inverse of `capture_rng`."""
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    for name, generator in generators.items():
        if name not in state:
            raise ValueError(f"checkpoint RNG states: expected {name!r}, got only {sorted(state)}")
        generator.set_state(state[name].cpu())
