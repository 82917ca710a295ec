"""Train several runs at the same time, each in its own process.

    seconds = train_runs({"ce": (cfg_ce, "out/ce"), "descriptors": (cfg_d, "out/d")}, jobs=2)
    seconds = train_runs(runs, devices="cuda:0,cuda:1")     # the runs spread over two GPUs

Why: an ENet training step on a GPU is launch-bound. The CPU spends most of the step issuing a
thousand small kernels, and the GPU idles about two thirds of the time. Two runs in two processes
each get their own CPU core and share the GPU, so the pair takes little longer than one run. On a
CPU, two runs with half the threads each also beat two runs one after the other with all the
threads: small convolutions do not scale well over threads.

Each run is `tutorial_lib.train.train(config, resume=True, progress=False)` in a process started
with "spawn" (safe with CUDA and in notebooks); the parent draws one progress bar per run from the
rows of its `metrics.csv`. A run that fails stops the others and its error is raised again in the
parent, with the same type (NonFiniteLossError, ValueError, ...). With `jobs=1` the runs train one
after the other in this process, exactly as `train` would. A run already trained to its epochs (its
`summary.json` says so) goes through `train` in this process too, which checks it and scores it
again: starting a process (and importing torch there) would cost more than that.

Devices (tutorial_lib.placement): `devices` lists where runs may train (default: every visible GPU
on CUDA, else the one device); each new process goes to the least busy entry, so runs spread
round-robin over the GPUs and a GPU that frees up takes the next run. Each run's `summary.json`
records its device.

Ctrl-C: the processes start with SIGINT ignored, so a Ctrl-C in a terminal (sent to every process
of the group) reaches only the parent, as a KeyboardInterrupt. The parent then stops each process
with SIGTERM, which a process turns into a KeyboardInterrupt of its own: its run stops between two
writes, its folder's lock is released, and it ends; the parent waits for them (no orphan process,
the queue's semaphores released by the parent's normal exit) and raises the KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tutorial_lib.config import TrainConfig
from tutorial_lib.device import usable_cpus, usable_memory_gib
from tutorial_lib.errors import RunFailedError
from tutorial_lib.placement import DeviceSlots, resolve_devices
from tutorial_lib.run_setup import check_graph, compile_mode, resolve_data_root
from tutorial_lib.runlog import read_json
from tutorial_lib.train import train

__all__ = ["train_runs", "default_jobs", "notebook_jobs"]

POLL_SECONDS = 0.5
GRACE_SECONDS = 5.0
STOP_SECONDS = 30.0  # how long a stopped run may take to end cleanly before it is killed


def default_jobs(device: torch.device, n_runs: int, n_devices: int = 1) -> int:
    """How many runs to train at once on `n_devices` listed devices of `device`'s type.

    CUDA: two per GPU (a launch-bound step leaves room for a second process). A CPU: two when it
    has 2+ threads, or one per listed entry when several are listed (`cpu,cpu`). Apple MPS: one
    per entry (one process owns the GPU well there). Never more than `n_runs`.
    """
    if device.type == "cuda":
        return min(2 * n_devices, n_runs)
    if device.type == "cpu" and n_devices == 1 and torch.get_num_threads() >= 2:
        return min(2, n_runs)
    return min(n_devices, n_runs)


# Two toy runs training at once from a notebook took 1.8 to 1.9 GiB for all the processes together
# (kernel, two training processes, test runner), three 2.0 GiB (benchmarks/notebook_times.py): a
# 2 GB Binder session would not hold them. Each run past the second asks for `EXTRA_RUN_GIB` more.
TWO_RUNS_MIN_GIB = 3.0
EXTRA_RUN_GIB = 0.5


def notebook_jobs(device: str | torch.device, n_runs: int = 2) -> int:
    """How many of a notebook's `n_runs` runs train at once.

    On a CPU: all of them when this process may use 2 CPUs and `TWO_RUNS_MIN_GIB` of memory, plus
    `EXTRA_RUN_GIB` per run past the second; else 2 when the memory holds two; else 1 (whatever
    its threads: the tests and Binder set one). Three one-thread runs on two CPUs share them and end
    together, sooner than two at once and then the third alone (07 on its own: 67 s against 90 s).
    Elsewhere `default_jobs`.
    """
    if not isinstance(n_runs, int) or isinstance(n_runs, bool) or n_runs < 1:
        raise ValueError(f"n_runs: expected a positive number of runs, got {n_runs!r}")
    device = torch.device(device)
    if device.type != "cpu":
        return default_jobs(device, n_runs)
    if usable_cpus() < 2 or n_runs == 1:
        return 1
    memory = usable_memory_gib()
    if memory >= TWO_RUNS_MIN_GIB + EXTRA_RUN_GIB * (n_runs - 2):
        return n_runs
    return 2 if memory >= TWO_RUNS_MIN_GIB else 1


def _metrics_rows(run_dir: Path) -> int:
    """Epochs written so far (rows of metrics.csv), 0 before the first epoch ends."""
    try:
        with open(run_dir / "metrics.csv", encoding="utf-8") as f:
            return max(0, sum(1 for _ in f) - 1)
    except FileNotFoundError:
        return 0


def _worker(
    name: str,
    config: TrainConfig,
    out_dir: str,
    data_root: str | None,
    device: str,
    threads: int,
    train_options: dict[str, Any],
    results: Any,
) -> None:
    """The body of one run's process: train, then put (name, "ok"|"error", value) on `results`."""
    signal.signal(signal.SIGTERM, _stop)  # the parent's terminate(): end like a Ctrl-C
    torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        train(
            config,
            data_root=data_root,
            out_dir=out_dir,
            device=device,
            resume=True,
            progress=False,
            **train_options,
        )
    except BaseException as error:  # sent back whole, raised again by the parent
        outcome = (name, "error", error)
    else:
        outcome = (name, "ok", time.perf_counter() - start)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the run is over: a stop now simply ends it
    try:
        results.put(outcome)
    except Exception:  # an error that cannot be pickled: send its text
        error = outcome[2]
        results.put((name, "error", RuntimeError(f"{type(error).__name__}: {error}")))


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ctrl-C ignored while the block runs (signals can be set from the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _start(process: Any) -> None:
    """Start `process` with SIGINT ignored (inherited through spawn): Ctrl-C reaches the parent only."""
    with _sigint_ignored():
        process.start()


@_sigint_ignored()
def _stop_all(processes: list[Any]) -> None:
    """Stop the processes still running (SIGTERM, see `_stop`) and wait for each to end; a second
    Ctrl-C meanwhile is ignored, so that no process is left behind."""
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    for process in processes:
        process.join(STOP_SECONDS)
        if process.exitcode is None:  # did not stop in time: kill it
            process.kill()
            process.join()


def _check_runs(runs: dict[str, tuple[TrainConfig, str | os.PathLike]]) -> None:
    if not isinstance(runs, dict) or not runs:
        raise ValueError(
            f"runs: expected a non-empty dict name -> (TrainConfig, out_dir), got {runs!r}"
        )
    for name, value in runs.items():
        if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], TrainConfig)):
            raise ValueError(
                f"runs[{name!r}]: expected a (TrainConfig, out_dir) pair, got {type(value).__name__}"
            )


def train_runs(
    runs: dict[str, tuple[TrainConfig, str | os.PathLike]],
    *,
    data_root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    devices: str | list[str] | None = None,
    jobs: int | None = None,
    progress: bool = True,
    train_options: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Train every `name -> (config, out_dir)` of `runs` (resuming finished or killed runs).

    `devices` ("cuda:0,cuda:1" or a list; None: every GPU on CUDA, else `device`) are where the
    runs train, one process per run (see the module docstring). `jobs` runs train at once (None:
    `default_jobs`); on the CPU the threads of this process are shared between them.
    `train_options` are passed on to `train` (e.g. {"compile": True}). Returns the wall seconds
    of each run. The toy datasets a config needs are generated here first, once, so the
    processes never race to write them.
    """
    _check_runs(runs)
    places = resolve_devices(devices, device)
    jobs = default_jobs(places[0], len(runs), len(places)) if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs: expected a positive number of runs at once, got {jobs!r}")
    train_options = dict(train_options or {})
    # a bad option fails here, not in a process
    check_graph(
        train_options.get("graph", False), compile_mode(train_options.get("compile", False))
    )
    roots = {name: str(resolve_data_root(cfg, data_root)) for name, (cfg, _) in runs.items()}
    to_train = {name: run for name, run in runs.items() if not _finished(*run)}
    if min(jobs, len(to_train)) <= 1:
        return _train_in_turn(runs, roots, places[0], progress, train_options)
    finished = {name: run for name, run in runs.items() if name not in to_train}
    seconds = _train_in_turn(finished, roots, places[0], progress, train_options)
    seconds.update(_train_at_once(to_train, roots, places, jobs, progress, train_options))
    return {name: seconds[name] for name in runs}


def _finished(config: TrainConfig, out_dir: str | os.PathLike) -> bool:
    """Has the run in `out_dir` done `config.epochs` epochs (so says its `summary.json`)?"""
    path = Path(out_dir) / "summary.json"
    try:
        summary = read_json(path) if path.is_file() else {}
    except ValueError:  # a damaged file: `train` reports it, in whichever process
        return False
    if not isinstance(summary, dict) or summary.get("status") != "done":
        return False
    done = summary.get("epochs_done")
    return isinstance(done, int) and done >= config.epochs


def _train_in_turn(runs, roots, device, progress, train_options) -> dict[str, float]:
    seconds = {}
    for name, (config, out_dir) in runs.items():
        start = time.perf_counter()
        train(
            config,
            data_root=roots[name],
            out_dir=out_dir,
            device=device,
            resume=True,
            progress=progress,
            **train_options,
        )
        seconds[name] = time.perf_counter() - start
    return seconds


def _train_at_once(runs, roots, places, jobs, progress, train_options) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    cpu_threads = max(1, torch.get_num_threads() // jobs)
    slots = DeviceSlots(places)
    waiting = list(runs)
    running: dict[str, Any] = {}
    slot_of: dict[str, int] = {}
    dead_since: dict[str, float] = {}
    seconds: dict[str, float] = {}
    bars = {  # a resumed run's bar starts at the epochs already done
        name: tqdm(
            total=cfg.epochs,
            initial=_metrics_rows(Path(out_dir)),
            desc=name,
            position=i,
            disable=not progress,
            unit="epoch",
            leave=True,
        )
        for i, (name, (cfg, out_dir)) in enumerate(runs.items())
    }
    try:
        while waiting or running:
            while waiting and len(running) < jobs:
                name = waiting.pop(0)
                config, out_dir = runs[name]
                slot_of[name] = slots.take()
                device = places[slot_of[name]]
                threads = cpu_threads if device.type == "cpu" else 1
                args = (name, config, str(out_dir), roots[name], str(device), threads)
                process = context.Process(
                    target=_worker, args=(*args, train_options, results), name=f"train-{name}"
                )
                _start(process)
                running[name] = process
            try:
                name, status, value = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                _check_alive(running, dead_since)
            else:
                running.pop(name).join()
                slots.give_back(slot_of[name])
                if status == "error":
                    raise value
                seconds[name] = value
            for name, bar in bars.items():
                done = _metrics_rows(Path(runs[name][1]))
                if done > bar.n:
                    bar.update(done - bar.n)
    finally:
        _stop_all(list(running.values()))  # a failure (or Ctrl-C) stops the runs still going
        for bar in bars.values():
            bar.close()
    return {name: seconds[name] for name in runs}


def _check_alive(running: dict[str, Any], dead_since: dict[str, float]) -> None:
    """A process that ended without sending a result (killed, crashed) fails the whole call.

    It gets `GRACE_SECONDS` after its end for a result still in the pipe to arrive.
    """
    for name, process in running.items():
        if process.exitcode is None:
            continue
        first_seen = dead_since.setdefault(name, time.monotonic())
        if time.monotonic() - first_seen > GRACE_SECONDS:
            raise RunFailedError(
                f"run {name!r}: its process ended with exit code {process.exitcode} and sent no "
                "result; its run directory keeps the last finished epoch (resume to continue)"
            )
