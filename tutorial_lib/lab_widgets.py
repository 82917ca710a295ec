"""The free-mask laboratory as an explorer: choose, press Run, watch the mask converge.

`free_mask_figure(target, **settings)` runs `tutorial_lib.free_mask.optimise_free_mask` and draws
the result (`plots.plot_free_mask`); `free_mask_explorer(target)` maps check boxes and sliders onto
those settings and redraws while the optimisation runs (every `redraw_every` steps). A run of
300 steps at 64² took 0.6-0.9 s on one thread of a 2-core machine (1.3-1.9 s while other work
kept it busy), so the widget stays responsive on a small Binder machine. Call `free_mask_figure` to get the same figure without a kernel.
"""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure
from torch import Tensor

from tutorial_lib.free_mask import (
    DEFAULT_MARGINS,
    DESCRIPTOR_CHOICES,
    FreeMaskResult,
    optimise_free_mask,
)
from tutorial_lib.penalties import PENALTIES
from tutorial_lib.plots import study as plots

__all__ = ["free_mask_figure", "free_mask_explorer", "lab_settings"]


def free_mask_figure(
    target: Tensor,
    descriptors: Sequence[str] = DESCRIPTOR_CHOICES,
    margins: Mapping[str, float] | None = None,
    **settings,
) -> tuple[Figure, FreeMaskResult]:
    """Optimise a free mask for `target` (settings of `optimise_free_mask`) and draw it; returns
    (figure, result). Snapshots every steps / 4 unless `snapshot_every` is given."""
    steps = settings.get("steps", 300)
    settings.setdefault("snapshot_every", max(1, steps // 4))
    result = optimise_free_mask(target, descriptors, margins, **settings)
    title = f"{' + '.join(descriptors)}: Dice {result.final_dice:.3f} in {result.seconds:.1f} s"
    return plots.plot_free_mask(result, target, title=title), result


def lab_settings(values: Mapping[str, object]) -> dict[str, object]:
    """The explorer's control values -> keyword arguments of `optimise_free_mask`."""
    descriptors = tuple(name for name in DESCRIPTOR_CHOICES if values[f"use_{name}"])
    margins = {
        "size": values["size_margin_pct"] / 100,
        "centroid": values["position_margin_px"],
        "dist_centroid": values["position_margin_px"],
        "length": values["length_margin_pct"] / 100,
    }
    return {
        "descriptors": descriptors,
        "margins": {k: v for k, v in margins.items() if k in descriptors},
        "penalty": values["penalty"],
        "t_factor": values["t_factor"],
        "noise": values["noise_pct"] / 100,
        "steps": values["steps"],
    }


def _png(fig: Figure) -> dict:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    data = base64.b64encode(buffer.getvalue()).decode()
    return {
        "output_type": "display_data",
        "data": {"image/png": data, "text/plain": "figure"},
        "metadata": {},
    }


def _controls():
    import ipywidgets as w

    style = {"description_width": "initial"}
    checks = {
        f"use_{name}": w.Checkbox(value=True, description=name, indent=False)
        for name in DESCRIPTOR_CHOICES
    }
    sliders = {
        "size_margin_pct": w.FloatSlider(
            value=100 * DEFAULT_MARGINS["size"], min=1, max=100, step=1, description="size ± %"
        ),
        "position_margin_px": w.FloatSlider(
            value=1.0, min=0.5, max=20, step=0.5, description="centroid, spread ± px"
        ),
        "length_margin_pct": w.FloatSlider(
            value=100 * DEFAULT_MARGINS["length"], min=1, max=100, step=1, description="length ± %"
        ),
        "penalty": w.Dropdown(options=list(PENALTIES), value="log_barrier", description="penalty"),
        "t_factor": w.FloatSlider(
            value=1.1, min=1.0, max=1.5, step=0.05, description="t × every 10 steps"
        ),
        "noise_pct": w.FloatSlider(value=0, min=0, max=30, step=1, description="noise %"),
        "steps": w.IntSlider(value=300, min=50, max=1000, step=50, description="steps"),
    }
    for control in (*checks.values(), *sliders.values()):
        control.style = style
    return checks, sliders


def free_mask_explorer(target: Tensor, *, redraw_every: int = 50):
    """Check boxes for the descriptors, sliders for the margins, the penalty, the t schedule, the
    noise and the steps; Run optimises and redraws every `redraw_every` steps."""
    import ipywidgets as w

    checks, sliders = _controls()
    button = w.Button(description="Run", button_style="primary", icon="play")
    status = w.HTML("Choose, then press Run.")
    out = w.Output()

    def redraw(result_so_far: FreeMaskResult) -> None:
        fig = plots.plot_free_mask(result_so_far, target)
        out.outputs = (_png(fig),)

    def on_run(_button=None) -> None:
        values = {k: c.value for k, c in {**checks, **sliders}.items()}
        settings = lab_settings(values)
        if not settings["descriptors"]:
            status.value = "Tick one descriptor at least."
            return
        button.disabled = True
        status.value = "running..."
        try:
            _run_and_draw(target, settings, redraw_every, redraw, status)
        except ValueError as error:
            status.value = f"error: {error}"
        finally:
            button.disabled = False

    button.on_click(on_run)
    row = w.HBox(list(checks.values()))
    box = w.HBox(list(sliders.values()), layout=w.Layout(flex_flow="row wrap"))
    return w.VBox([row, box, w.HBox([button, status]), out])


def _run_and_draw(target, settings, redraw_every, redraw, status) -> None:
    """One optimisation, redrawn every `redraw_every` steps (the run so far), then at the end."""

    def on_snapshot(so_far: FreeMaskResult) -> None:
        redraw(dataclasses.replace(so_far, snapshots=so_far.snapshots[-4:]))
        status.value = f"step {so_far.snapshots[-1][0]}: Dice {so_far.dice[-1]:.3f}"

    result = optimise_free_mask(
        target, snapshot_every=redraw_every, on_snapshot=on_snapshot, **settings
    )
    redraw(dataclasses.replace(result, snapshots=result.snapshots[-4:]))
    status.value = (
        f"Dice {result.final_dice:.3f}, {result.violated[-1]:.0%} of the constraints broken, "
        f"{result.seconds:.1f} s"
    )
