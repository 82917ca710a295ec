"""The op counter of benchmarks/step_ops.py counts what it claims on a known tiny computation."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from step_ops import KERNEL_FREE_OPS, OpCounter, count_ops  # noqa: E402


def test_counts_kernels_views_and_syncs_of_a_tiny_computation():
    x = torch.arange(6.0)

    def tiny():
        y = (x.view(2, 3) * 2).sum(0)  # view (free), mul, sum
        return bool(y[0] > 0)  # select (free), gt, one read-back

    assert count_ops(tiny) == {"all": 6, "kernel": 4, "sync": 1}


def test_ops_on_host_tensors_launch_no_kernel():
    step = torch.tensor(0.0)
    counter = OpCounter(host_tensors=[step])
    with counter, counter.part("adam"):
        step += 1  # Adam's step counter, kept on the host
        float(step)
        (torch.ones(3) * 2).sum()
    assert counter.totals("adam") == {"all": 5, "kernel": 3, "sync": 0}


def test_exclusions_are_aten_or_profiler_ops():
    assert all(name.split(".")[0] in ("aten", "profiler") for name in KERNEL_FREE_OPS)
