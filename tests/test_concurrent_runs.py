"""Two runs trained at once in two processes give exactly the runs trained one after the other."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from tiny_runs import TINY_DATA as BASE_DATA
from tiny_runs import tiny_config

from tutorial_lib import concurrent_runs
from tutorial_lib.concurrent_runs import default_jobs, train_runs
from tutorial_lib.errors import RunFailedError
from tutorial_lib.runlog import read_csv

TINY_DATA = dataclasses.replace(BASE_DATA, generator_seed=4)


def tiny(method: str, **changes):
    return tiny_config(method, data=TINY_DATA, **changes)


def _pair(root):
    return {m: (tiny(m), root / m) for m in ("ce", "descriptors")}


def _results(run_dir):
    rows = read_csv(run_dir / "metrics.csv")
    test = json.loads((run_dir / "test.json").read_text())
    for row in rows:
        row.pop("seconds")
    return rows, test["test_dsc3d"], test["test_hd95"]


def test_two_processes_give_the_runs_trained_in_turn(tmp_path):
    """Two listed devices: two processes at once (the default jobs), each run on its device."""
    assert torch.get_num_threads() == 1  # the children get 1 thread too: same arithmetic
    at_once = train_runs(_pair(tmp_path / "at_once"), devices="cpu,cpu", progress=False)
    in_turn = train_runs(_pair(tmp_path / "in_turn"), device="cpu", jobs=1, progress=False)
    assert set(at_once) == set(in_turn) == {"ce", "descriptors"}
    assert all(s > 0 for s in (*at_once.values(), *in_turn.values()))
    for method in ("ce", "descriptors"):
        assert _results(tmp_path / "at_once" / method) == _results(tmp_path / "in_turn" / method)
        summary = json.loads((tmp_path / "at_once" / method / "summary.json").read_text())
        assert summary["device"] == "cpu"


def test_finished_runs_are_checked_here_not_in_new_processes(tmp_path, monkeypatch):
    """Only runs with epochs left start processes; the others go through `train` in this one."""
    runs = _pair(tmp_path)
    train_runs(runs, device="cpu", jobs=1, progress=False)
    started = []

    def at_once(to_train, *args):
        started.append(sorted(to_train))
        return dict.fromkeys(to_train, 0.0)

    monkeypatch.setattr(concurrent_runs, "_train_at_once", at_once)
    assert set(train_runs(runs, device="cpu", jobs=2, progress=False)) == {"ce", "descriptors"}
    assert started == []  # both finished: nothing spawned
    more = {m: (dataclasses.replace(c, epochs=c.epochs + 1), d) for m, (c, d) in runs.items()}
    one_left = {"ce": runs["ce"], "descriptors": more["descriptors"]}
    train_runs(one_left, device="cpu", jobs=2, progress=False)
    assert started == []  # one run to train: in this process
    assert len(read_csv(tmp_path / "descriptors" / "metrics.csv")) == more["descriptors"][0].epochs
    longer = {m: (dataclasses.replace(c, epochs=c.epochs + 2), d) for m, (c, d) in runs.items()}
    train_runs(longer, device="cpu", jobs=2, progress=False)  # two runs to train: two processes
    assert started == [["ce", "descriptors"]]


def test_finished_reads_the_summary(tmp_path):
    config = tiny("ce")
    assert not concurrent_runs._finished(config, tmp_path)  # no summary.json
    for summary, done in (
        ({"status": "done", "epochs_done": config.epochs}, True),
        ({"status": "done", "epochs_done": config.epochs - 1}, False),
        ({"status": "running", "epochs_done": config.epochs}, False),
        ([1, 2], False),
    ):
        (tmp_path / "summary.json").write_text(json.dumps(summary))
        assert concurrent_runs._finished(config, tmp_path) is done
    (tmp_path / "summary.json").write_text("{not json")
    assert not concurrent_runs._finished(config, tmp_path)  # damaged: `train` will say so


def test_an_error_in_a_run_is_raised_again_with_its_type(tmp_path):
    """A run refused inside its process (resume with another config) fails the call."""
    runs = _pair(tmp_path)
    train_runs({"ce": runs["ce"]}, device="cpu", jobs=1, progress=False)
    changed = {"ce": (tiny("ce", lr=0.1), tmp_path / "ce"), "descriptors": runs["descriptors"]}
    with pytest.raises(ValueError, match="config saved"):
        train_runs(changed, device="cpu", jobs=2, progress=False)


def test_a_process_that_dies_without_a_result_is_reported(monkeypatch):
    class Dead:
        exitcode = -9

    monkeypatch.setattr(concurrent_runs, "GRACE_SECONDS", 0.0)
    dead_since = {"ce": 0.0}
    with pytest.raises(RunFailedError, match="'ce'.*exit code -9.*resume"):
        concurrent_runs._check_alive({"ce": Dead()}, dead_since)


def test_default_jobs_and_bad_inputs(tmp_path):
    assert default_jobs(torch.device("cpu"), 2) == (2 if torch.get_num_threads() >= 2 else 1)
    assert default_jobs(torch.device("cuda"), 2) == 2
    assert default_jobs(torch.device("cuda"), 1) == 1
    assert default_jobs(torch.device("mps"), 2) == 1
    assert default_jobs(torch.device("cuda"), 8, n_devices=3) == 6  # two runs per GPU
    assert default_jobs(torch.device("cuda"), 5, n_devices=3) == 5
    assert default_jobs(torch.device("cpu"), 3, n_devices=3) == 3  # cpu,cpu,cpu: one per entry
    with pytest.raises(ValueError, match="positive number of runs"):
        train_runs(_pair(tmp_path), device="cpu", jobs=0, progress=False)
    with pytest.raises(ValueError, match="compile: expected"):
        train_runs(_pair(tmp_path), device="cpu", jobs=2, train_options={"compile": "fast"})
    with pytest.raises(ValueError, match="graph: expected compile=False"):
        train_runs(_pair(tmp_path), device="cpu", train_options={"compile": True, "graph": True})
    with pytest.raises(ValueError, match="devices: expected available devices.*'cuda:7'"):
        train_runs(_pair(tmp_path), devices="cpu,cuda:7", progress=False)
    with pytest.raises(ValueError, match="non-empty dict"):
        train_runs({}, device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"\(TrainConfig, out_dir\) pair"):
        train_runs({"ce": tiny("ce")}, device="cpu", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_pair_at_once(tmp_path):
    """The loop's CUDA path (bf16 autocast, channels_last, data on the GPU) in two processes."""
    seconds = train_runs(_pair(tmp_path), device="cuda", jobs=2, progress=False)
    for method in seconds:
        summary = json.loads((tmp_path / method / "summary.json").read_text())
        assert summary["status"] == "done" and summary["device"].startswith("cuda")
        assert (
            0.0
            <= json.loads((tmp_path / method / "test.json").read_text())["test_dsc3d"]["mean"]
            <= 1.0
        )
