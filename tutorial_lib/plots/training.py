"""Training figures: curves over epochs, test box plots, predictions next to the ground truth.

Every function returns a `matplotlib.figure.Figure` built without pyplot and takes plain data:

- a *history* is a mapping {column: [value per epoch]} as in a run's `metrics.csv`, or the run
  directory itself (read with `tutorial_lib.runlog.read_metrics`);
- `histories` maps a method label ("ce", "descriptors") to a history;
- per-volume scores map a method to {class: [value per volume]} (a run's `test.json` entries).

Box plots are drawn as the authors' `moustache.py` draws them: whiskers at the 5th and 95th
percentiles (`whis=(5, 95)`: each whisker ends at the outermost value within them), the values
beyond as points, the mean as a dashed line; the legend says so.
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
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from tutorial_lib.runlog import read_metrics

__all__ = [
    "METHOD_COLOURS",
    "load_history",
    "plot_training_dsc",
    "plot_training_loss",
    "plot_validation_dsc2d",
    "plot_validation_dsc3d",
    "plot_metric_curves",
    "plot_boxplots",
    "plot_test_boxplots",
    "BOXPLOT_WHISKERS",
    "plot_predictions",
    "plot_constraint_violations",
]

#: Percentiles of the box plots' whiskers (the authors' `moustache.py`).
BOXPLOT_WHISKERS = (5, 95)
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


def plot_validation_dsc2d(histories, class_names: Sequence[str]) -> Figure:
    """Validation 2-D DSC (per slice, averaged) over epochs, per class and mean, per method."""
    return plot_metric_curves(histories, "val_dsc2d", class_names, title="Validation DSC (2-D)")


def plot_validation_dsc3d(histories, class_names: Sequence[str]) -> Figure:
    """Validation 3-D DSC (per volume, averaged) over epochs, per class and mean, per method."""
    return plot_metric_curves(histories, "val_dsc3d", class_names, title="Validation DSC (3-D)")


def plot_training_loss(histories: Mapping[str, History | str | os.PathLike]) -> Figure:
    """The training loss (`train_loss`, the mean over an epoch's batches) over epochs, one panel
    per method: cross-entropy and the descriptor loss (which can be negative) differ in scale."""
    data = _histories(histories)
    fig = Figure(figsize=(3.4 * len(data), 3.0), layout="constrained")
    axes = fig.subplots(1, len(data), squeeze=False)[0]
    for i, (ax, (label, hist)) in enumerate(zip(axes, data.items(), strict=True)):
        if "train_loss" not in hist:
            raise ValueError(
                f"history {label!r}: expected a column 'train_loss', got {sorted(hist)}"
            )
        epochs = hist.get("epoch", list(range(len(hist["train_loss"]))))
        ax.plot(epochs, hist["train_loss"], color=_colour(label, i))
        ax.set_title(label)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss")
    fig.suptitle("Training loss")
    return fig


def _finite_values(scores: Mapping[str, Sequence[float]], method: str, names) -> list[np.ndarray]:
    values = []
    for name in names:
        if name not in scores:
            raise ValueError(f"scores[{method!r}]: expected class {name!r}, got {sorted(scores)}")
        v = np.asarray([np.nan if x is None else x for x in scores[name]], dtype=float)
        values.append(v[np.isfinite(v)])
    return values


def plot_boxplots(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    class_names: Sequence[str],
    *,
    title: str,
    metric: str = "3-D DSC",
) -> Figure:
    """Box plots of per-volume scores: one group per class, one box per method.

    Whiskers at the 5th and 95th percentiles (`BOXPLOT_WHISKERS`), the mean as a dashed line
    (artists with gid "whisker" and "mean"); NaN and infinite values are left out.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(
            f"scores: expected a non-empty mapping method -> {{class: values}}, got {scores!r}"
        )
    methods = list(scores)
    fig = Figure(
        figsize=(1.2 + 1.3 * len(class_names) * len(methods) / 2 + 1.6, 3.4), layout="constrained"
    )
    ax = fig.subplots()
    width = 0.8 / len(methods)
    handles = []
    for i, method in enumerate(methods):
        values = _finite_values(scores[method], method, class_names)
        positions = np.arange(len(class_names)) + (i - (len(methods) - 1) / 2) * width
        box = ax.boxplot(
            values,
            positions=positions,
            widths=width * 0.9,
            patch_artist=True,
            showfliers=True,
            whis=BOXPLOT_WHISKERS,
            showmeans=True,
            meanline=True,
            meanprops={"color": "black", "linestyle": "--", "linewidth": 1.2},
            medianprops={"color": "black", "linewidth": 1.2},
        )
        for patch in box["boxes"]:
            patch.set_facecolor(_colour(method, i))
            patch.set_alpha(0.6)
        for kind, gid in (("whiskers", "whisker"), ("means", "mean")):
            for line in box[kind]:
                line.set_gid(gid)
        handles.append(Patch(color=_colour(method, i), alpha=0.6, label=method))
    low, high = BOXPLOT_WHISKERS
    handles += [
        Line2D([], [], color="black", label="median"),
        Line2D([], [], color="black", linestyle="--", label="mean"),
        Line2D([], [], linestyle="none", label=f"whiskers: {low}th-{high}th percentile"),
        Line2D([], [], linestyle="none", marker="o", mfc="none", color="black", label="beyond"),
    ]
    ax.set_xticks(np.arange(len(class_names)), list(class_names))
    ax.set_ylabel(metric)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.set_title(title)
    return fig


def plot_test_boxplots(
    scores: Mapping[str, Mapping[str, Sequence[float]]],
    class_names: Sequence[str],
    *,
    metric: str = "3-D DSC",
) -> Figure:
    """Box plots of per-volume test scores (`plot_boxplots`): one group per class, one box per
    method."""
    return plot_boxplots(scores, class_names, title=f"Test {metric} per volume", metric=metric)


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
        positive = False  # a log axis needs a value above 0 (a run may have no violation at all)
        for i, (label, hist) in enumerate(data.items()):
            column = f"c_{term}{suffix}"
            if column in hist:
                values = np.asarray(hist[column], dtype=float)
                positive = positive or bool(np.any(values > 0))
                ax.plot(
                    hist.get("epoch", range(len(values))),
                    values,
                    label=label,
                    color=_colour(label, i),
                )
        ax.set_title(term)
        ax.set_xlabel("epoch")
        if stat == "violation" and positive:
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
