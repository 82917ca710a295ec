"""Soak: a tiny run killed 50 times at random moments (SIGKILL, half of them inside a write of a
checkpoint or another run file) and resumed each time ends with the `metrics.csv` (but its
timings) and the `test.json` of an uninterrupted run."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from tiny_runs import tiny_config

from tutorial_lib.run_setup import resolve_data_root
from tutorial_lib.train import train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import same_runs  # noqa: E402

KILLS = 50
CONFIG = tiny_config("descriptors", epochs=4)


def _train(out: str, data_root: str, die_at_write: int, hook: str) -> None:
    """The body of a forked child: resume the run; SIGKILL itself at its `die_at_write`-th write
    (`hook` "fsync": the temporary file half-way, "replace": written but not yet in place)."""
    if die_at_write:
        real = getattr(os, hook)
        calls = {"n": 0}

        def dying(*args):
            calls["n"] += 1
            if calls["n"] == die_at_write:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args)

        setattr(os, hook, dying)
    train(CONFIG, data_root=data_root, out_dir=out, device="cpu", progress=False, resume=True)


def _run(
    out: Path, data_root: str, *, die_at_write: int = 0, hook: str = "replace", kill_after=None
):
    """One forked process training into `out`; returns its exit code (-9: killed)."""
    process = multiprocessing.get_context("fork").Process(
        target=_train, args=(str(out), data_root, die_at_write, hook)
    )
    process.start()
    process.join(kill_after)
    if process.exitcode is None:
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    return process.exitcode


@pytest.mark.skipif(os.name != "posix", reason="fork and SIGKILL: POSIX")
def test_fifty_kills_and_resumes_give_the_uninterrupted_run(tmp_path):
    data_root = str(resolve_data_root(CONFIG, None))
    start = time.perf_counter()
    assert _run(tmp_path / "whole", data_root) == 0
    whole_seconds = time.perf_counter() - start
    rng = random.Random(0)
    out, codes, stale_seen = tmp_path / "killed", [], 0
    for i in range(KILLS):
        stale_seen += any(".tmp" in p.name for p in out.rglob(".*"))
        if i % 2:  # a random moment
            codes.append(_run(out, data_root, kill_after=rng.uniform(0.0, whole_seconds)))
        else:  # inside the n-th atomic write of this process
            hook = rng.choice(("fsync", "replace"))
            codes.append(_run(out, data_root, die_at_write=rng.randint(1, 14), hook=hook))
    assert codes.count(-signal.SIGKILL) >= KILLS // 2, codes  # most of them really were killed
    assert stale_seen >= 5  # kills inside a write left temporaries behind...
    assert _run(out, data_root) == 0  # ...and a last resume ends the run
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name]  # ...and removed them
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    rows = same_runs.metrics_rows
    assert same_runs.first_difference(rows(whole), rows(killed)) is None
    assert same_runs.test_scores(whole) == same_runs.test_scores(killed) != {}
