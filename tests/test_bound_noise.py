"""An annotator's error on the bounds' values in training: the config's `bound_noise`, the
per-slice table of a run, and a training run that uses it (the loss's `value_noise` is tested in
tests/test_losses.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny_runs import tiny_config as tiny

from tutorial_lib.run_setup import build_run, value_noise_table
from tutorial_lib.runlog import read_metrics
from tutorial_lib.train import train


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1", True])
def test_config_refuses_a_bad_bound_noise(bad):
    with pytest.raises(
        ValueError, match=r"^bound_noise: expected a relative error in \[0, 1\], got "
    ):
        dataclasses.replace(tiny("descriptors"), bound_noise=bad)


def test_the_noise_table_is_drawn_once_per_slice_from_the_seed():
    cfg = dataclasses.replace(tiny("descriptors"), bound_noise=0.1)
    table = value_noise_table(cfg, 50, torch.device("cpu"))
    columns = 4 + 2 * 3 + 2 * 3 + 3  # size (background + 3 classes), centroid, spread, length
    assert table.shape == (50, columns) and table.dtype == torch.float32
    assert torch.equal(table, value_noise_table(cfg, 50, torch.device("cpu")))
    assert 0.08 < float(table.std()) < 0.12  # N(0, 0.1²) over 900 draws
    other_seed = value_noise_table(dataclasses.replace(cfg, seed=1), 50, torch.device("cpu"))
    assert not torch.equal(table, other_seed)
    assert value_noise_table(dataclasses.replace(cfg, bound_noise=0.0), 50, "cpu") is None
    assert value_noise_table(tiny("ce"), 50, torch.device("cpu")) is None
    large = value_noise_table(dataclasses.replace(cfg, bound_noise=1.0), 50, "cpu")
    assert float(large.min()) == -1.0  # a factor 1 + e never below 0


def test_a_noisy_run_trains_and_differs_from_the_exact_one(tmp_path):
    exact_cfg = tiny("descriptors", epochs=1)
    noisy_cfg = dataclasses.replace(exact_cfg, bound_noise=0.2)
    run = build_run(noisy_cfg, device="cpu")
    assert run.value_noise is not None and run.value_noise.shape[0] == run.data.labels.shape[0]
    exact = train(exact_cfg, out_dir=tmp_path / "exact", device="cpu", progress=False)
    noisy = train(noisy_cfg, out_dir=tmp_path / "noisy", device="cpu", progress=False)
    assert noisy["status"] == "done" and exact["status"] == "done"
    # the same weights, data and batches: only the bounds differ, and so does the loss
    loss = {k: read_metrics(tmp_path / k)["train_loss"] for k in ("exact", "noisy")}
    assert loss["exact"] != loss["noisy"]


def test_graph_mode_refuses_a_noise_table(tmp_path):
    cfg = dataclasses.replace(tiny("descriptors"), bound_noise=0.1)
    with pytest.raises(ValueError, match=r"graph: expected bound_noise=0 .*got bound_noise=0.1"):
        build_run(cfg, graph=True)
