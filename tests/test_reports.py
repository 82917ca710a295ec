"""The authors' report on runs: std over volumes, the validation epoch, the box plots' whiskers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tutorial_lib import plots
from tutorial_lib.reports import (
    class_stds,
    validation_at,
    validation_epoch,
    validation_volumes,
    validation_volumes_at_class_best,
)


def test_class_stds_are_numpys_population_std_of_the_finite_values():
    per_volume = {
        "background": [0.9, 0.95, 0.97, 0.99],
        "rv": [0.5, 0.7, None, 0.9],  # None: a NaN DSC written to JSON, left out
        "lv": [0.8, 0.8, 0.8, math.inf],  # an infinite HD95 is left out as well
    }
    stds = class_stds(per_volume, ["rv", "lv"])
    assert stds["background"] == pytest.approx(np.std([0.9, 0.95, 0.97, 0.99]))
    # by hand: mean 0.7, squared deviations 0.04, 0, 0.04 -> sqrt(0.08 / 3)
    assert stds["rv"] == pytest.approx(math.sqrt(0.08 / 3))
    assert stds["lv"] == pytest.approx(0.0, abs=1e-12)
    # the "mean" entry pools every selected (volume, class) value, as their report.py
    assert stds["mean"] == pytest.approx(np.std([0.5, 0.7, 0.9, 0.8, 0.8, 0.8]))
    assert class_stds({"rv": [None, None]}, ["rv"]) == {"rv": None, "mean": None}
    with pytest.raises(
        ValueError, match=r"selection: expected classes of per_volume .* got \['myo'\]"
    ):
        class_stds(per_volume, ["myo"])


HISTORY = {
    "epoch": [0, 1, 2, 3],
    "val_dsc3d_rv": [0.1, 0.6, 0.5, 0.6],
    "val_dsc3d_mean": [0.2, 0.7, math.nan, 0.7],
    "val_dsc3d_rv@p1": [0.0, 0.5, 0.4, 0.55],
    "val_dsc3d_rv@p2": [0.2, 0.7, 0.6, 0.65],
    "val_dsc3d_rv_wall@p1": [0.0, 0.0, 0.0, 0.0],  # another class whose name starts alike
}


def test_validation_epoch_is_the_first_best_mean_and_skips_nan():
    assert validation_epoch(HISTORY) == (1, 1)  # the tie with epoch 3 goes to the first
    shifted = {**HISTORY, "epoch": [10, 11, 12, 13]}  # a row is not an epoch number
    assert validation_epoch(shifted) == (11, 1)
    assert validation_epoch({"val_dsc3d_mean": [math.nan, math.nan]}) is None
    with pytest.raises(ValueError, match="history: expected a column 'val_dsc3d_mean'"):
        validation_epoch({"epoch": [0]})


def test_validation_at_and_validation_volumes_read_that_row():
    assert validation_at({**HISTORY, "val_dsc3d_mean": [0.2, 0.7, 0.1, 0.7]}, 1, ["rv"]) == {
        "rv": 0.6,
        "mean": 0.7,
    }
    assert validation_volumes(HISTORY, 3, ["rv"]) == {"rv": [0.55, 0.65]}
    assert validation_volumes({"val_dsc3d_mean": [0.5]}, 0, ["rv"]) == {"rv": []}  # older log


def test_the_validation_box_plot_takes_each_class_at_its_own_best_epoch():
    # as the authors' moustache.py: per class, argmax over epochs of the mean over volumes
    history = {
        "epoch": [5, 6, 7, 8],
        "val_dsc3d_lv@a": [0.1, 0.9, 0.3, 0.9],  # best mean at epoch 6 (tie with 8: the first)
        "val_dsc3d_lv@b": [0.2, 0.7, 0.4, 0.7],
        "val_dsc3d_myo@a": [0.5, 0.2, math.nan, 0.6],  # a NaN left out: 0.8 alone at epoch 7
        "val_dsc3d_myo@b": [0.5, 0.2, 0.8, 0.6],
        "val_dsc3d_rv@a": [math.nan] * 4,  # never a finite value
    }
    best = validation_volumes_at_class_best(history, ["lv", "myo", "rv", "none"])
    assert best["lv"] == (6, [0.9, 0.7])
    assert best["myo"][0] == 7 and best["myo"][1][1] == 0.8 and math.isnan(best["myo"][1][0])
    assert best["rv"] == (-1, []) and best["none"] == (-1, [])
    assert validation_volumes_at_class_best({}, ["lv"]) == {"lv": (-1, [])}
    without_epochs = {k: v for k, v in history.items() if k != "epoch"}
    assert validation_volumes_at_class_best(without_epochs, ["lv"])["lv"][0] == 1  # the row


def _lines(fig, gid):
    return [line for line in fig.axes[0].lines if line.get_gid() == gid]


def test_box_plot_whiskers_end_at_the_5th_and_95th_percentiles_and_mark_the_mean():
    rng = np.random.default_rng(0)
    values = rng.beta(8, 2, size=40)
    fig = plots.plot_boxplots({"ce": {"lv": values.tolist()}}, ["lv"], title="t")
    low, high = sorted(_lines(fig, "whisker"), key=lambda line: line.get_ydata()[1])
    p5, p95 = np.percentile(values, [5, 95])
    # matplotlib's whis=(5, 95): each whisker ends at the outermost value within the percentile
    assert low.get_ydata()[1] == pytest.approx(values[values >= p5].min())
    assert high.get_ydata()[1] == pytest.approx(values[values <= p95].max())
    # the default (1.5 IQR) would reach further on this sample: the test tells them apart
    q1, q3 = np.percentile(values, [25, 75])
    assert values[values <= q3 + 1.5 * (q3 - q1)].max() != pytest.approx(high.get_ydata()[1])
    (mean,) = _lines(fig, "mean")
    assert mean.get_ydata() == pytest.approx([values.mean()] * 2)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["ce", "median", "mean", "whiskers: 5th-95th percentile", "beyond"]


def test_the_test_box_plot_draws_the_same_whiskers_and_drops_missing_values():
    values = [0.1, 0.5, None, 0.7, 0.9, 0.95, 0.97]
    fig = plots.plot_test_boxplots({"ce": {"lv": values}, "descriptors": {"lv": [0.5]}}, ["lv"])
    finite = np.asarray([v for v in values if v is not None])
    whiskers = _lines(fig, "whisker")
    assert len(whiskers) == 4 and len(_lines(fig, "mean")) == 2
    ends = sorted(w.get_ydata()[1] for w in whiskers[:2])
    p5, p95 = np.percentile(finite, [5, 95])
    assert ends == pytest.approx([finite[finite >= p5].min(), finite[finite <= p95].max()])
    assert fig.axes[0].get_title() == "Test 3-D DSC per volume"


def test_training_loss_figure_has_a_panel_per_method():
    fig = plots.plot_training_loss(
        {"ce": {"epoch": [0, 1], "train_loss": [1.0, 0.5]}, "descriptors": {"train_loss": [-1, -2]}}
    )
    assert [ax.get_title() for ax in fig.axes] == ["ce", "descriptors"]
    assert list(fig.axes[1].lines[0].get_ydata()) == [-1, -2]
    with pytest.raises(ValueError, match="history 'ce': expected a column 'train_loss'"):
        plots.plot_training_loss({"ce": {"epoch": [0]}})
