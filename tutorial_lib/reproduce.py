"""One-call reproduction: train the CE and the descriptors runs of a dataset, evaluate, draw.

    from tutorial_lib.reproduce import reproduce
    summary = reproduce("toy-cardiac", fast=True, seed=0, out_dir="runs/toy-cardiac")

Writes into `out_dir`: `ce/` and `descriptors/` (run directories, see tutorial_lib.train),
`summary.json` =
`{"dataset", "classes", "fast", "seed", "bf16", "methods": {"ce": {"test_dsc3d": {<class>: v, ...,
"mean": v}, "test_dsc3d_std": {...}, "test_hd95": {...}, "test_hd95_std": {...}, "val_epoch": e,
"val_dsc3d": {...}, "best_epoch", "epochs", "precision", "seconds": s}, "descriptors": {...}},
"ratio_dsc3d_mean": descriptors / ce, "figures": [...], "seconds": total, "jobs": runs trained
at once, "devices": {"ce": device, "descriptors": device}}` and the figures `training_loss.png`,
`training_dsc.png`, `validation_dsc2d.png`, `validation_dsc3d.png`,
`validation_dsc3d_boxplot.png`, `test_dsc3d_boxplot.png`, `constraint_violations.png`,
`predictions.png`.

As the authors' report (tutorial_lib.reports): `*_std` is the standard deviation over the test
volumes (ddof 0; for "mean", over every volume and selected class), `val_epoch` the epoch of best
mean validation 3-D DSC and `val_dsc3d` the validation 3-D DSC there; the validation box plot
takes each class at its own epoch of best mean, as theirs. `best_epoch` is the checkpoint tested
(best mean validation 2-D DSC).
`precision` is what each run computed in ("float32" or "bfloat16 autocast"; `bf16=True` asks for
bfloat16 whatever the preset says).

`seed` sets the training seed of both runs and, for the toy datasets, the seed of the generated
data too (so another seed is another dataset as well as another initialisation).

The two runs train at the same time, each in its own process, on CUDA and on a CPU with 2+
threads (`jobs`, see tutorial_lib.concurrent_runs): an ENet step is launch-bound on a GPU, so the
pair takes little longer than one run. With several GPUs (`devices`, default every visible one)
each run gets its own.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import torch

from tutorial_lib.concurrent_runs import default_jobs, train_runs
from tutorial_lib.evaluation import load_run_config, predict_run
from tutorial_lib.placement import resolve_devices
from tutorial_lib.presets import get_preset
from tutorial_lib.reports import (
    class_stds,
    validation_at,
    validation_epoch,
    validation_volumes_at_class_best,
)
from tutorial_lib.run_folder import claim_folder, remove_stale_temporaries
from tutorial_lib.run_setup import load_data, resolve_data_root
from tutorial_lib.runlog import read_json, read_metrics, write_json

__all__ = [
    "DATASETS",
    "METHODS",
    "TOY_STAND_INS",
    "reproduce",
    "format_table",
    "run_configs",
    "compare_runs",
    "dataset_or_stand_in",
]

DATASETS = ("toy-cardiac", "toy-prostate", "acdc", "promise12", "toy-cardiac-paper")
METHODS = ("ce", "descriptors")
TOY_STAND_INS = {"acdc": "toy-cardiac", "promise12": "toy-prostate"}


def dataset_or_stand_in(dataset: str, prepared: str | os.PathLike) -> tuple[str, Path | None, str]:
    """(dataset, data_root, message): the real dataset when `prepared` holds it, else its toy stand-in.

    `("acdc", Path(prepared), ...)` when `prepared/manifest.json` exists, else
    `("toy-cardiac", None, ...)` (the toy data is generated on the fly); the message says which.
    """
    if dataset not in TOY_STAND_INS:
        raise ValueError(f"dataset: expected one of {tuple(TOY_STAND_INS)}, got {dataset!r}")
    prepared = Path(prepared)
    if (prepared / "manifest.json").is_file():
        return dataset, prepared, f"Using the prepared {dataset} data in {prepared}."
    stand_in = TOY_STAND_INS[dataset]
    return (
        stand_in,
        None,
        f"No prepared {dataset} folder at {prepared}: the cells below run on the {stand_in} "
        f"stand-in (same classes, same format, same code). Prepare {dataset} and run them again "
        "for the real thing.",
    )


def run_configs(
    dataset: str, *, fast: bool, seed: int, size: int | None = None, bf16: bool = False
) -> dict[str, Any]:
    """The two TrainConfigs (`{"ce": ..., "descriptors": ...}`) that `reproduce` trains.

    `size`: another image side for a toy dataset (the generated data; the settings unchanged).
    `bf16=True`: in bfloat16 autocast (`amp="bf16"`), whatever the presets say.
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {DATASETS}, got {dataset!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if size is not None and not dataset.startswith("toy-"):
        raise ValueError(
            f"size: expected a toy dataset (prepare --size sets the size of {dataset}), got {size}"
        )
    configs = {}
    for method in METHODS:
        cfg = get_preset(f"{dataset}-{method}", fast=fast)
        data = cfg.data
        if dataset.startswith("toy-"):
            data = dataclasses.replace(data, generator_seed=seed, size=size or data.size)
        amp = "bf16" if bf16 else cfg.amp
        configs[method] = dataclasses.replace(cfg, seed=seed, data=data, amp=amp)
    return configs


def _example_slices(labels: torch.Tensor, volume_ids: list[str], n: int = 4) -> list[int]:
    """Per volume (the first n), the slice showing the most classes, then the largest foreground."""
    chosen = []
    for vid in dict.fromkeys(volume_ids):
        rows = [i for i, v in enumerate(volume_ids) if v == vid]
        score = [(len(labels[i].unique()), int((labels[i] > 0).sum())) for i in rows]
        chosen.append(rows[max(range(len(rows)), key=score.__getitem__)])
        if len(chosen) == n:
            break
    return chosen


def _validation_boxplot_scores(runs: dict[str, Path], classes: list[str]) -> dict[str, dict]:
    """Per method, each validation volume's 3-D DSC, each class at its own epoch of best mean
    ({class: [values]}), as the authors' validation box plot."""
    scores = {}
    for method, run_dir in runs.items():
        at_best = validation_volumes_at_class_best(read_metrics(run_dir), classes)
        scores[method] = {name: values for name, (_, values) in at_best.items()}
    return scores


def _figures(
    out: Path, runs: dict[str, Path], tests: dict[str, dict], classes: list[str], device
) -> list[str]:
    from tutorial_lib import plots  # matplotlib: loaded only when figures are drawn

    foreground = classes[1:]
    written = []

    def save(fig, name: str) -> None:
        path = out / name
        tmp = out / f".{name}.tmp.png"
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
        written.append(name)

    save(plots.plot_training_loss(runs), "training_loss.png")
    save(plots.plot_training_dsc(runs, foreground), "training_dsc.png")
    save(plots.plot_validation_dsc2d(runs, foreground), "validation_dsc2d.png")
    save(plots.plot_validation_dsc3d(runs, foreground), "validation_dsc3d.png")
    title = "Validation 3-D DSC per volume\neach class at its epoch of best mean"
    save(
        plots.plot_boxplots(_validation_boxplot_scores(runs, foreground), foreground, title=title),
        "validation_dsc3d_boxplot.png",
    )
    scores = {m: tests[m]["dsc3d"] for m in runs}
    save(plots.plot_test_boxplots(scores, foreground), "test_dsc3d_boxplot.png")
    save(
        plots.plot_constraint_violations({"descriptors": runs["descriptors"]}),
        "constraint_violations.png",
    )
    summary = read_json(runs["ce"] / "summary.json")
    root = resolve_data_root(load_run_config(runs["ce"]), summary.get("data_root"))
    test = load_data(load_run_config(runs["ce"]), root, "test")
    rows = _example_slices(test.labels, list(test.volume_ids))
    images = test.images[rows]
    preds = {m: predict_run(runs[m], images, device=device) for m in runs}
    titles = [test.volume_ids[i] for i in rows]
    save(
        plots.plot_predictions(images[:, 0], test.labels[rows], preds, classes, titles=titles),
        "predictions.png",
    )
    return written


def reproduce(
    dataset: str,
    *,
    fast: bool = False,
    seed: int = 0,
    out_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    devices: str | list[str] | None = None,
    progress: bool = True,
    jobs: int | None = None,
    train_options: dict[str, Any] | None = None,
    size: int | None = None,
    bf16: bool = False,
) -> dict[str, Any]:
    """Train and evaluate the CE and the descriptors presets of `dataset`; write summary + figures.

    `size`: the image side of a toy dataset (default the preset's).
    `jobs=2` trains the two runs at the same time in two processes (the default on CUDA and on a
    CPU with 2+ threads, see tutorial_lib.concurrent_runs); `jobs=1` one after the other.
    `devices` ("cuda:0,cuda:1"; None: every visible GPU on CUDA, else `device`) places the runs,
    one process each (tutorial_lib.placement).
    `train_options` go to `train` (e.g. {"compile": True}). `bf16=True` trains both in bfloat16
    autocast (`run_configs`); the paper presets train in float32.

    A run directory that already holds a finished run with the same configuration is reused
    (training resumes from its last checkpoint), so a killed `reproduce` can simply be restarted.
    `out_dir` must be missing, empty or a `reproduce` folder, and is held by this call alone
    (tutorial_lib.run_folder): a second `reproduce` into it is refused (ValueError).
    Returns the `summary.json` dict (see the module docstring).
    """
    places = resolve_devices(devices, device)
    configs = run_configs(dataset, fast=fast, seed=seed, size=size, bf16=bf16)
    if data_root is None and not dataset.startswith("toy-"):
        raise ValueError(
            f"data_root: expected the prepared {dataset} folder (python -m tutorial_lib prepare), got None"
        )
    jobs = default_jobs(places[0], len(configs), len(places)) if jobs is None else jobs
    out = Path(out_dir)
    with claim_folder(out, "reproduce"):  # one reproduce per folder; each run folder its own lock
        remove_stale_temporaries(out)
        started = time.perf_counter()
        runs = {method: out / method for method in configs}
        seconds = train_runs(
            {method: (cfg, runs[method]) for method, cfg in configs.items()},
            data_root=data_root,
            devices=places,
            jobs=jobs,
            progress=progress,
            train_options=train_options,
        )
        tests = {method: read_json(runs[method] / "test.json") for method in configs}
        histories = {method: read_metrics(runs[method]) for method in configs}
        summary = compare_runs(
            dataset, configs, tests, seconds, fast=fast, seed=seed, histories=histories
        )
        summary["bf16"] = bf16
        for method, run_dir in runs.items():
            precision = read_json(run_dir / "summary.json").get("precision")
            summary["methods"][method]["precision"] = precision
        summary["figures"] = _figures(out, runs, tests, summary["classes"], places[0])
        summary["seconds"] = time.perf_counter() - started
        summary["jobs"] = jobs
        summary["devices"] = {m: read_json(runs[m] / "summary.json")["device"] for m in configs}
        write_json(out / "summary.json", summary)
    return summary


def compare_runs(
    dataset: str,
    configs: dict[str, Any],
    tests: dict[str, dict],
    seconds: dict[str, float],
    *,
    fast: bool,
    seed: int,
    histories: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The comparison part of `summary.json` (see the module docstring) from finished runs.

    `configs`, `tests` (each run's `test.json`), `seconds` and `histories` (each run's
    `metrics.csv` columns, `runlog.read_metrics`: gives `val_epoch` and `val_dsc3d`) are keyed by
    method ("ce", "descriptors"); `format_table` prints the result.
    """
    methods = {}
    for method, cfg in configs.items():
        test = tests[method]
        selection = test.get("selection_classes", test["classes"][1:])
        methods[method] = {
            "test_dsc3d": test["test_dsc3d"],
            "test_dsc3d_std": class_stds(test["dsc3d"], selection),
            "test_hd95": test["test_hd95"],
            "test_hd95_std": class_stds(test["hd95"], selection),
            "seconds": seconds[method],
            "best_epoch": test["best_epoch"],
            "epochs": cfg.epochs,
        }
        if histories is not None:
            best = validation_epoch(histories[method])
            methods[method]["val_epoch"] = best[0] if best else None
            methods[method]["val_dsc3d"] = (
                validation_at(histories[method], best[1], test["classes"]) if best else None
            )
    ce_mean = methods["ce"]["test_dsc3d"]["mean"]
    return {
        "dataset": dataset,
        "classes": list(tests["ce"]["classes"]),
        "fast": fast,
        "seed": seed,
        "methods": methods,
        "ratio_dsc3d_mean": methods["descriptors"]["test_dsc3d"]["mean"] / ce_mean
        if ce_mean > 0
        else None,
    }


def _cell(value: float | None, std: float | None, fmt: str) -> str:
    """`0.912 ± 0.034`, the mean alone where no std is known, `n/a` where no value is."""
    if value is None:
        return "n/a"
    return fmt.format(value) + (f" ± {fmt.format(std)}" if std is not None else "")


def _table_rows(method: str, res: dict[str, Any], classes: list[str], width: int) -> list[str]:
    """The lines of one method: test DSC and HD95 (mean ± std), validation DSC at `val_epoch`."""
    rows = [
        ("test DSC 3-D", "test_dsc3d", "{:.3f}", f"{res['seconds']:>9.0f}s"),
        ("test HD95 mm", "test_hd95", "{:.2f}", ""),
    ]
    if res.get("val_dsc3d") is not None:
        rows.append(("val DSC 3-D", "val_dsc3d", "{:.3f}", f"  epoch {res['val_epoch']}"))
    lines = []
    for metric, key, fmt, tail in rows:
        stds = res.get(f"{key}_std") or {}
        values = "".join(f"{_cell(res[key].get(c), stds.get(c), fmt):>{width}}" for c in classes)
        lines.append(f"{method:<12}{metric:<14}{values}{tail}")
    return lines


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text comparison table: per class and method, the test 3-D DSC and HD95 (mean ±
    std over volumes) and the validation 3-D DSC at the epoch of best validation 3-D DSC."""
    classes = [c for c in summary["classes"][1:]] + ["mean"]
    width = max(17, *(len(c) + 2 for c in classes))
    precisions = sorted(
        {str(r["precision"]) for r in summary["methods"].values() if "precision" in r}
    )
    lines = [
        f"{summary['dataset']} (seed {summary['seed']}{', fast' if summary['fast'] else ''}"
        + (f", {' / '.join(precisions)}" if precisions else "")
        + ")"
    ]
    header = f"{'method':<12}{'metric':<14}" + "".join(f"{c:>{width}}" for c in classes)
    lines += [header + f"{'time':>10}", "-" * (len(header) + 10)]
    for method, res in summary["methods"].items():
        lines += _table_rows(method, res, classes, width)
    ratio = summary.get("ratio_dsc3d_mean")
    shown = f"{ratio:.3f}" if ratio is not None else "n/a (CE mean is 0)"
    lines.append(f"descriptors / CE, mean 3-D DSC: {shown}")
    return "\n".join(lines)
