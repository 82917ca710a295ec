"""Training loop: end-to-end on tiny synthetic data, exact resume, the non-finite guard, errors."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from tiny_runs import tiny_config as tiny

from tutorial_lib import train as train_module
from tutorial_lib.checkpoint import load_checkpoint
from tutorial_lib.errors import NonFiniteLossError
from tutorial_lib.evaluation import evaluate, predict_run
from tutorial_lib.metrics import dice_3d_per_volume
from tutorial_lib.presets import get_preset
from tutorial_lib.run_setup import load_data, resolve_data_root
from tutorial_lib.runlog import read_csv, read_metrics
from tutorial_lib.train import train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny CE run and one tiny descriptors run, trained once for the module."""
    base = tmp_path_factory.mktemp("runs")
    out = {}
    for method in ("ce", "descriptors"):
        summary = train(tiny(method), out_dir=base / method, device="cpu", progress=False)
        out[method] = (base / method, summary)
    return out


def test_run_directory_layout_and_summary(runs):
    for method, (run_dir, summary) in runs.items():
        for name in ("config.json", "metrics.csv", "summary.json", "test.json"):
            assert (run_dir / name).is_file(), name
        assert summary["status"] == "done" and summary["epochs_done"] == 2
        rows = read_csv(run_dir / "metrics.csv")
        assert [r["epoch"] for r in rows] == [0, 1]
        assert rows[1]["t"] == pytest.approx(1.1 * rows[0]["t"])
        for column in (
            "lr",
            "train_loss",
            "train_dsc_mean",
            "val_dsc2d_lv",
            "val_dsc3d_mean",
            "seconds",
        ):
            assert column in rows[0], column
        if method == "descriptors":
            assert "c_size_violation" in rows[0] and "c_length_frac_violated" in rows[0]
        test = summary["test"]["test_dsc3d"]
        assert set(test) == {"background", "rv", "myocardium", "lv", "mean"}
        assert all(0.0 <= v <= 1.0 for v in test.values() if v is not None)
        best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
        assert best["epoch"] == summary["best_epoch"]
        assert best["score"] == pytest.approx(max(r["val_dsc2d_mean"] for r in rows))


def test_evaluate_matches_the_saved_test_results(runs):
    run_dir, summary = runs["ce"]
    again = evaluate(run_dir, device="cpu")
    assert again["test_dsc3d"] == pytest.approx(summary["test"]["test_dsc3d"], nan_ok=True)
    assert len(again["volumes"]) == len(again["dsc3d"]["lv"]) >= 1


def test_validation_dsc3d_matches_metrics_module(runs):
    """The per-epoch 3-D DSC (pooled counts) equals tutorial_lib.metrics.dice_3d_per_volume."""
    run_dir, _ = runs["ce"]
    cfg = tiny("ce")
    val = load_data(cfg, resolve_data_root(cfg, None), "val")
    pred = predict_run(run_dir, val.images, device="cpu")
    _, dsc = dice_3d_per_volume(pred, val.labels.long(), val.volume_ids, 4)
    rows = read_csv(run_dir / "metrics.csv")
    best_row = max(rows, key=lambda r: r["val_dsc2d_mean"])
    assert best_row["val_dsc3d_lv"] == pytest.approx(float(dsc[:, 3].nanmean()), abs=1e-5)


def test_resume_gives_the_uninterrupted_result(tmp_path):
    cfg = tiny("descriptors", epochs=3)
    train(cfg, out_dir=tmp_path / "full", device="cpu", progress=False)
    train(
        dataclasses.replace(cfg, epochs=2), out_dir=tmp_path / "cut", device="cpu", progress=False
    )
    train(cfg, out_dir=tmp_path / "cut", device="cpu", progress=False, resume=True)
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["t_schedule"] == b["t_schedule"]
    assert torch.equal(a["rng"]["augment"], b["rng"]["augment"])
    ma, mb = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "cut")
    for column in ma:
        if column != "seconds":
            assert ma[column] == pytest.approx(mb[column], nan_ok=True), column


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = train_module.cross_entropy_loss

    def breaks_in_epoch_1(logits, target):
        calls["n"] += 1
        loss = real(logits, target)
        return loss * math.nan if calls["n"] > steps_per_epoch else loss

    cfg = tiny("ce", epochs=3)
    n_train = len(load_data(cfg, resolve_data_root(cfg, None), "train"))
    steps_per_epoch = math.ceil(n_train / cfg.batch_size)
    monkeypatch.setattr(train_module, "cross_entropy_loss", breaks_in_epoch_1)
    with pytest.raises(NonFiniteLossError, match="non-finite loss .* epoch 1"):
        train(cfg, out_dir=tmp_path, device="cpu", progress=False)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "non-finite loss" and summary["epochs_done"] == 1
    assert len(read_csv(tmp_path / "metrics.csv")) == 1


def test_existing_run_directory_needs_resume(runs):
    run_dir, _ = runs["ce"]
    with pytest.raises(ValueError, match="resume=True"):
        train(tiny("ce"), out_dir=run_dir, device="cpu", progress=False)


def test_resume_with_another_config_is_refused(runs):
    run_dir, _ = runs["ce"]
    with pytest.raises(ValueError, match="config saved"):
        train(tiny("ce", lr=0.1), out_dir=run_dir, device="cpu", progress=False, resume=True)


def test_bad_inputs_raise_value_errors(tmp_path):
    with pytest.raises(ValueError, match="expected a TrainConfig"):
        train({"epochs": 1}, out_dir=tmp_path, progress=False)
    with pytest.raises(
        ValueError, match=r"^data_root \(--data\): expected a prepared folder for dataset 'acdc'"
    ):
        train(get_preset("acdc-ce"), out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="manifest.json"):
        train(tiny("ce"), data_root=tmp_path / "nothing", out_dir=tmp_path / "x", progress=False)
    with pytest.raises(ValueError, match="config.json"):
        evaluate(tmp_path / "missing")


def test_anatomical_priors_train_with_constant_bounds_in_mm(tmp_path):
    """Constant per-class bounds in mm (no per-image value at all) go through train() and resume."""
    from tutorial_lib.config import config_from_dict, config_to_dict
    from tutorial_lib.losses import DescriptorTerm

    priors = (
        # size of RV, myocardium, LV in mm^2: wide population bounds
        DescriptorTerm(
            "size", (1, 2, 3), lower=(50.0, 50.0, 50.0), upper=(5e4, 5e4, 5e4), physical=True
        ),
        DescriptorTerm("size", (0,), margin=0.05, mode="percentage"),
    )
    cfg = tiny("descriptors", terms=priors, epochs=1)
    assert config_from_dict(config_to_dict(cfg)) == cfg
    out = tmp_path / "priors"
    summary = train(cfg, out_dir=out, device="cpu", progress=False)
    assert summary["status"] == "done"
    saved = config_from_dict(json.loads((out / "config.json").read_text()))
    assert saved.terms[0].physical and saved.terms[0].lower == (50.0, 50.0, 50.0)
    # the same run without the priors: the priors must have changed the training
    without = train(
        dataclasses.replace(cfg, terms=priors[1:]),
        out_dir=tmp_path / "none",
        device="cpu",
        progress=False,
    )
    assert without["status"] == "done"
    loss_with = read_metrics(out)["train_loss"][0]
    loss_without = read_metrics(tmp_path / "none")["train_loss"][0]
    assert loss_with > 2 * loss_without  # the priors' constraints weigh in the training loss
    weights = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    others = load_checkpoint(tmp_path / "none" / "checkpoints" / "last.pt")["model"]
    assert any(not torch.equal(weights[k], others[k]) for k in weights)
