"""Choosing where tensors live: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch


def get_device(preferred: str | None = None) -> torch.device:
    """Return `preferred` if given (e.g. "cpu", "cuda:1"), else the best available device.

    The environment variable TUTORIAL_DEVICE overrides the automatic choice. Taught in notebook 00.
    """
    choice = preferred or os.environ.get("TUTORIAL_DEVICE")
    if choice:
        try:
            device = torch.device(choice)
        except RuntimeError:  # "tpu", "cuda:x", ...: torch's own message lists its device types
            device = None
        if device is None or device.type not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device: expected cpu, cuda, cuda:N or mps, got {choice!r}")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device: expected CUDA to be available, got {choice!r} on a machine without CUDA"
            )
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(
                f"device: expected a CUDA index below {torch.cuda.device_count()}, got {choice!r}"
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(
                "device: expected Apple MPS to be available, "
                f"got {choice!r} on a machine without MPS"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _cgroup_cpu_limit(cgroup_root: Path) -> int | None:
    """The CPUs a cgroup's quota allows (v2 `cpu.max`, or v1 `cpu.cfs_quota_us`), None if unlimited."""
    try:
        v2 = cgroup_root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
        else:
            v1 = cgroup_root / "cpu"
            quota = (v1 / "cpu.cfs_quota_us").read_text().strip()
            period = (v1 / "cpu.cfs_period_us").read_text().strip()
        if quota in ("max", "-1") or int(period) <= 0:
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        return None


def usable_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: its CPU affinity, capped by a container's CPU quota.

    On a JupyterHub pod with 1 CPU on a 64-core node `os.cpu_count()` says 64; this says 1.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpus = cpus or os.cpu_count() or 1
    limit = _cgroup_cpu_limit(Path(cgroup_root))
    return min(cpus, limit) if limit else cpus


def _cgroup_memory_limit(cgroup_root: Path) -> int | None:
    """Bytes a cgroup allows (v2 `memory.max`, or v1 `memory/memory.limit_in_bytes`), None if none."""
    for path in (cgroup_root / "memory.max", cgroup_root / "memory" / "memory.limit_in_bytes"):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if not text.isdigit():  # "max": no limit
            return None
        value = int(text)
        return value if 0 < value < 2**60 else None  # v1 writes "no limit" as a huge number
    return None


def usable_memory_gib(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> float:
    """The memory this process may use, in GiB: the machine's, capped by a container's limit.

    A Binder session on a machine of hundreds of GB has about 2 GB; this says so.
    """
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows): the cgroup alone
        total = None
    known = [v for v in (total, _cgroup_memory_limit(Path(cgroup_root))) if v]
    return min(known) / 2**30 if known else math.inf


def set_cpu_threads(n: int | None = None) -> int:
    """Use `n` CPU threads and return the number set.

    Default: OMP_NUM_THREADS when it is set (Binder and the tests set it), else the CPUs this
    process may use (`usable_cpus`: affinity and container quota), at most 8. Oversubscribed
    threads can make small convolutions 100x slower on small machines. Taught in notebook 00.
    """
    if n is None:
        from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
        n = int(from_env) if from_env.isdigit() and int(from_env) > 0 else min(8, usable_cpus())
    if n < 1:
        raise ValueError(f"threads: expected a positive number of CPU threads, got {n}")
    torch.set_num_threads(n)
    return n


def describe_device(device: torch.device) -> str:
    """A name for reports: the GPU's model on CUDA, else the device type and the CPU threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"
