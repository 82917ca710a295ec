"""Data-parallel training (torchrun, two gloo processes on the CPU) against one process.

Two ranks train the tiny CE and descriptors runs one epoch, then resume them to two; the result is
one process's two-epoch run on the same global batches, within rounding: the ranks sum their
gradients and BatchNorm statistics in another order. Measured (the runs of this test, 2 epochs,
2 ranks, the last batch split 3 + 2): final weights within 2.4e-7 of one process's, losses and
scores equal to their 6 printed digits; the tolerances asserted are 1e-5 on the weights and 1e-4
(relative) on the CSV's columns. The constraint violation columns average the ranks' means, so
they are left out (up to 6 % apart in the 3-epoch runs, `tutorial_lib.distributed`).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_runs import DDP_DATA, tiny_config

from tutorial_lib.checkpoint import load_checkpoint
from tutorial_lib.distributed import (
    rank_device,
    ranks_from_environment,
    share,
    share_rows,
    val_share,
)
from tutorial_lib.runlog import read_csv, read_json
from tutorial_lib.train import train

WORKER = Path(__file__).parent / "ddp_worker.py"
ROOT = Path(__file__).parent.parent
WEIGHTS_TOLERANCE = 1e-5
needs_gloo = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="needs torch.distributed with gloo",
)


def _torchrun(out: Path, epochs: int, *extra: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", str(WORKER), str(out), str(epochs), *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert json.loads((out / "writes-rank1.json").read_text()) == []  # only rank 0 wrote


@needs_gloo
def test_two_ranks_resumed_give_the_one_process_result(tmp_path):
    for method in ("ce", "descriptors"):  # first: the toy data is generated here, once
        single = tmp_path / "single" / method
        train(tiny_config(method, data=DDP_DATA), out_dir=single, device="cpu", progress=False)
    _torchrun(tmp_path / "ddp", 1)
    _torchrun(tmp_path / "ddp", 2, "resume")
    for method in ("ce", "descriptors"):
        single, ddp = tmp_path / "single" / method, tmp_path / "ddp" / method
        summary = read_json(ddp / "summary.json")
        assert summary["status"] == "done" and summary["epochs_done"] == 2 and summary["ranks"] == 2
        a = load_checkpoint(ddp / "checkpoints" / "last.pt")["model"]
        b = load_checkpoint(single / "checkpoints" / "last.pt")["model"]
        worst = max(float((a[k].double() - b[k].double()).abs().max()) for k in b)
        assert worst <= WEIGHTS_TOLERANCE, (method, worst)
        rows, expected = read_csv(ddp / "metrics.csv"), read_csv(single / "metrics.csv")
        for row, want in zip(rows, expected, strict=True):
            for column, value in want.items():
                if column == "seconds" or column.endswith("violation") or "frac_violated" in column:
                    continue  # timings; the violation means are averaged per rank (documented)
                assert math.isclose(row[column], value, rel_tol=1e-4, abs_tol=1e-5), column


def test_torchrun_variables_are_read_and_checked():
    assert ranks_from_environment({}) is None  # a single process
    ranks = ranks_from_environment({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert (ranks.rank, ranks.world_size, ranks.local_rank) == (1, 2, 1)
    one = ranks_from_environment({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"})
    assert (one.rank, one.world_size) == (0, 1)  # torchrun with one process: still its path
    with pytest.raises(ValueError, match="RANK: expected an integer >= 0 below 2.*got '2'"):
        ranks_from_environment({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})
    with pytest.raises(ValueError, match="WORLD_SIZE: expected an integer >= 0.*got 'two'"):
        ranks_from_environment({"WORLD_SIZE": "two"})


def test_each_rank_gets_its_device():
    ranks = ranks_from_environment({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert rank_device(None, "cuda:3") == "cuda:3"  # a single process keeps its device
    assert rank_device(ranks, "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device: expected cpu or cuda under torchrun.*'cuda:0'"):
        rank_device(ranks, "cuda:0")
    with pytest.raises(ValueError, match="device: expected cpu or cuda under torchrun.*'mps'"):
        rank_device(ranks, "mps")
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        assert rank_device(ranks, None) == torch.device("cuda", 1)
    elif not torch.cuda.is_available():
        assert rank_device(ranks, None) == torch.device("cpu")


def test_the_shares_of_a_global_batch_make_it_whole_with_the_right_loss_factors():
    x, y = torch.arange(5.0).view(5, 1, 1, 1), torch.arange(5).view(5, 1, 1)
    spacing = torch.arange(10.0).view(5, 2)
    parts, scales = [], {True: [], False: []}
    for rank in (0, 1):
        for summed in (True, False):
            ranks = ranks_from_environment(
                {"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0"}
            )
            ranks.summed_loss = summed
            xs, ys, ss = share(ranks, x, y, spacing)
            scales[summed].append(ranks.loss_scale)
        parts.append((xs, ys, ss))
    assert torch.equal(torch.cat([p[0] for p in parts]), x)  # contiguous shares, in order
    assert torch.equal(torch.cat([p[1] for p in parts]), y)
    assert torch.equal(torch.cat([p[2] for p in parts]), spacing)
    assert [len(p[0]) for p in parts] == [3, 2]
    # DDP averages the two gradients: a summed loss counts whole on each rank, a mean by its share
    assert scales[True] == [2.0, 2.0]
    assert scales[False] == pytest.approx([2 * 3 / 5, 2 * 2 / 5])
    assert share(None, x, y, None) == (x, y, None)
    two = [
        ranks_from_environment({"WORLD_SIZE": "2", "RANK": str(r), "LOCAL_RANK": "0"})
        for r in (0, 1)
    ]
    assert [val_share(r, 5) for r in two] == [slice(0, 3), slice(3, 5)]
    assert [val_share(r, 1) for r in two] == [slice(0, 1), slice(0, 0)]
    assert val_share(None, 5) == slice(None)


def test_the_noise_rows_are_cut_as_the_batch_is():
    x, y = torch.arange(5.0).view(5, 1, 1, 1), torch.arange(5).view(5, 1, 1)
    rows = torch.arange(15.0).view(5, 3)
    for rank in (0, 1):
        ranks = ranks_from_environment({"WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0"})
        xs, _, _ = share(ranks, x, y, None)
        assert torch.equal(share_rows(ranks, rows, 5), rows[xs.view(-1).long()])
    assert share_rows(None, rows, 5) is rows
