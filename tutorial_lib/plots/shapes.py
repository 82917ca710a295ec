"""Course figures: masks, soft maps, descriptor overlays, gradient maps, barriers, optimisation.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so a notebook shows it
once (as the cell's last expression, or with `display(fig)`) and nothing leaks between cells.
Inputs are torch tensors or array-likes of one 2-D map `(H, W)`; coordinates are (row, col).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.colors import ListedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, Patch, Rectangle
from matplotlib.ticker import MaxNLocator

__all__ = [
    "CLASS_COLOURS",
    "plot_annotation_cost",
    "plot_maps",
    "plot_descriptor_overlay",
    "plot_descriptor_overlays",
    "plot_gradient_maps",
    "plot_shape_report",
    "plot_shift_differences",
    "plot_penalty_curves",
    "plot_optimisation_snapshots",
    "plot_descriptor_history",
    "plot_label_overlays",
    "plot_population_bounds",
    "plot_volume_descriptors",
]

#: One colour per class index (0 is the background and is left transparent in overlays).
CLASS_COLOURS: tuple[str, ...] = ("#000000", "#e6550d", "#31a354", "#3182bd", "#756bb1", "#de2d26")


def _np(x) -> np.ndarray:
    """A float numpy copy of a tensor or array-like (detached, on the CPU)."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


def _map2d(x, name: str = "map") -> np.ndarray:
    a = _np(x)
    a = np.squeeze(a)
    if a.ndim != 2:
        raise ValueError(
            f"{name}: expected one 2-D map (H, W) after squeezing, got shape {a.shape}"
        )
    return a


def _figure(n_panels: int, panel: float = 3.0, rows: int = 1, extra_h: float = 0.5) -> Figure:
    cols = math.ceil(n_panels / rows)
    return Figure(figsize=(panel * cols, panel * rows + extra_h), layout="constrained")


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _draw_centroid_and_spread(ax, centroid, spread, colour: str = "#ff2d55", label: bool = True):
    """A cross at the centroid and the 1-sigma and 2-sigma per-axis spread ellipses."""
    if centroid is None:
        return
    c = _np(centroid).reshape(-1)
    ax.plot(c[1], c[0], marker="+", color=colour, markersize=14, mew=2.5, zorder=5)
    if spread is not None:
        d = _np(spread).reshape(-1)
        for k, style in ((1, ":"), (2, "-")):
            ax.add_patch(
                Ellipse(
                    (c[1], c[0]),
                    width=2 * k * d[1],
                    height=2 * k * d[0],
                    fill=False,
                    ec=colour,
                    lw=1.6,
                    ls=style,
                    zorder=4,
                    label=(f"{k}·spread" if label else None),
                )
            )


def plot_annotation_cost(
    image_size: int = 256,
    values_per_class: Mapping[str, int] | None = None,
    n_classes: int = 3,
) -> Figure:
    """Bar chart (log scale): a full mask's labels against a few descriptor values per image."""
    if values_per_class is None:
        values_per_class = {"size": 1, "centroid": 2, "spread": 2, "length": 1}
    n_pixels = image_size * image_size
    per_class = sum(values_per_class.values())
    names = [f"full mask\n{image_size}×{image_size}", f"descriptors\n{n_classes} classes"]
    values = [n_pixels, per_class * n_classes]
    fig = Figure(figsize=(6.5, 3.2), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    bars = ax.bar(names, values, color=["#9e9e9e", "#e6550d"])
    ax.set_yscale("log")
    ax.set_ylabel("numbers given per image")
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, v * 1.3, f"{v:,}", ha="center", fontsize=10)
    ax.set_ylim(1, n_pixels * 8)
    ax.set_title(f"{n_pixels / values[1]:,.0f}× fewer numbers")
    ax2 = fig.add_subplot(1, 2, 2)
    ax2.barh(list(values_per_class), list(values_per_class.values()), color="#e6550d")
    ax2.invert_yaxis()
    ax2.set_xlabel("values per class")
    ax2.set_title(f"{per_class} values per class")
    ax2.set_xticks(range(0, max(values_per_class.values()) + 1))
    return fig


def plot_maps(
    maps: Sequence,
    titles: Sequence[str] | None = None,
    *,
    cmap: str = "viridis",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    suptitle: str | None = None,
    colorbar: bool = False,
    rows: int = 1,
    panel: float = 2.8,
) -> Figure:
    """A row (or grid) of 2-D maps: masks, soft masks, images, differences."""
    maps = list(maps)
    fig = _figure(len(maps), panel=panel, rows=rows)
    cols = math.ceil(len(maps) / rows)
    for i, m in enumerate(maps):
        ax = fig.add_subplot(rows, cols, i + 1)
        im = ax.imshow(_map2d(m), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
        _clean(ax)
        if colorbar:
            fig.colorbar(im, ax=ax, shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_descriptor_overlay(
    prob,
    *,
    centroid=None,
    spread=None,
    title: str | None = None,
    text: str | None = None,
    centroid_box: tuple[float, float, float, float] | None = None,
) -> Figure:
    """One soft map with its centroid (+) and spread ellipses (dotted 1·D, solid 2·D per axis).

    For a disk of radius r the per-axis spread is r/2, so the solid ellipse is the disk itself.
    `centroid_box` = (row_lo, row_hi, col_lo, col_hi) draws the centroid's bounds as a rectangle.
    """
    return plot_descriptor_overlays(
        [prob],
        centroids=[centroid],
        spreads=[spread],
        titles=[title] if title else None,
        texts=[text] if text else None,
        centroid_boxes=[centroid_box] if centroid_box else None,
        panel=4.0,
    )


def plot_descriptor_overlays(
    probs: Sequence,
    *,
    centroids: Sequence | None = None,
    spreads: Sequence | None = None,
    titles: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    centroid_boxes: Sequence | None = None,
    panel: float = 3.0,
) -> Figure:
    """Several soft maps side by side, each with its centroid and spread ellipses."""
    probs = list(probs)
    fig = _figure(len(probs), panel=panel, extra_h=0.7 if texts else 0.4)
    for i, p in enumerate(probs):
        ax = fig.add_subplot(1, len(probs), i + 1)
        ax.imshow(_map2d(p, "prob"), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        _draw_centroid_and_spread(
            ax,
            centroids[i] if centroids is not None else None,
            spreads[i] if spreads is not None else None,
            label=(i == 0),
        )
        if centroid_boxes is not None and centroid_boxes[i] is not None:
            r0, r1, c0, c1 = centroid_boxes[i]
            ax.add_patch(
                Rectangle((c0, r0), c1 - c0, r1 - r0, fill=False, ec="#ffcc00", lw=1.5, ls="--")
            )
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
        if texts is not None:
            ax.set_xlabel(texts[i], fontsize=9, family="monospace")
        ax.set_xticks([])
        ax.set_yticks([])
        h, w = _map2d(p).shape
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
    if spreads is not None and any(s is not None for s in spreads):
        fig.axes[0].legend(loc="lower left", fontsize=7, framealpha=0.7)
    return fig


def plot_gradient_maps(
    grads: Mapping[str, object],
    *,
    prob=None,
    suptitle: str | None = None,
    panel: float = 3.0,
) -> Figure:
    """Maps of d(descriptor)/d(p) per pixel (red: raising p there raises the descriptor).

    Each panel has its own symmetric colour scale; the shape's 0.5 contour is drawn if `prob` is given.
    """
    fig = _figure(len(grads), panel=panel)
    contour = _map2d(prob) if prob is not None else None
    for i, (name, g) in enumerate(grads.items()):
        ax = fig.add_subplot(1, len(grads), i + 1)
        a = _map2d(g, name)
        lim = float(np.abs(a).max()) or 1.0
        im = ax.imshow(a, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        if contour is not None and contour.min() < 0.5 < contour.max():
            ax.contour(contour, levels=[0.5], colors="k", linewidths=0.8)
        ax.set_title(name, fontsize=10)
        _clean(ax)
        fig.colorbar(im, ax=ax, shrink=0.75, format="%.2g")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_shape_report(
    prob,
    *,
    centroid,
    spread,
    grad,
    grad_title: str,
    table: str,
    title: str | None = None,
) -> Figure:
    """Three panels: the soft map with centroid and spread, a text table, one gradient map."""
    fig = Figure(figsize=(11.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[1.0, 1.05, 1.2])
    ax = axes[0]
    m = _map2d(prob, "prob")
    ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _draw_centroid_and_spread(ax, centroid, spread)
    ax.set_xlim(-0.5, m.shape[1] - 0.5)
    ax.set_ylim(m.shape[0] - 0.5, -0.5)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.7)
    ax.set_title(title or "soft map", fontsize=10)
    _clean(ax)
    axes[1].set_axis_off()
    axes[1].text(0.0, 0.5, table, family="monospace", fontsize=9, va="center", ha="left")
    ax = axes[2]
    g = _map2d(grad, "grad")
    lim = float(np.abs(g).max()) or 1.0
    im = ax.imshow(g, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    if m.min() < 0.5 < m.max():
        ax.contour(m, levels=[0.5], colors="k", linewidths=0.8)
    ax.set_title(grad_title, fontsize=10)
    _clean(ax)
    fig.colorbar(im, ax=ax, shrink=0.8, format="%.2g")
    return fig


def plot_shift_differences(mask, *, neighbourhood: int = 8) -> Figure:
    """The length as a sum of squared differences between a map and its shifted copies.

    Panels: the map, then (p(x) - p(x + o))² for each offset o counted once (vertical, horizontal and,
    for the 8-neighbourhood, both diagonals), each titled with its sum.
    """
    if neighbourhood not in (4, 8):
        raise ValueError(f"neighbourhood: expected 4 or 8, got {neighbourhood!r}")
    m = _map2d(mask, "mask")
    offsets = {"vertical (1, 0)": (1, 0), "horizontal (0, 1)": (0, 1)}
    if neighbourhood == 8:
        offsets |= {"diagonal (1, 1)": (1, 1), "anti-diagonal (1, −1)": (1, -1)}
    diffs = {}
    h, w = m.shape
    for name, (dr, dc) in offsets.items():
        d = np.zeros_like(m)
        c0, c1 = max(0, -dc), w - max(0, dc)
        d[: h - dr, c0:c1] = (m[: h - dr, c0:c1] - m[dr:, c0 + dc : c1 + dc]) ** 2
        diffs[name] = d
    total = sum(float(d.sum()) for d in diffs.values())
    fig = _figure(len(diffs) + 1, panel=2.6)
    ax = fig.add_subplot(1, len(diffs) + 1, 1)
    ax.imshow(m, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"map (length {total:.4g})", fontsize=9)
    _clean(ax)
    for i, (name, d) in enumerate(diffs.items()):
        ax = fig.add_subplot(1, len(diffs) + 1, i + 2)
        ax.imshow(d, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{name}\nsum {d.sum():.4g}", fontsize=9)
        _clean(ax)
    return fig


def plot_penalty_curves(
    z,
    curves: Mapping[str, object],
    *,
    derivatives: Mapping[str, object] | None = None,
    marks: Mapping[str, float] | None = None,
    ylim: tuple[float, float] | None = None,
    slope_ylim: tuple[float, float] | None = None,
    title: str | None = None,
    xlabel: str = "z = f(s) − bound",
) -> Figure:
    """Penalties ψ(z) of a constraint z ≤ 0 (feasible side shaded), and optionally ψ'(z).

    `marks` draws labelled vertical lines (e.g. the barrier's switch point z = −1/t²).
    """
    zz = _np(z).reshape(-1)
    n = 2 if derivatives else 1
    fig = Figure(figsize=(5.2 * n, 3.6), layout="constrained")
    panels = [(curves, "penalty ψ(z)")]
    if derivatives:
        panels.append((derivatives, "slope ψ'(z)"))
    colours = [f"C{i}" for i in range(10)]
    for j, (series, ylabel) in enumerate(panels):
        ax = fig.add_subplot(1, n, j + 1)
        ax.axvspan(zz.min(), 0, color="#31a354", alpha=0.08, label="feasible (z ≤ 0)")
        ax.axvline(0, color="k", lw=0.8)
        ax.axhline(0, color="k", lw=0.5)
        for i, (name, y) in enumerate(series.items()):
            yy = _np(y).reshape(-1)
            ax.plot(
                zz, np.where(np.isfinite(yy), yy, np.nan), color=colours[i % 10], lw=2, label=name
            )
        for k, (name, x) in enumerate((marks or {}).items()):
            ax.axvline(x, color=colours[k % 10], ls=":", lw=1.2)
            if j == 0:
                ax.annotate(
                    name, (x, 0), xytext=(2, 6 + 12 * k), textcoords="offset points", fontsize=8
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim is not None and j == 0:
            ax.set_ylim(*ylim)
        if slope_ylim is not None and j == 1:
            ax.set_ylim(*slope_ylim)
        ax.set_xlim(zz.min(), zz.max())
        ax.legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    return fig


def plot_optimisation_snapshots(
    snapshots: Sequence[tuple[int, object]],
    *,
    target=None,
    centroids: Sequence | None = None,
    spreads: Sequence | None = None,
    panel: float = 2.6,
) -> Figure:
    """A soft mask at several optimisation steps; the target's outline in yellow if given."""
    fig = _figure(len(snapshots), panel=panel)
    outline = _map2d(target) if target is not None else None
    for i, (step, p) in enumerate(snapshots):
        ax = fig.add_subplot(1, len(snapshots), i + 1)
        ax.imshow(_map2d(p), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        if outline is not None:
            ax.contour(outline, levels=[0.5], colors="#ffcc00", linewidths=1.2)
        _draw_centroid_and_spread(
            ax,
            centroids[i] if centroids is not None else None,
            spreads[i] if spreads is not None else None,
            label=False,
        )
        ax.set_title(f"step {step}", fontsize=10)
        _clean(ax)
    return fig


def plot_descriptor_history(
    history: Mapping[str, Sequence[float]],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    steps: Sequence[int] | None = None,
    xlabel: str = "step",
    cols: int = 3,
) -> Figure:
    """One small panel per descriptor value over the steps, with its [lower, upper] band shaded."""
    names = list(history)
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(3.3 * min(cols, len(names)), 2.4 * rows), layout="constrained")
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, min(cols, len(names)), i + 1)
        y = _np(history[name]).reshape(-1)
        x = np.arange(len(y)) if steps is None else _np(steps).reshape(-1)
        if bounds is not None and name in bounds:
            lo, hi = bounds[name]
            ax.axhspan(lo, hi, color="#31a354", alpha=0.2, label="bounds")
        ax.plot(x, y, color="#e6550d", lw=1.8)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=8)
    return fig


def _label_cmap(n_classes: int) -> ListedColormap:
    colours = [
        to_rgba(CLASS_COLOURS[k % len(CLASS_COLOURS)], 0.0 if k == 0 else 0.55)
        for k in range(n_classes)
    ]
    return ListedColormap(colours)


def plot_label_overlays(
    images: Sequence,
    labels: Sequence | None = None,
    *,
    class_names: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    rows: int = 1,
    panel: float = 2.8,
) -> Figure:
    """Images in grey with their label maps (or predictions) as coloured overlays and a legend."""
    images = list(images)
    n_classes = (
        len(class_names)
        if class_names is not None
        else 1 + max(int(_np(lab).max()) for lab in (labels or [np.zeros(1)]))
    )
    cmap = _label_cmap(max(n_classes, 2))
    fig = _figure(len(images), panel=panel, rows=rows, extra_h=0.9 if class_names else 0.5)
    cols = math.ceil(len(images) / rows)
    for i, img in enumerate(images):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(_map2d(img, "image"), cmap="gray", interpolation="nearest")
        if labels is not None and labels[i] is not None:
            lab = _map2d(labels[i], "label")
            ax.imshow(
                lab, cmap=cmap, vmin=-0.5, vmax=max(n_classes, 2) - 0.5, interpolation="nearest"
            )
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
        _clean(ax)
    if class_names is not None:
        handles = [
            Patch(color=CLASS_COLOURS[k % len(CLASS_COLOURS)], label=name)
            for k, name in enumerate(class_names)
            if k > 0
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return fig


def plot_population_bounds(
    values: Mapping[str, object],
    bounds: Mapping[str, tuple[float, float]] | None = None,
    *,
    xlabel: str = "value",
    title: str | None = None,
    bins: int = 30,
) -> Figure:
    """Histograms of one descriptor over a population, one panel per class, with constant bounds."""
    fig = Figure(figsize=(3.4 * len(values), 2.9), layout="constrained")
    for i, (name, v) in enumerate(values.items()):
        ax = fig.add_subplot(1, len(values), i + 1)
        vv = _np(v).reshape(-1)
        colour = CLASS_COLOURS[(i + 1) % len(CLASS_COLOURS)]
        ax.hist(vv, bins=bins, color=colour, alpha=0.75)
        if bounds is not None and name in bounds:
            lo, hi = bounds[name]
            ax.axvspan(lo, hi, color="#31a354", alpha=0.15, label="constant bounds")
            ax.axvline(lo, color="#31a354", lw=1.5)
            ax.axvline(hi, color="#31a354", lw=1.5)
            inside = float(np.mean((vv >= lo) & (vv <= hi))) if vv.size else float("nan")
            ax.set_title(f"{name}: {inside:.0%} inside", fontsize=10)
        else:
            ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))  # values in mm² have wide tick labels
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_volume_descriptors(
    centroids: Mapping[str, object],
    spreads: Mapping[str, object],
    *,
    title: str | None = None,
) -> Figure:
    """3-D view: per class, the centroid and the 2·spread axis-aligned ellipsoid (slice, row, col)."""
    fig = Figure(figsize=(5.5, 4.8), layout="constrained")
    ax = fig.add_subplot(1, 1, 1, projection="3d")
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 24), np.linspace(0, np.pi, 12))
    for i, name in enumerate(centroids):
        c = _np(centroids[name]).reshape(-1)
        d = _np(spreads[name]).reshape(-1)
        colour = CLASS_COLOURS[(i + 1) % len(CLASS_COLOURS)]
        xs = c[2] + 2 * d[2] * np.cos(u) * np.sin(v)
        ys = c[1] + 2 * d[1] * np.sin(u) * np.sin(v)
        zs = c[0] + 2 * d[0] * np.cos(v)
        ax.plot_wireframe(xs, ys, zs, color=colour, alpha=0.45, linewidth=0.6)
        ax.scatter([c[2]], [c[1]], [c[0]], color=colour, s=30, label=name)
    ax.set_xlabel("col")
    ax.set_ylabel("row")
    ax.set_zlabel("slice")
    ax.set_aspect("equal")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
