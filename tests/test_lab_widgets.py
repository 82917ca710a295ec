"""The free-mask explorer: Run optimises and redraws; its controls map onto the optimiser's
settings; the figure function works without a kernel."""

from __future__ import annotations

import pytest

from tutorial_lib.lab_widgets import free_mask_explorer, free_mask_figure, lab_settings
from tutorial_lib.widgets import make_shape

TARGET = make_shape("disk", size=32, radius=7).long()


pytestmark = pytest.mark.usefixtures("one_thread")


def _parts(box):
    checks_row, sliders_box, buttons, out = box.children
    button, status = buttons.children
    controls = {c.description: c for c in (*checks_row.children, *sliders_box.children)}
    return controls, button, status, out


def test_run_optimises_and_redraws_the_output():
    controls, button, status, out = _parts(free_mask_explorer(TARGET, redraw_every=25))
    controls["steps"].value = 50
    assert out.outputs == () and status.value == "Choose, then press Run."
    button.click()
    assert len(out.outputs) == 1 and out.outputs[0]["data"]["image/png"]
    assert status.value.startswith("Dice ") and "of the constraints broken" in status.value
    assert button.disabled is False
    first = out.outputs[0]["data"]["image/png"]
    controls["penalty"].value = "quadratic"
    button.click()  # another choice, another picture
    assert out.outputs[0]["data"]["image/png"] != first


def test_nothing_to_run_without_a_descriptor():
    controls, button, status, out = _parts(free_mask_explorer(TARGET))
    for name in ("size", "centroid", "dist_centroid", "length"):
        controls[name].value = False
    button.click()
    assert status.value == "Tick one descriptor at least." and out.outputs == ()


def test_the_controls_map_onto_the_optimiser_settings():
    values = {
        "use_size": True,
        "use_centroid": False,
        "use_dist_centroid": True,
        "use_length": False,
        "size_margin_pct": 20.0,
        "position_margin_px": 5.0,
        "length_margin_pct": 10.0,
        "penalty": "quadratic",
        "t_factor": 1.2,
        "noise_pct": 5.0,
        "steps": 100,
    }
    assert lab_settings(values) == {
        "descriptors": ("size", "dist_centroid"),
        "margins": {"size": 0.2, "dist_centroid": 5.0},
        "penalty": "quadratic",
        "t_factor": 1.2,
        "noise": 0.05,
        "steps": 100,
    }


def test_the_figure_function_runs_without_a_kernel():
    fig, result = free_mask_figure(TARGET, steps=40)
    assert [s for s, _ in result.snapshots] == [0, 10, 20, 30, 40]
    assert len(fig.axes) == 6 and "Dice" in fig.texts[0].get_text()
