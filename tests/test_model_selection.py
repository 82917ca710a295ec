"""Model selection and the Dice of a class absent from both masks (`TrainConfig.dice_absent`),
the per-volume validation columns, and the precision a run trains in (`amp`)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny_runs import tiny_config as tiny

from tutorial_lib.evaluation import (
    dice_empty,
    predict_run,
    validation_scores,
    volume_column,
)
from tutorial_lib.metrics import dice_3d_per_volume, dice_counts
from tutorial_lib.run_setup import amp_dtype, load_data, precision_name, resolve_data_root
from tutorial_lib.runlog import read_csv, read_json
from tutorial_lib.train import EpochTotals, train

NAMES = ["background", "organ"]


def _maps(*rows: list[int]) -> torch.Tensor:
    """Label maps (N, 1, W) from rows of pixel labels: one slice per row."""
    return torch.tensor(rows, dtype=torch.long)[:, None, :]


# two validation slices of one volume: A holds the organ (5 pixels), B does not
TRUTH = _maps([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0] * 10)
EPOCHS = [
    # epoch 0: A exact (DSC 1), a false positive on B (DSC 0)
    _maps([1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [1] + [0] * 9),
    # epoch 1: A poor (1 of 5 pixels: DSC 2/6), B correctly empty (absent from both masks)
    _maps([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0] * 10),
]


def _selected_epoch(empty: str) -> int:
    """The loop's rule: the first epoch whose mean validation 2-D DSC beats every earlier one."""
    best, best_epoch = -float("inf"), None
    for epoch, pred in enumerate(EPOCHS):
        counts = dice_counts(pred, TRUTH, 2)
        score = validation_scores(counts, ["v", "v"], NAMES, [1], empty=empty)["val_dsc2d_mean"]
        if score > best:
            best, best_epoch = score, epoch
    return best_epoch


def test_the_two_conventions_pick_different_epochs():
    # "skip": epoch 0 = mean(1, 0) = 0.5 > epoch 1 = 2/6 (B left out)
    assert _selected_epoch("nan") == 0
    # "one": epoch 0 = 0.5 < epoch 1 = (2/6 + 1) / 2 = 2/3 (B scores 1)
    assert _selected_epoch("one") == 1
    counts = dice_counts(EPOCHS[1], TRUTH, 2)
    one = validation_scores(counts, ["v", "v"], NAMES, [1], empty="one")
    assert one["val_dsc2d_organ"] == pytest.approx((2 / 6 + 1) / 2)
    skip = validation_scores(counts, ["v", "v"], NAMES, [1], empty="nan")
    assert skip["val_dsc2d_organ"] == pytest.approx(2 / 6)


def test_dice_empty_follows_the_config():
    assert dice_empty(tiny("ce", dice_absent="one")) == "one"
    assert dice_empty(tiny("ce", dice_absent="skip")) == "nan"


def test_the_training_dice_uses_the_same_convention():
    logits = torch.zeros(2, 2, 1, 10)
    pred = EPOCHS[1][:, 0]  # (2, 10): B predicts no organ, and has none
    logits[:, 1][pred[:, None, :] == 1] = 1.0  # arg-max = pred
    for empty, organ in (("nan", 2 / 6), ("one", (2 / 6 + 1) / 2)):
        totals = EpochTotals(NAMES, [1], torch.device("cpu"), empty)
        totals.add(torch.tensor(0.5), logits, TRUTH, None)
        row = totals.row()
        assert row["train_dsc_organ"] == pytest.approx(organ)
        assert row["train_dsc_mean"] == pytest.approx(organ)


def test_validation_rows_hold_each_volumes_3d_dice():
    truth = torch.cat([TRUTH, TRUTH])
    pred = torch.cat(EPOCHS)
    ids = ["a", "a", "b", "b"]
    row = validation_scores(dice_counts(pred, truth, 2), ids, NAMES, [1], empty="one")
    _, expected = dice_3d_per_volume(pred, truth, ids, 2, empty="one")
    for v, vid in enumerate(("a", "b")):
        for k, name in enumerate(NAMES):
            assert row[volume_column(name, vid)] == pytest.approx(float(expected[v, k]))
    # volume a: 2·5 / (6 + 5); volume b: 2·1 / (1 + 5)
    assert row[volume_column("organ", "a")] == pytest.approx(10 / 11)
    assert row["val_dsc3d_organ"] == pytest.approx((10 / 11 + 2 / 6) / 2)


def test_a_tiny_run_selects_and_logs_by_its_config(tmp_path):
    """Each run's metrics.csv follows its own `dice_absent`; the best checkpoint holds the first
    epoch of the highest logged score."""
    cfg = tiny("ce", dice_absent="one", epochs=2)
    out = tmp_path / "run"
    summary = train(cfg, out_dir=out, device="cpu", progress=False)
    rows = read_csv(out / "metrics.csv")
    scores = [r["val_dsc2d_mean"] for r in rows]
    assert summary["best_epoch"] == scores.index(max(scores))
    val = load_data(cfg, resolve_data_root(cfg, None), "val")
    pred = predict_run(out, val.images, device="cpu")
    counts = dice_counts(pred, val.labels.long(), 4)
    row = rows[summary["best_epoch"]]
    names = list(val.class_names)
    one = validation_scores(counts, val.volume_ids, names, [1, 2, 3], empty="one")
    skip = validation_scores(counts, val.volume_ids, names, [1, 2, 3], empty="nan")
    differ = [k for k in one if not one[k] == pytest.approx(skip[k], nan_ok=True)]
    assert differ, "no class absent from both masks: the data does not tell the conventions apart"
    for key in differ:
        assert row[key] == pytest.approx(one[key], abs=1e-5), key
    assert read_json(out / "summary.json")["precision"] == "float32"


def test_auto_precision_needs_native_bfloat16(monkeypatch):
    cfg = tiny("ce")
    cuda = torch.device("cuda")
    for capability, expected in (((7, 5), None), ((8, 0), torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d, c=capability: c)
        assert amp_dtype(cfg, cuda) is expected  # a T4 (7.5) emulates bfloat16: float32
    assert amp_dtype(cfg, torch.device("cpu")) is None
    assert amp_dtype(dataclasses.replace(cfg, amp="bf16"), torch.device("cpu")) is torch.bfloat16
    assert amp_dtype(dataclasses.replace(cfg, amp="off"), cuda) is None
    assert precision_name(None) == "float32"
    assert precision_name(torch.bfloat16) == "bfloat16 autocast"
