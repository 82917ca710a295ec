"""Checkpoint and resume of a run: what `checkpoints/last.pt` holds, and when a folder resumes.

    check_new_or_resumed(out, resume)           before the data is read: a misused folder fails fast
    config, state = check_resumable(out, config, resume)    under the folder's lock (run_folder)
    restore_run(run, state, path)               the run continues where the checkpoint left it
    save_checkpoint(path, run_state(run))       after every epoch (train)

Resuming with another number of epochs (`train --resume --epochs N`): the config may differ from
the saved one in `epochs` only. The run goes on to N epochs, or, when it has done more already,
stays as it is (nothing is trained); `config.json` then records the epochs the run will have done,
so it never describes a run other than the one in the folder.

A damaged run file (a truncated or garbage checkpoint, one missing keys, a `config.json` or
`metrics.csv` that cannot be read back) raises DamagedRunFileError, a ValueError: exit code 2,
with the file and what to do; `--resume` cannot repair it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tutorial_lib.checkpoint import capture_rng, load_checkpoint, require_keys, restore_rng
from tutorial_lib.config import TrainConfig, config_from_dict, config_to_dict
from tutorial_lib.graphs import keep_execution_options
from tutorial_lib.run_folder import check_folder_is_ours
from tutorial_lib.run_setup import Run
from tutorial_lib.runlog import damaged_file, read_csv, read_json

__all__ = [
    "RESUME_KEYS",
    "run_state",
    "restore_run",
    "check_new_or_resumed",
    "check_resumable",
]


def run_state(run: Run) -> dict[str, Any]:
    """What `checkpoints/last.pt` holds (see tutorial_lib.checkpoint)."""
    return {
        "epoch": run.epoch,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "lr_schedule": run.lr_schedule.state_dict(),
        "t_schedule": run.t_schedule.state_dict(),
        "rng": capture_rng(run.generators),
        "best": {"score": run.best_score, "epoch": run.best_epoch},
        "history": run.history,
        "config": config_to_dict(run.config),
    }


def restore_run(run: Run, state: dict[str, Any], path: Path) -> None:
    """Inverse of `run_state`: the run continues where the checkpoint (read from `path`) left it."""
    try:
        _load_state(run, state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise damaged_file(path, "a checkpoint of this run", error) from None


def _load_state(run: Run, state: dict[str, Any]) -> None:
    run.model.load_state_dict(state["model"])
    # the optimiser's execution options (graph mode's LR tensor, fused, capturable) stay the run's
    keep_execution_options(run.optimizer, lambda: run.optimizer.load_state_dict(state["optimizer"]))
    run.lr_schedule.load_state_dict(state["lr_schedule"])
    run.t_schedule.load_state_dict(state["t_schedule"])
    restore_rng(state["rng"], run.generators)
    run.epoch = int(state["epoch"])
    run.best_score = float(state["best"]["score"])
    run.best_epoch = int(state["best"]["epoch"])
    run.history = list(state["history"])


RESUME_KEYS = ("epoch", "model", "optimizer", "lr_schedule", "t_schedule", "rng", "best", "history")


def _saved_config(data: Any, path: Path) -> TrainConfig:
    """The TrainConfig of a run file (`config.json`, a checkpoint's "config"), or DamagedRunFileError."""
    try:
        return config_from_dict(data)
    except Exception as error:  # noqa: BLE001 - any failure means the file is not a run's config
        raise damaged_file(path, "the config of a run", error) from None


def _check_run_files(out: Path) -> None:
    """The `config.json` and `metrics.csv` of a run to resume can be read back (else exit 2)."""
    if (out / "config.json").is_file():
        _saved_config(read_json(out / "config.json"), out / "config.json")
    if (out / "metrics.csv").is_file():
        rows = read_csv(out / "metrics.csv")
        if not all(isinstance(row.get("epoch"), int) for row in rows):
            raise damaged_file(out / "metrics.csv", "one row per epoch", "rows without an epoch")


def check_new_or_resumed(out: Path, resume: bool) -> Path:
    """`out/checkpoints/last.pt`; without `resume` it must not exist (ValueError: a finished run)."""
    check_folder_is_ours(out, "run")
    last = out / "checkpoints" / "last.pt"
    if not resume and last.exists():
        raise ValueError(
            f"out_dir: expected an empty run directory or resume=True (--resume on the command "
            f"line), got an existing run at {out}"
        )
    return last


def check_resumable(
    out: Path, config: TrainConfig, resume: bool
) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The config to train and the state of `out/checkpoints/last.pt` to resume (None: afresh).

    On resume, `config` may differ from the saved one in `epochs` only: the run goes on to
    `config.epochs`, or, when it has done more already, stays as it is (nothing is trained); the
    config returned (and written to `config.json`) has the epochs the run will have done.
    """
    last = check_new_or_resumed(out, resume)
    if not last.exists():
        return config, None
    state = load_checkpoint(last)
    require_keys(state, (*RESUME_KEYS, "config"), last)
    saved = _saved_config(state["config"], last)
    if dataclasses.replace(saved, epochs=config.epochs) != config:
        raise ValueError(
            f"resume: expected the config saved in {out}/config.json (epochs may differ), got a different one"
        )
    _check_run_files(out)
    return dataclasses.replace(config, epochs=max(config.epochs, int(state["epoch"]))), state
