"""A study: train a grid of runs that vary one or two settings of a base preset, and tabulate them.

    from tutorial_lib.study import run_study
    from tutorial_lib.study_grid import parse_vary
    table = run_study(get_preset("toy-cardiac-descriptors", fast=True),
                      [parse_vary("margins=toy,paper")], out_dir="runs/study-margins")

or `python -m tutorial_lib study --base toy-cardiac-descriptors --vary margins=toy,paper --fast`.
The grid and its keys are in `tutorial_lib.study_grid`. The runs train with
`tutorial_lib.concurrent_runs.train_runs` (`jobs` at once), each in its own folder
`runlog.config_run_dir(config, runs_dir)`: keyed by its configuration, so a notebook and the command
line share a finished run, and a changed setting never resumes another's folder.

Written into `out_dir` (held by one process at a time, `.study.lock`), atomically:
`study.json` (the grid: base config, axes, seeds), `table.csv` and `table.json` (one row per cell
and seed: the varied values, the seed, test 3-D Dice and HD95 per class and their mean, the last
epoch's constraint violations, training seconds, epochs, the run folder), and `study.png` (a heat
map of the mean test Dice for two axes, curves for one; the mean over the seeds).

Resuming: run the same study again. A cell whose run has finished (its `test.json` and a
`summary.json` with every epoch) is read, not trained; an interrupted run resumes from its last
epoch (bitwise the same on a CPU), so an interrupted and resumed study writes the same table as an
uninterrupted one. `out_dir` refuses another study (another base, axes or seeds). A run that fails
(a non-finite loss, a killed process) stops the study with its error, as `train_runs` does; the
cells finished so far stay finished.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tutorial_lib.concurrent_runs import default_jobs, train_runs
from tutorial_lib.config import TrainConfig, config_to_dict
from tutorial_lib.device import get_device
from tutorial_lib.run_folder import claim_folder, remove_stale_temporaries
from tutorial_lib.runlog import config_run_dir, read_json, read_metrics, write_csv, write_json
from tutorial_lib.study_grid import Axis, Cell, cell_label, study_cells

__all__ = ["run_study", "read_study", "format_study", "cell_done", "study_row"]


def _spec(base: TrainConfig, axes: Sequence[Axis], seeds: Sequence[int]) -> dict[str, Any]:
    return {
        "base": config_to_dict(base),
        "axes": [{"key": a.key, "values": list(a.values)} for a in axes],
        "seeds": list(seeds),
    }


def _claim_spec(out: Path, spec: dict[str, Any]) -> None:
    """Write `study.json`, or check that the folder's study is this one (JSON-equal)."""
    path = out / "study.json"
    if path.is_file():
        saved = read_json(path)
        if {k: saved.get(k) for k in spec} != _plain(spec):
            raise ValueError(
                f"out_dir: expected the study in {path} (the same base, axes and seeds) or an "
                "empty folder, got a different study; choose another --out"
            )
        return
    write_json(path, spec)


def _plain(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples as lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def cell_done(run_dir: str | os.PathLike, epochs: int) -> bool:
    """Has the run in `run_dir` trained `epochs` epochs (or more) and been tested?"""
    run_dir = Path(run_dir)
    if not (run_dir / "test.json").is_file() or not (run_dir / "summary.json").is_file():
        return False
    summary = read_json(run_dir / "summary.json")
    return summary.get("status") == "done" and int(summary.get("epochs_done", 0)) >= epochs


def _last_violations(run_dir: Path) -> dict[str, float]:
    """The last epoch's constraint stats, averaged over the terms (None for cross-entropy)."""
    metrics = read_metrics(run_dir)
    out = {}
    for stat in ("frac_violated", "violation"):
        columns = [k for k in metrics if k.startswith("c_") and k.endswith(f"_{stat}")]
        values = [float(metrics[k][-1]) for k in columns]
        out[stat] = sum(values) / len(values) if values else None
    return out


def study_row(cell: Cell, run_dir: str | os.PathLike) -> dict[str, Any]:
    """The table row of a finished cell: its values, seed, test scores, violations, time (None
    where a value is undefined: an HD95 with an empty mask, the violations of a CE run)."""
    run_dir = Path(run_dir)
    test, summary = read_json(run_dir / "test.json"), read_json(run_dir / "summary.json")
    row: dict[str, Any] = {**cell.values, "seed": cell.seed}
    for metric in ("test_dsc3d", "test_hd95"):
        for name, value in test[metric].items():
            row[f"{metric}_{name}"] = None if value is None else float(value)
    violations = _last_violations(run_dir)
    row["violated"] = violations["frac_violated"]
    row["violation"] = violations["violation"]
    row["train_seconds"] = float(summary["train_seconds"])
    row["epochs"] = int(summary["epochs_done"])
    row["best_epoch"] = int(summary["best_epoch"])
    row["run"] = str(run_dir)
    return row


def run_study(
    base: TrainConfig,
    axes: Sequence[Axis],
    *,
    out_dir: str | os.PathLike,
    seeds: Sequence[int] = (0,),
    runs_dir: str | os.PathLike | None = None,
    jobs: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    figure: bool = True,
    train_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the grid of `base` x `axes` x `seeds` (finished cells are read, not trained), write
    the table and the figure into `out_dir` (module docstring) and return `table.json`'s dict.

    `runs_dir`: where the cells' run folders go (default `out_dir/runs`); `jobs`: runs at once
    (None: `concurrent_runs.default_jobs`); `train_options` go to `train` (e.g. compile).
    """
    cells = study_cells(base, axes, seeds)
    device = get_device(str(device)) if device is not None else get_device()
    out = Path(out_dir)
    runs_root = Path(runs_dir) if runs_dir is not None else out / "runs"
    folders = [config_run_dir(cell.config, runs_root) for cell in cells]
    with claim_folder(out, "study"):
        remove_stale_temporaries(out)
        _claim_spec(out, _spec(base, axes, seeds))
        started = time.perf_counter()
        todo: dict[str, tuple[TrainConfig, Path]] = {}  # cells of the same settings share a run
        for cell, folder in zip(cells, folders, strict=True):
            label = f"{cell_label(cell.values)} s{cell.seed}"
            if folder not in {f for _, f in todo.values()} and not cell_done(
                folder, cell.config.epochs
            ):
                todo[label] = (cell.config, folder)
        if todo:
            n_jobs = default_jobs(device, len(todo)) if jobs is None else jobs
            train_runs(
                todo, device=device, jobs=n_jobs, progress=progress, train_options=train_options
            )
        table = {
            **_spec(base, axes, seeds),
            "keys": [a.key for a in axes],
            "trained": len(todo),
            "seconds": time.perf_counter() - started,
            "rows": [study_row(c, f) for c, f in zip(cells, folders, strict=True)],
        }
        write_csv(out / "table.csv", table["rows"])
        write_json(out / "table.json", table)
        if figure:
            _save_figure(out, table)
    return table


def _save_figure(out: Path, table: dict[str, Any]) -> None:
    from tutorial_lib import plots  # matplotlib: loaded only when the figure is drawn

    fig = plots.plot_study(table)
    tmp = out / ".study.png.tmp.png"
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, out / "study.png")


def read_study(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The `table.json` of a study folder (ValueError when there is none)."""
    path = Path(out_dir) / "table.json"
    if not path.is_file():
        raise ValueError(f"out_dir: expected a study folder with table.json, got none at {path}")
    return read_json(path)


def format_study(table: dict[str, Any]) -> str:
    """A plain-text table: per cell (mean over seeds) the test 3-D Dice per class and mean, HD95
    mean, violated fraction and training seconds."""
    keys = table["keys"]
    rows = table["rows"]
    classes = [k[len("test_dsc3d_") :] for k in rows[0] if k.startswith("test_dsc3d_")]
    columns = [f"dsc {c}" for c in classes] + ["hd95 mean", "violated", "seconds"]
    sources = [f"test_dsc3d_{c}" for c in classes] + ["test_hd95_mean", "violated", "train_seconds"]
    width = max(10, *(len(c) + 2 for c in columns))
    key_width = max(12, *(len(str(r[k])) + len(k) + 3 for r in rows for k in keys))
    lines = [f"{'cell':<{key_width}}{'seeds':>6}" + "".join(f"{c:>{width}}" for c in columns)]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(cell_label({k: row[k] for k in keys}), []).append(row)
    for label, group in groups.items():
        means = [_mean([r[s] for r in group]) for s in sources]
        cells = "".join(
            f"{(f'{m:.3f}' if i < len(classes) + 2 else f'{m:.1f}') if math.isfinite(m) else 'n/a':>{width}}"
            for i, m in enumerate(means)
        )
        lines.append(f"{label:<{key_width}}{len(group):>6}{cells}")
    return "\n".join(lines)


def _mean(values: list[Any]) -> float:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else math.nan
