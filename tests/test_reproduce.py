"""`reproduce` and the train / evaluate / reproduce commands, end to end on tiny presets."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tutorial_lib import presets
from tutorial_lib.cli import main
from tutorial_lib.config import DataConfig
from tutorial_lib.errors import NonFiniteLossError, RunFailedError
from tutorial_lib.reproduce import format_table, run_configs
from tutorial_lib.runlog import read_metrics


@pytest.fixture
def tiny_presets(monkeypatch, tmp_path_factory):
    """Shrink the toy-cardiac presets to seconds-long runs (32x32, 5 patients, 2 epochs)."""
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path_factory.getbasetemp() / "data-cache"))
    data = DataConfig("toy-cardiac", size=32, n_patients=5, generator_seed=0)
    for method in ("ce", "descriptors"):
        name = f"toy-cardiac-{method}"
        small = dataclasses.replace(
            presets.PRESETS[name], data=data, epochs=2, model_options={"base": 4, "depth": 2}
        )
        monkeypatch.setitem(presets.PRESETS, name, small)
        monkeypatch.setitem(presets.FAST_OVERRIDES, name, {"epochs": 1})


def test_reproduce_command_writes_summary_and_figures(tiny_presets, tmp_path, capsys):
    out = tmp_path / "rep"
    argv = ["reproduce", "--dataset", "toy-cardiac", "--fast", "--seed", "2", "--out", str(out)]
    argv += ["--quiet", "--threads", "1"]
    assert main([*argv, "--jobs", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dataset"] == "toy-cardiac" and summary["seed"] == 2 and summary["fast"] is True
    assert summary["jobs"] == 2  # the two runs trained at once, in two processes
    assert summary["devices"] == {"ce": "cpu", "descriptors": "cpu"}
    assert summary["classes"] == ["background", "rv", "myocardium", "lv"]
    assert summary["bf16"] is False
    for method in ("ce", "descriptors"):
        entry = summary["methods"][method]
        assert set(entry["test_dsc3d"]) == {"background", "rv", "myocardium", "lv", "mean"}
        assert set(entry["test_hd95"]) == set(entry["test_dsc3d"]) == set(entry["test_dsc3d_std"])
        assert entry["seconds"] > 0 and entry["epochs"] == 1
        assert entry["precision"] == "float32"
        config = json.loads((out / method / "config.json").read_text())
        assert config["seed"] == 2 and config["data"]["generator_seed"] == 2
        _check_report_entries(entry, out / method)
    for name in (
        "training_loss.png",
        "training_dsc.png",
        "validation_dsc2d.png",
        "validation_dsc3d.png",
        "validation_dsc3d_boxplot.png",
        "test_dsc3d_boxplot.png",
        "predictions.png",
    ):
        assert (out / name).stat().st_size > 1000, name
        assert name in summary["figures"]
    printed = capsys.readouterr().out
    assert "DSC 3-D" in printed and "descriptors / CE" in printed and " ± " in printed
    assert "val DSC 3-D" in printed and "float32" in printed

    # evaluate on the finished run prints the same test mean
    assert main(["evaluate", "--run", str(out / "ce"), "--threads", "1"]) == 0
    mean = summary["methods"]["ce"]["test_dsc3d"]["mean"]
    assert f"mean {mean:.3f}" in capsys.readouterr().out

    # a restarted reproduce reuses the finished runs (nothing retrained)
    before = (out / "ce" / "metrics.csv").read_text()
    assert main(argv) == 0
    assert (out / "ce" / "metrics.csv").read_text() == before


def _check_report_entries(entry: dict, run_dir) -> None:
    """summary.json's report keys of one method against its test.json and metrics.csv."""
    test = json.loads((run_dir / "test.json").read_text())
    for name, values in test["dsc3d"].items():
        finite = [v for v in values if v is not None]
        assert entry["test_dsc3d_std"][name] == pytest.approx(float(np.std(finite)))
    pooled = [v for c in test["selection_classes"] for v in test["dsc3d"][c] if v is not None]
    assert entry["test_dsc3d_std"]["mean"] == pytest.approx(float(np.std(pooled)))
    history = read_metrics(run_dir)
    row = int(np.nanargmax(np.asarray(history["val_dsc3d_mean"], dtype=float)))
    assert entry["val_epoch"] == history["epoch"][row]
    for name in ("background", "rv", "myocardium", "lv", "mean"):
        assert entry["val_dsc3d"][name] == pytest.approx(history[f"val_dsc3d_{name}"][row])


def test_train_command(tiny_presets, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "toy-cardiac-ce", "--out", str(out), "--quiet", "--threads", "1"]
    assert main([*argv, "--epochs", "1"]) == 0
    assert "test_dsc3d" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["epochs"] == 1
    # an existing run without --resume is refused with a message, not a traceback
    assert main([*argv, "--epochs", "1"]) == 2
    assert "resume" in capsys.readouterr().err
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    assert len((out / "metrics.csv").read_text().splitlines()) == 3


def test_errors(tmp_path, capsys):
    assert (
        main(
            ["reproduce", "--dataset", "acdc", "--out", str(tmp_path), "--quiet", "--threads", "1"]
        )
        == 2
    )
    assert "prepared" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(tmp_path / "none"), "--threads", "1"]) == 2
    with pytest.raises(ValueError, match="dataset: expected one of"):
        run_configs("cardiac", fast=True, seed=0)
    with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
        run_configs("toy-cardiac", fast=True, seed=-1)


def test_format_table_handles_missing_values():
    summary = {
        "dataset": "toy-prostate",
        "seed": 0,
        "fast": True,
        "classes": ["background", "prostate"],
        "ratio_dsc3d_mean": 0.5,
        "methods": {
            m: {
                "test_dsc3d": {"background": 0.9, "prostate": v, "mean": v},
                "test_hd95": {"background": None, "prostate": None, "mean": None},
                "seconds": 3.0,
            }
            for m, v in (("ce", 0.8), ("descriptors", 0.4))
        },
    }
    text = format_table(summary)
    assert "n/a" in text and "0.400" in text and "0.500" in text


def test_format_table_without_a_ratio():
    summary = {
        "dataset": "toy-prostate",
        "seed": 0,
        "fast": False,
        "classes": ["background", "prostate"],
        "ratio_dsc3d_mean": None,
        "methods": {
            m: {
                "test_dsc3d": {"background": 0.9, "prostate": 0.0, "mean": 0.0},
                "test_hd95": {"background": 1.0, "prostate": None, "mean": None},
                "seconds": 1.0,
            }
            for m in ("ce", "descriptors")
        },
    }
    assert "descriptors / CE, mean 3-D DSC: n/a" in format_table(summary)


def test_reproduce_command_passes_jobs_and_compile(monkeypatch, tmp_path):
    from tutorial_lib import reproduce as reproduce_module

    seen = {}

    def fake_reproduce(dataset, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(reproduce_module, "reproduce", fake_reproduce)
    argv = ["reproduce", "--dataset", "toy-cardiac", "--out", str(tmp_path), "--quiet"]
    assert main([*argv, "--threads", "1"]) == 2
    assert seen["jobs"] is None and seen["train_options"] is None
    assert main([*argv, "--threads", "1", "--jobs", "1", "--compile", "reduce-overhead"]) == 2
    assert seen["jobs"] == 1 and seen["train_options"] == {"compile": "reduce-overhead"}
    assert main([*argv, "--threads", "1", "--compile"]) == 2
    assert seen["train_options"] == {"compile": True} and seen["bf16"] is False
    assert main([*argv, "--threads", "1", "--bf16"]) == 2
    assert seen["bf16"] is True
    assert seen["devices"] is None
    assert main([*argv, "--threads", "1", "--devices", "cuda:0,cuda:1", "--jobs", "4"]) == 2
    assert seen["devices"] == "cuda:0,cuda:1" and seen["jobs"] == 4
    assert main([*argv, "--threads", "1", "--graph"]) == 2
    assert seen["train_options"] == {"graph": True}


def test_bf16_overrides_the_presets_precision():
    for dataset in ("promise12", "acdc"):
        paper = run_configs(dataset, fast=True, seed=0)
        assert {cfg.amp for cfg in paper.values()} == {"off"}  # float32, as the authors
        bf16 = run_configs(dataset, fast=True, seed=0, bf16=True)
        assert {cfg.amp for cfg in bf16.values()} == {"bf16"}
        for method, cfg in bf16.items():
            assert dataclasses.replace(cfg, amp="off") == paper[method]


@pytest.mark.parametrize(
    "error, code",
    [
        (NonFiniteLossError("non-finite loss at epoch 3"), 1),
        (RunFailedError("run 'ce': its process ended"), 1),
        (ValueError("seed: expected an integer >= 0, got -1"), 2),
        (FileExistsError("dest: expected a new folder, got an existing one"), 2),
    ],
)
def test_the_command_line_turns_errors_into_messages_and_exit_codes(
    monkeypatch, tmp_path, capsys, error, code
):
    from tutorial_lib import reproduce as reproduce_module

    def failing(dataset, **kwargs):
        raise error

    monkeypatch.setattr(reproduce_module, "reproduce", failing)
    argv = ["reproduce", "--dataset", "toy-cardiac", "--out", str(tmp_path), "--quiet"]
    assert main([*argv, "--threads", "1"]) == code
    assert capsys.readouterr().err.strip() == f"error: {error}"


def test_dataset_or_stand_in(tmp_path):
    from tutorial_lib.reproduce import dataset_or_stand_in

    dataset, root, message = dataset_or_stand_in("acdc", tmp_path / "acdc")
    assert (dataset, root) == ("toy-cardiac", None) and "No prepared acdc" in message
    (tmp_path / "acdc").mkdir()
    (tmp_path / "acdc" / "manifest.json").write_text("{}")
    dataset, root, message = dataset_or_stand_in("acdc", tmp_path / "acdc")
    assert (dataset, root) == ("acdc", tmp_path / "acdc") and "Using the prepared" in message
    assert dataset_or_stand_in("promise12", tmp_path / "none")[0] == "toy-prostate"
    with pytest.raises(ValueError, match="expected one of .*'acdc'.*got 'toy-cardiac'"):
        dataset_or_stand_in("toy-cardiac", tmp_path)


def test_a_toy_size_changes_the_data_and_nothing_else():
    at_128 = run_configs("toy-cardiac-paper", fast=False, seed=1, size=128)
    at_256 = run_configs("toy-cardiac-paper", fast=False, seed=1)
    for method in ("ce", "descriptors"):
        assert at_256[method].data.size == 256 and at_128[method].data.size == 128
        same = dataclasses.replace(at_128[method], data=at_256[method].data)
        assert same == at_256[method]  # the paper's settings, ±20 px margins included
    with pytest.raises(ValueError, match="size: expected a toy dataset .*acdc.*got 128"):
        run_configs("acdc", fast=False, seed=0, size=128)
