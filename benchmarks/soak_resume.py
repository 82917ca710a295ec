"""Soak: a tiny run killed again and again at random moments, and resumed, ends as the uninterrupted run.

    python benchmarks/soak_resume.py [--kills 50] [--seed 0]

Each of `--kills` processes (forked from this one, one CPU thread) resumes the run in one folder
and is killed with SIGKILL: every other one at a random moment of a whole run's duration, the
others inside one of their first 4 atomic file writes (the checkpoints of the epoch the run is
at, or its config.json, summary.json, test.json), either in `os.fsync` (the
temporary file half-way) or in `os.replace` (written, not yet in place). A last process finishes
the run. Its `metrics.csv` (but the timings) and `test.json` must equal those of an uninterrupted
run (benchmarks/same_runs.py), and no temporary file may be left. Prints the kills, how many
processes started with a killed write's temporary file in the folder, the seconds; exit 1 on a difference. tests/test_train_soak.py runs it
with fewer kills. POSIX only (fork, SIGKILL).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]
import same_runs  # noqa: E402
from tiny_runs import tiny_config  # noqa: E402

from tutorial_lib.run_setup import resolve_data_root  # noqa: E402
from tutorial_lib.train import train  # noqa: E402

CONFIG = tiny_config("descriptors", epochs=4)  # 32x32 toy cardiac, 5 patients, a 2-level U-Net


def _train(out: str, data_root: str, die_at_write: int, hook: str) -> None:
    """A forked child: resume the run; SIGKILL itself in its `die_at_write`-th `os.<hook>` call."""
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


def run_once(out: Path, data_root: str, *, die_at_write=0, hook="replace", kill_after=None) -> int:
    """One forked process training into `out`; its exit code (-9: killed)."""
    process = multiprocessing.get_context("fork").Process(
        target=_train, args=(str(out), data_root, die_at_write, hook)
    )
    process.start()
    process.join(kill_after)
    if process.exitcode is None:
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    return process.exitcode


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp" in p.name]


def soak(folder: Path, kills: int, seed: int = 0) -> dict:
    """Train `folder/whole` in one go and `folder/killed` through `kills` kills; compare."""
    torch.set_num_threads(1)
    data_root = str(resolve_data_root(CONFIG, None))
    start = time.perf_counter()
    assert run_once(folder / "whole", data_root) == 0, "the uninterrupted run failed"
    whole_seconds = time.perf_counter() - start
    rng, out, codes, found = random.Random(seed), folder / "killed", [], 0
    for i in range(kills):
        found += bool(_temporaries(out))  # an earlier kill was inside a write
        if i % 2:
            codes.append(run_once(out, data_root, kill_after=rng.uniform(0.0, whole_seconds)))
        else:
            hook = rng.choice(("fsync", "replace"))
            # a process writes at least 4 files (config.json, then summary.json, test.json and
            # summary.json again even when the run is over): each of these kills happens
            codes.append(run_once(out, data_root, die_at_write=rng.randint(1, 4), hook=hook))
    found += bool(_temporaries(out))
    last = run_once(out, data_root)
    rows = same_runs.metrics_rows
    difference = same_runs.first_difference(rows(folder / "whole"), rows(out))
    scores = same_runs.test_scores(folder / "whole"), same_runs.test_scores(out)
    return {
        "kills": kills,
        "killed": codes.count(-signal.SIGKILL),
        "starts_with_temporaries": found,
        "last_exit_code": last,
        "temporaries_at_end": len(_temporaries(out)),
        "metrics_difference": difference,
        "same_test_json": scores[0] == scores[1] != {},
        "seconds": time.perf_counter() - start,
        "whole_run_seconds": whole_seconds,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(Path(tmp), args.kills, args.seed)
    same = (
        result["metrics_difference"] is None
        and result["same_test_json"]
        and result["last_exit_code"] == 0
        and result["temporaries_at_end"] == 0
    )
    print(
        f"{result['kills']} kills ({result['killed']} SIGKILLed, {result['starts_with_temporaries']} "
        "starts found a killed write's temporary file), then a last resume: metrics.csv and test.json "
        f"{'identical to' if same else 'DIFFERENT from'} the uninterrupted run; "
        f"{result['seconds']:.0f} s (one uninterrupted run: {result['whole_run_seconds']:.1f} s)"
    )
    if not same:
        print(
            f"first difference in metrics.csv: {result['metrics_difference']}; test.json "
            f"{'same' if result['same_test_json'] else 'differs'}; last exit code "
            f"{result['last_exit_code']}, temporaries left {result['temporaries_at_end']}"
        )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
