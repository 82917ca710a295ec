"""usable_cpus and usable_memory_gib: what a process may use, from its affinity and its container's
limits; notebook_jobs, which follows them."""

from __future__ import annotations

import os

import pytest
import torch

from tutorial_lib import concurrent_runs
from tutorial_lib.device import set_cpu_threads, usable_cpus, usable_memory_gib


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


def test_a_cgroup_memory_limit_caps_the_memory(tmp_path):
    machine = usable_memory_gib(tmp_path / "missing")
    assert 0 < machine < float("inf")
    (tmp_path / "memory.max").write_text(f"{2 * 2**30}\n")  # a 2 GiB session
    assert usable_memory_gib(tmp_path) == min(2.0, machine)
    (tmp_path / "memory.max").write_text("max\n")
    assert usable_memory_gib(tmp_path) == machine


def test_a_cgroup_v1_memory_limit_and_its_no_limit_value(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{2**30}\n")
    assert usable_memory_gib(tmp_path) == min(1.0, usable_memory_gib(tmp_path / "missing"))
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert usable_memory_gib(tmp_path) == usable_memory_gib(tmp_path / "missing")


@pytest.mark.parametrize(
    ("cpus", "gib", "jobs"), [(2, 24.0, 2), (8, 3.0, 2), (1, 24.0, 1), (2, 2.0, 1), (16, 2.9, 1)]
)
def test_a_notebook_trains_two_runs_at_once_only_with_two_cpus_and_the_memory(
    monkeypatch, cpus, gib, jobs
):
    monkeypatch.setattr(concurrent_runs, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(concurrent_runs, "usable_memory_gib", lambda: gib)
    assert concurrent_runs.notebook_jobs("cpu") == jobs
    assert concurrent_runs.notebook_jobs(torch.device("cpu")) == jobs


@pytest.mark.parametrize(
    ("cpus", "gib", "n_runs", "jobs"),
    [
        (2, 24.0, 3, 3),
        (2, 3.5, 3, 3),
        (2, 3.4, 3, 2),
        (2, 2.9, 3, 1),
        (1, 24.0, 3, 1),
        (2, 24.0, 1, 1),
    ],
)
def test_a_notebook_trains_all_its_runs_at_once_when_the_memory_holds_them(
    monkeypatch, cpus, gib, n_runs, jobs
):
    monkeypatch.setattr(concurrent_runs, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(concurrent_runs, "usable_memory_gib", lambda: gib)
    assert concurrent_runs.notebook_jobs("cpu", n_runs) == jobs


@pytest.mark.parametrize("n_runs", [0, -1, 2.0, True, "3"])
def test_notebook_jobs_refuses_a_count_of_runs_that_is_not_a_positive_int(n_runs):
    with pytest.raises(ValueError, match=r"^n_runs: expected a positive number of runs, got "):
        concurrent_runs.notebook_jobs("cpu", n_runs)
