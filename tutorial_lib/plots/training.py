"""Training figures: curves over epochs, test box plots, predictions next to the ground truth.

Every function returns a `matplotlib.figure.Figure` built without pyplot and takes plain data:

- a *history* is a mapping {column: [value per epoch]} as in a run's `metrics.csv`, or the run
  directory itself (read with `tutorial_lib.runlog.read_metrics`);
- `histories` maps a method label ("ce", "descriptors") to a history;
- per-volume scores map a method to {class: [value per volume]} (a run's `test.json` entries).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from tutorial_lib.runlog import read_metrics

__all__ = [
    "METHOD_COLOURS",
    "load_history",
    "plot_training_dsc",
    "plot_validation_dsc3d",
    "plot_metric_curves",
    "plot_test_boxplots",
    "plot_predictions",
    "plot_constraint_violations",
]

#: Line colour per method label; other labels use matplotlib's cycle.
METHOD_COLOURS: dict[str, str] = {"ce": "#3182bd", "descriptors": "#e6550d"}
_LABEL_COLOURS = ("#000000", "#e6550d", "#31a354", "#3182bd", "#756bb1", "#de2d26")

History = Mapping[str, Sequence[Any]]


def load_history(history: History | str | os.PathLike) -> dict[str, list[Any]]:
    """A history as columns; a path is read as a run directory's `metrics.csv`."""
    if isinstance(history, (str, os.PathLike)):
        return read_metrics(Path(history))
    if not isinstance(history, Mapping):
        raise ValueError(
            f"history: expected a mapping of columns or a run directory, got {type(history).__name__}"
        )
    return {k: list(v) for k, v in history.items()}


def _histories(
    histories: Mapping[str, History | str | os.PathLike],
) -> dict[str, dict[str, list[Any]]]:
    if not isinstance(histories, Mapping) or not histories:
        raise ValueError(
            f"histories: expected a non-empty mapping method -> history, got {histories!r}"
        )
    return {label: load_history(h) for label, h in histories.items()}


def _colour(label: str, i: int) -> str:
    return METHOD_COLOURS.get(label, f"C{i}")


def plot_metric_curves(
    histories: Mapping[str, History | str | os.PathLike],
    prefix: str,
    class_names: Sequence[str],
    *,
    title: str,
    ylabel: str = "DSC",
    include_mean: bool = True,
) -> Figure:
    """One panel per class (+ the mean): column `<prefix>_<class>` over epochs, one line per method."""
    data = _histories(histories)
    names = list(class_names) + (["mean"] if include_mean else [])
    fig = Figure(figsize=(3.0 * len(names), 3.0), layout="constrained")
    axes = fig.subplots(1, len(names), sharey=True, squeeze=False)[0]
    for ax, name in zip(axes, names, strict=True):
        for i, (label, hist) in enumerate(data.items()):
            column = f"{prefix}_{name}"
            if column not in hist:
                raise ValueError(
                    f"history {label!r}: expected a column {column!r}, got {sorted(hist)}"
                )
            epochs = hist.get("epoch", list(range(len(hist[column]))))
            ax.plot(epochs, hist[column], label=label, color=_colour(label, i))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(ylabel)
    axes[-1].legend(loc="lower right")
    fig.suptitle(title)
    return fig


def plot_training_dsc(histories, class_names: Sequence[str]) -> Figure:
    """Training 2-D DSC (on the augmented batches) over epochs, per class and mean, per method."""
    return plot_metric_curves(histories, "train_dsc", class_names, title="Training DSC (2-D)")


def plot_validation_dsc3d(histories, class_names: Sequence[str]) -> Figure:
    """Validation 3-D DSC (per volume, averaged) over epochs, per class and mean, per method."""
    return plot_metric_curves(histories, "val_dsc3d", class_names, title="Validation DSC (3-D)")


def plot_test_boxplots(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    class_names: Sequence[str],
    *,
    metric: str = "3-D DSC",
) -> Figure:
    """Box plots of per-volume test scores: one group per class, one box per method."""
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(
            f"scores: expected a non-empty mapping method -> {{class: values}}, got {scores!r}"
        )
    methods = list(scores)
    fig = Figure(
        figsize=(1.2 + 1.3 * len(class_names) * len(methods) / 2 + 1, 3.4), layout="constrained"
    )
    ax = fig.subplots()
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        values = []
        for name in class_names:
            if name not in scores[method]:
                raise ValueError(
                    f"scores[{method!r}]: expected class {name!r}, got {sorted(scores[method])}"
                )
            v = np.asarray(scores[method][name], dtype=float)
            values.append(v[np.isfinite(v)])
        positions = np.arange(len(class_names)) + (i - (len(methods) - 1) / 2) * width
        box = ax.boxplot(
            values, positions=positions, widths=width * 0.9, patch_artist=True, showfliers=True
        )
        for patch in box["boxes"]:
            patch.set_facecolor(_colour(method, i))
            patch.set_alpha(0.6)
        ax.plot([], [], "s", color=_colour(method, i), alpha=0.6, label=method)
    ax.set_xticks(np.arange(len(class_names)), list(class_names))
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower left")
    ax.set_title(f"Test {metric} per volume")
    return fig


def _labels_np(x, what: str) -> np.ndarray:
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{what}: expected maps (N, H, W) or one (H, W), got shape {a.shape}")
    return a


def plot_predictions(
    images,
    labels,
    predictions: Mapping[str, Any],
    class_names: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Rows: slices; columns: image, ground truth, then one prediction per method (label colours)."""
    imgs = _labels_np(images, "images").astype(float)
    gts = _labels_np(labels, "labels")
    preds = {m: _labels_np(p, f"predictions[{m!r}]") for m, p in predictions.items()}
    for m, p in preds.items():
        if p.shape != gts.shape:
            raise ValueError(
                f"predictions[{m!r}]: expected shape {gts.shape} like labels, got {p.shape}"
            )
    if imgs.shape != gts.shape:
        raise ValueError(f"images: expected shape {gts.shape} like labels, got {imgs.shape}")
    n, k = gts.shape[0], len(class_names)
    cmap = ListedColormap([(0, 0, 0, 0)] + [_LABEL_COLOURS[1 + (i % 5)] for i in range(k - 1)])
    columns = ["image", "ground truth", *preds]
    fig = Figure(figsize=(2.4 * len(columns), 2.4 * n + 0.4), layout="constrained")
    axes = fig.subplots(n, len(columns), squeeze=False)
    for r in range(n):
        for c, column in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(imgs[r], cmap="gray")
            if c:
                lab = gts[r] if c == 1 else preds[column][r]
                ax.imshow(
                    np.ma.masked_equal(lab, 0),
                    cmap=cmap,
                    vmin=-0.5,
                    vmax=k - 0.5,
                    alpha=0.6,
                    interpolation="nearest",
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column)
        if titles is not None:
            axes[r, 0].set_ylabel(titles[r])
    handles = [
        Patch(color=_LABEL_COLOURS[1 + (i % 5)], alpha=0.6, label=name)
        for i, name in enumerate(class_names[1:])
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=max(1, len(handles)), fontsize=8)
    return fig


def plot_constraint_violations(
    histories: Mapping[str, History | str | os.PathLike],
    *,
    stat: str = "violation",
) -> Figure:
    """Per descriptor term, the mean constraint violation (`stat="violation"`, descriptor units,
    log scale) or the fraction of violated constraints (`stat="frac_violated"`) over epochs."""
    if stat not in ("violation", "frac_violated", "loss"):
        raise ValueError(f"stat: expected 'violation', 'frac_violated' or 'loss', got {stat!r}")
    data = _histories(histories)
    suffix = f"_{stat}"
    terms: list[str] = []
    for hist in data.values():
        for column in hist:
            if column.startswith("c_") and column.endswith(suffix):
                name = column[2 : -len(suffix)]
                if name not in terms and not (stat == "violation" and name.endswith("_frac")):
                    terms.append(name)
    if not terms:
        raise ValueError(
            f"histories: expected columns c_<term>{suffix} (descriptor runs), got none"
        )
    fig = Figure(figsize=(3.0 * len(terms), 3.0), layout="constrained")
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for ax, term in zip(axes, terms, strict=True):
        for i, (label, hist) in enumerate(data.items()):
            column = f"c_{term}{suffix}"
            if column in hist:
                values = np.asarray(hist[column], dtype=float)
                ax.plot(
                    hist.get("epoch", range(len(values))),
                    values,
                    label=label,
                    color=_colour(label, i),
                )
        ax.set_title(term)
        ax.set_xlabel("epoch")
        if stat == "violation":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(
        {"violation": "mean violation", "frac_violated": "fraction violated", "loss": "term loss"}[
            stat
        ]
    )
    axes[-1].legend()
    fig.suptitle("Constraint violations over epochs")
    return fig
