"""usable_cpus: the CPUs a process may use, from its affinity and its container's CPU quota."""

from __future__ import annotations

import os

import pytest
import torch

from tutorial_lib.device import set_cpu_threads, usable_cpus


def _affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_a_cgroup_v2_quota_caps_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: 2 threads
    assert usable_cpus(tmp_path) == min(2, _affinity())
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no quota
    assert usable_cpus(tmp_path) == _affinity()


def test_a_cgroup_v1_quota_caps_the_cpus(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert usable_cpus(tmp_path) == _affinity()


def test_no_cgroup_or_an_unreadable_one_leaves_the_affinity(tmp_path):
    assert usable_cpus(tmp_path / "missing") == _affinity()
    (tmp_path / "cpu.max").write_text("garbage\n")
    assert usable_cpus(tmp_path) == _affinity()


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this OS")
def test_the_default_threads_follow_the_usable_cpus(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # a 1-CPU pod
        assert set_cpu_threads() == 1
    finally:
        torch.set_num_threads(before)
