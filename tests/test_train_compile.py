"""`train(..., compile=True)`: a tiny compiled run on the CPU against the same run in eager mode."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import pytest
import torch
from tiny_runs import TINY_DATA as BASE_DATA
from tiny_runs import tiny_config

from tutorial_lib.checkpoint import load_checkpoint
from tutorial_lib.evaluation import evaluate
from tutorial_lib.run_setup import compile_network
from tutorial_lib.runlog import read_json, read_metrics
from tutorial_lib.train import train

# 16 training slices in batches of 8 and the 10 validation slices in one batch: one graph for the
# training steps and one for validation (eval mode, no grad), no recompile for a short last batch.
TINY_DATA = dataclasses.replace(BASE_DATA, max_train_slices=16)
CXX = os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")
needs_compiler = pytest.mark.skipif(
    shutil.which(CXX) is None,
    reason=f"torch.compile on the CPU needs a C++ compiler ({CXX}), none found",
)


def tiny(**changes):
    return tiny_config("ce", data=TINY_DATA, **{"epochs": 1, **changes})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same one-epoch run, eager and compiled (the compile takes most of this file's time)."""
    base = tmp_path_factory.mktemp("compile")
    out = {}
    for name, compile in (("eager", False), ("compiled", True)):
        summary = train(tiny(), out_dir=base / name, device="cpu", progress=False, compile=compile)
        out[name] = (base / name, summary)
    return out


@needs_compiler
def test_compiled_run_finishes_and_says_so(runs):
    for name, (run_dir, summary) in runs.items():
        assert summary["status"] == "done" and summary["epochs_done"] == 1
        expected = "default" if name == "compiled" else False
        assert summary["compiled"] == expected
        assert read_json(run_dir / "summary.json")["compiled"] == expected


@needs_compiler
def test_checkpoints_hold_the_plain_module(runs):
    for file in ("last.pt", "best.pt"):
        eager = load_checkpoint(runs["eager"][0] / "checkpoints" / file)["model"]
        compiled = load_checkpoint(runs["compiled"][0] / "checkpoints" / file)["model"]
        assert list(compiled) == list(eager), file
        assert not any(key.startswith("_orig_mod.") for key in compiled)


@needs_compiler
def test_compiled_run_scores_close_to_the_eager_run(runs):
    """Same seed, same data: compiled kernels round differently, nothing more."""
    eager, compiled = read_metrics(runs["eager"][0]), read_metrics(runs["compiled"][0])
    assert set(compiled) == set(eager)
    for column in eager:
        if column != "seconds":
            assert compiled[column] == pytest.approx(eager[column], rel=1e-3, abs=1e-4), column
    weights = load_checkpoint(runs["compiled"][0] / "checkpoints" / "last.pt")["model"]
    for key, value in load_checkpoint(runs["eager"][0] / "checkpoints" / "last.pt")[
        "model"
    ].items():
        if value.is_floating_point():
            assert torch.allclose(weights[key], value, rtol=1e-3, atol=1e-4), key


@needs_compiler
def test_evaluate_and_resume_need_no_compile(runs, tmp_path):
    run_dir, summary = runs["compiled"]
    again = evaluate(run_dir, device="cpu")
    assert again["test_dsc3d"] == pytest.approx(summary["test"]["test_dsc3d"], nan_ok=True)
    # compile is an execution option, not part of the config: resume the run in eager mode
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    resumed = train(tiny(epochs=2), out_dir=copy, device="cpu", progress=False, resume=True)
    assert resumed["status"] == "done" and resumed["epochs_done"] == 2
    assert resumed["compiled"] is False


def test_compile_unavailable_is_a_value_error(tmp_path, monkeypatch):
    def unsupported(model, **kwargs):
        raise RuntimeError("torch.compile is not supported on this Python")

    monkeypatch.setattr(torch, "compile", unsupported)
    with pytest.raises(ValueError, match="expected torch.compile to be supported.*not supported"):
        train(tiny(), out_dir=tmp_path, device="cpu", progress=False, compile=True)
    monkeypatch.delattr(torch, "compile")
    with pytest.raises(ValueError, match=r"torch 2\.0 or newer"):
        compile_network(torch.nn.Linear(1, 1))


def test_train_command_passes_compile(monkeypatch, tmp_path):
    from tutorial_lib import train as train_module
    from tutorial_lib.cli import main

    seen = {}

    def fake_train(config, **kwargs):
        seen.update(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(train_module, "train", fake_train)
    argv = ["train", "--preset", "toy-cardiac-ce", "--out", str(tmp_path), "--quiet"]
    assert main([*argv, "--threads", "1", "--compile"]) == 2
    assert seen["compile"] is True
    assert main([*argv, "--threads", "1"]) == 2
    assert seen["compile"] is False
    assert main([*argv, "--threads", "1", "--compile", "reduce-overhead"]) == 2
    assert seen["compile"] == "reduce-overhead" and seen["graph"] is False
    assert main([*argv, "--threads", "1", "--graph"]) == 2
    assert seen["graph"] is True


def test_a_bad_compile_mode_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="compile: expected True, False or one of .*'fast'"):
        train(tiny(), out_dir=tmp_path / "run", device="cpu", progress=False, compile="fast")
    assert not (tmp_path / "run").exists()
