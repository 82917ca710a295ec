"""Figures of the study tool and the free-mask laboratory.

- `plot_study(table)`: a study's table (`tutorial_lib.study`): curves of the test Dice per class
  over one varied key, or a heat map of the mean test Dice over two;
- `plot_sweep(x, series)`: any sweep as lines, one per series (the chapter's free-mask sweeps);
- `plot_free_mask(result, target)`: a free-mask run (`tutorial_lib.free_mask`): snapshots of the
  mask with the target's outline, and its Dice and broken constraints over the steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

__all__ = ["plot_study", "plot_sweep", "plot_free_mask", "study_means"]


def _finite_mean(values: Sequence[Any]) -> float:
    kept = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(kept) / len(kept) if kept else math.nan


def study_means(table: Mapping[str, Any], column: str) -> dict[tuple, float]:
    """{(value of each key, ...): mean of `column` over the seeds} of a study's table."""
    keys = table["keys"]
    groups: dict[tuple, list[Any]] = {}
    for row in table["rows"]:
        if column not in row:
            raise ValueError(f"table: expected a column {column!r}, got {sorted(row)}")
        groups.setdefault(tuple(row[k] for k in keys), []).append(row[column])
    return {k: _finite_mean(v) for k, v in groups.items()}


def _text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def plot_sweep(
    x: Sequence[Any],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str = "Dice",
    title: str = "",
    ylim: tuple[float, float] | None = (0.0, 1.02),
) -> Figure:
    """One line per series over the values `x` (shown as text, evenly spaced)."""
    fig = Figure(figsize=(5.0, 3.2), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(x))
    for i, (label, values) in enumerate(series.items()):
        if len(values) != len(x):
            raise ValueError(
                f"series {label!r}: expected {len(x)} values (one per x), got {len(values)}"
            )
        ax.plot(
            positions,
            values,
            marker="o",
            label=label,
            color="black" if label == "mean" else f"C{i}",
        )
    ax.set_xticks(positions, [_text(v) for v in x])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return fig


def plot_study(table: Mapping[str, Any], metric: str = "test_dsc3d") -> Figure:
    """A study's `metric` (mean over the seeds): per class and mean over one key, or the mean as a
    heat map over two keys (first key down, second across)."""
    keys = table["keys"]
    if not 1 <= len(keys) <= 2:
        raise ValueError(f"table keys: expected one or two varied keys, got {keys}")
    axes_values = {a["key"]: a["values"] for a in table["axes"]}
    what = {"test_dsc3d": "test 3-D Dice", "test_hd95": "test HD95 (mm)"}.get(metric, metric)
    seeds = len(table["seeds"])
    title = f"{table['base']['name']}: {what}" + (f", mean of {seeds} seeds" if seeds > 1 else "")
    if len(keys) == 1:
        columns = [k for k in table["rows"][0] if k.startswith(f"{metric}_")]
        series = {
            c[len(metric) + 1 :]: [study_means(table, c)[(v,)] for v in axes_values[keys[0]]]
            for c in columns
        }
        ylabel = "Dice" if metric == "test_dsc3d" else metric
        return plot_sweep(
            axes_values[keys[0]], series, xlabel=keys[0], ylabel=ylabel, title=title, ylim=None
        )
    means = study_means(table, f"{metric}_mean")
    rows, cols = axes_values[keys[0]], axes_values[keys[1]]
    grid = np.array([[means[(r, c)] for c in cols] for r in rows], dtype=float)
    fig = Figure(figsize=(1.4 * len(cols) + 2.5, 0.8 * len(rows) + 1.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            value = grid[i, j]
            shade = "white" if not math.isfinite(value) or value < np.nanmean(grid) else "black"
            ax.text(
                j,
                i,
                "n/a" if not math.isfinite(value) else f"{value:.3f}",
                ha="center",
                va="center",
                color=shade,
            )
    ax.set_xticks(range(len(cols)), [_text(c) for c in cols])
    ax.set_yticks(range(len(rows)), [_text(r) for r in rows])
    ax.set_xlabel(keys[1])
    ax.set_ylabel(keys[0])
    fig.colorbar(image, ax=ax, label=what)
    ax.set_title(title, fontsize=9)
    return fig


def plot_free_mask(result: Any, target: torch.Tensor, *, title: str = "") -> Figure:
    """Snapshots of a free mask (foreground probability, the target's outline in yellow), then its
    Dice and the fraction of broken constraints over the steps."""
    snapshots = list(result.snapshots) or [(len(result.dice) - 1, result.probs)]
    fig = Figure(figsize=(2.2 * (len(snapshots) + 1.6), 2.6), layout="constrained")
    panels = fig.subplots(1, len(snapshots) + 1, width_ratios=[1] * len(snapshots) + [1.6])
    truth = target.detach().cpu().numpy()
    for ax, (step, probs) in zip(panels, snapshots, strict=False):
        foreground = 1 - probs[0].detach().cpu().numpy()  # all but the background
        ax.imshow(foreground, cmap="magma", vmin=0, vmax=1)
        ax.contour(truth > 0, levels=[0.5], colors="yellow", linewidths=0.8)
        ax.set_title(f"step {step}: Dice {result.dice[step]:.2f}", fontsize=8)
        ax.set_axis_off()
    curves = panels[-1]
    curves.plot(result.dice, label="Dice", color="C0")
    curves.plot(result.violated, label="broken constraints", color="C3")
    curves.set_ylim(0, 1.02)
    curves.set_xlabel("step")
    curves.legend(fontsize=7, loc="center right")
    curves.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    return fig
