"""How long does each notebook take, from cold caches, under nbval? And where does its time go?

    python benchmarks/notebook_times.py                      # every notebook, each alone, fast mode
    python benchmarks/notebook_times.py --in-order           # one shared cold cache, 00 to 08
    python benchmarks/notebook_times.py --one-session        # the same in one pytest process
    python benchmarks/notebook_times.py notebooks/06_promise12.ipynb --cells 8
    python benchmarks/notebook_times.py --full notebooks/04_training_with_descriptors.ipynb
    python benchmarks/notebook_times.py --full-estimate      # full-mode training, from 3 epochs

Each notebook runs as the tests run it (`python -m pytest NOTEBOOK`, with the project's nbval
flags from pyproject.toml), in a process of its own, with `TUTORIAL_FAST=1` (unless `--full`), one
thread (`OMP_NUM_THREADS=1`), and empty temporary folders for `TUTORIAL_RUNS` (training runs) and
`TUTORIAL_DATA_DIR` (toy datasets, downloads): nothing is reused from an earlier run. With
`--in-order` the notebooks share one pair of cold folders, as a learner's would (05 and 07 reuse
04's runs); otherwise each gets its own. `--one-session` runs them all, in order and with one pair
of cold folders, in a single pytest process (`python -m pytest notebooks/`, as a test run or a
teacher checking the course would), so pytest's own start (about 6 s: torch, nbformat) is paid once;
each notebook's seconds then come from pytest's JUnit report (its cells, its kernel's start
included). `TUTORIAL_ACDC` and `TUTORIAL_PROMISE12` are unset, so 05
and 06 run on their toy stand-ins.

Per notebook it prints the wall-clock seconds, the CPU seconds of all its processes (user and
system: the figure that other processes' load inflates least), the exit status and two peaks of
resident memory:
that of the largest single process (the Jupyter kernel, or a training process the kernel started)
and that of all the processes of the run summed (pytest, the kernel, training processes; sampled
every 0.25 s, Linux only). All of it goes to `--json` (written to a temporary file, then moved). `--cells N` runs each notebook once more, outside nbval, with nbclient
and prints its N slowest cells. `--full-estimate` runs no notebook: it trains each toy preset that
the notebooks train for 3 epochs (one thread, cold), takes the median seconds of the epochs after
the first, and multiplies by the preset's full-mode epochs: each notebook's training time in full
mode, with its runs in turn, two at once, and all at once sharing two CPUs (as the notebooks train
them on a 2-CPU machine). Times depend on the machine
and on its load: run it on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's tutorial_lib, for --full-estimate
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))


def cold_env(runs: Path, data: Path, *, fast: bool) -> dict[str, str]:
    """The environment of one measured run: cold folders, fast mode, one thread, no real data."""
    env = dict(os.environ)
    for name in ("TUTORIAL_ACDC", "TUTORIAL_PROMISE12"):
        env.pop(name, None)
    env.update(
        TUTORIAL_FAST="1" if fast else "0",
        TUTORIAL_RUNS=str(runs),
        TUTORIAL_DATA_DIR=str(data),
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


def tree_rss_kib(root_pid: int) -> int:
    """Resident memory (KiB) of `root_pid` and all its descendants now, summed (Linux /proc)."""
    parents, rss = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0"))
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0])
    tree, grew = {root_pid}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(rss.get(pid, 0) for pid in tree)


def run_nbval(
    notebooks: list[Path], env: dict[str, str], timeout: float, extra: tuple[str, ...] = ()
) -> dict:
    """Run `notebooks` under nbval in one pytest process: wall seconds, exit status, peak memory."""
    # the project's nbval flags (pyproject.toml), with a cell timeout as long as the notebook's
    command = [sys.executable, "-m", "pytest", "-q", f"--nbval-cell-timeout={timeout:.0f}", *extra]
    command += [str(notebook) for notebook in notebooks]
    peak_tree = 0
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        while True:  # os.wait4 gives this child's resource usage, its reaped descendants included
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            if sys.platform.startswith("linux"):
                peak_tree = max(peak_tree, tree_rss_kib(process.pid))
            time.sleep(0.25)
        seconds = time.perf_counter() - start
        log.seek(0)
        output = log.read()
    returncode = os.waitstatus_to_exitcode(status)
    timed_out = seconds > timeout
    return {
        "seconds": None if timed_out else round(seconds, 1),
        # CPU time of the whole tree (user + system): what the load of other processes inflates least
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "returncode": "timeout" if timed_out else returncode,
        # ru_maxrss (KiB on Linux): the largest resident size of one process of the tree
        "peak_process_mib": round(usage.ru_maxrss / 1024),
        # the processes of the tree summed, sampled every 0.25 s (pytest, kernel, training runs)
        "peak_tree_mib": round(peak_tree / 1024) if peak_tree else None,
        "tail": output[-3000:] if returncode else output.strip().splitlines()[-1:],
    }


def slowest_cells(notebook: Path, env: dict[str, str], n: int) -> list[dict]:
    """Execute `notebook` with nbclient in `env`; its `n` slowest code cells (seconds, first line)."""
    script = f"""
import json, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read({str(notebook)!r}, as_version=4)
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={{"metadata": {{"path": {str(notebook.parent)!r}}}}})
times = []
with client.setup_kernel():
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        start = time.perf_counter()
        client.execute_cell(cell, i)
        lines = [l for l in cell.source.splitlines() if l.strip() and not l.startswith("#")]
        times.append({{"cell": i, "seconds": round(time.perf_counter() - start, 2), "first_line": (lines or [""])[0][:70]}})
json.dump(times, sys.stdout)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(f"{notebook.name}: nbclient failed:\n{result.stderr[-2000:]}")
    cells = json.loads(result.stdout)
    return sorted(cells, key=lambda c: -c["seconds"])[:n]


# The runs each notebook trains in full mode (TUTORIAL_FAST=0), as presets; 07's priors run has the
# network, data and epochs of the precise run (its terms differ), so it is timed as that preset.
FULL_MODE_RUNS = {
    "04_training_with_descriptors": ("toy-cardiac-ce", "toy-cardiac-descriptors"),
    "05_acdc": ("toy-cardiac-ce", "toy-cardiac-descriptors"),  # 04's runs: reused after 04
    "06_promise12": ("toy-prostate-ce", "toy-prostate-descriptors"),
    "07_anatomical_priors": (
        "toy-cardiac-ce",
        "toy-cardiac-descriptors",
        "toy-cardiac-descriptors",
    ),
}


def epoch_seconds(preset: str, scratch: Path, epochs: int = 3) -> float:
    """Median seconds of the epochs after the first of a short cold run of `preset`, one thread."""
    import dataclasses
    import statistics

    os.environ.update(TUTORIAL_DATA_DIR=str(scratch / "data"), OMP_NUM_THREADS="1")
    import torch

    from tutorial_lib.presets import get_preset
    from tutorial_lib.runlog import read_metrics
    from tutorial_lib.train import train

    torch.set_num_threads(1)
    config = dataclasses.replace(get_preset(preset), epochs=epochs)
    out = scratch / "runs" / preset
    train(config, out_dir=out, device="cpu", progress=False)
    return statistics.median(float(s) for s in read_metrics(out)["seconds"][1:])


def at_once(durations: list[float], jobs: int = 2) -> float:
    """Wall time of runs started in order, `jobs` at a time, each as soon as a slot is free."""
    slots = [0.0] * jobs
    for d in durations:
        slots[slots.index(min(slots))] += d
    return max(slots)


def full_mode_estimate(scratch: Path) -> dict:
    """Training seconds of each notebook in full mode: seconds per epoch x the presets' epochs."""
    from tutorial_lib.presets import get_preset

    presets = sorted({p for runs in FULL_MODE_RUNS.values() for p in runs})
    per_epoch = {p: round(epoch_seconds(p, scratch), 2) for p in presets}
    estimate = {}
    for notebook, runs in FULL_MODE_RUNS.items():
        durations = [per_epoch[p] * get_preset(p).epochs for p in runs]
        estimate[notebook] = {
            "in_turn": round(sum(durations)),
            "two_at_once": round(at_once(durations)),
            # every run at once on two CPUs (notebook_jobs with the memory): they share the CPUs,
            # so the last ends after the total work / 2, or the longest run if that is longer
            "all_at_once_two_cpus": round(max(sum(durations) / 2, max(durations))),
        }
    for p in presets:
        print(f"{p:28s} {per_epoch[p]:6.2f} s per epoch x {get_preset(p).epochs} epochs")
    for notebook, row in estimate.items():
        print(
            f"{notebook:32s} training: {row['in_turn']} s in turn, {row['two_at_once']} s two at "
            f"once, {row['all_at_once_two_cpus']} s all at once on two CPUs"
        )
    return {"seconds_per_epoch": per_epoch, "training_seconds": estimate}


def print_row(label: str, row: dict) -> None:
    """One line of `run_nbval`'s figures; its output's tail on stderr when it failed."""
    print(
        f"{label:32s} {row['seconds']!s:>7s} s ({row['cpu_seconds']} s CPU)  "
        f"exit {row['returncode']}  "
        f"peak {row['peak_process_mib']} MiB (one process), {row['peak_tree_mib']} MiB (all)",
        flush=True,
    )
    if row["returncode"] != 0:
        print(row["tail"], file=sys.stderr)


def seconds_per_notebook(junit_xml: Path) -> dict[str, float]:
    """Seconds of each notebook in a pytest JUnit report: its cells' times (setup included) summed.

    nbval names each cell's test `Cell N` with the notebook as its class name; the kernel starts in
    the setup of a notebook's first cell, so its start is counted in that notebook's time.
    """
    import xml.etree.ElementTree as ET

    seconds: dict[str, float] = {}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        stem = case.get("classname", "").removesuffix(".ipynb").rsplit(".", 1)[-1]
        seconds[stem] = seconds.get(stem, 0.0) + float(case.get("time", 0.0))
    return {stem: round(value, 1) for stem, value in seconds.items()}


def one_session(notebooks: list[Path], scratch: Path, *, fast: bool, timeout: float) -> dict:
    """All `notebooks` in one pytest process, in order, sharing one pair of cold folders."""
    env = cold_env(scratch / "runs", scratch / "data", fast=fast)
    junit = scratch / "junit.xml"
    row = run_nbval(notebooks, env, timeout * len(notebooks), (f"--junitxml={junit}",))
    row["notebooks"] = seconds_per_notebook(junit) if junit.is_file() else {}
    for stem, seconds in row["notebooks"].items():
        print(f"{stem:32s} {seconds:7.1f} s")
    print_row("total (one pytest session)", row)
    return row


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` to a temporary file beside `path`, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(payload, f, indent=2)
    Path(f.name).replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--in-order", action="store_true", help="one shared cold cache")
    parser.add_argument(
        "--one-session",
        action="store_true",
        help="one pytest process for all, in order, one shared cold cache (as `pytest notebooks/`)",
    )
    parser.add_argument("--full", action="store_true", help="TUTORIAL_FAST=0 (long)")
    parser.add_argument("--cells", type=int, default=0, help="also list the N slowest cells")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per notebook")
    parser.add_argument("--json", type=Path, default=Path("notebook_times.json"))
    parser.add_argument(
        "--full-estimate",
        action="store_true",
        help="instead: time 3 epochs of each toy preset, estimate full-mode training",
    )
    args = parser.parse_args(argv)
    notebooks = [p.resolve() for p in args.notebooks] or NOTEBOOKS
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            parser.error(f"notebooks: expected existing .ipynb files, got {str(path)!r}")

    if args.full_estimate:
        with tempfile.TemporaryDirectory(prefix="notebook-times-") as scratch:
            write_json(args.json, {"cpus": os.cpu_count(), **full_mode_estimate(Path(scratch))})
        print(f"written: {args.json}")
        return 0
    if args.one_session:
        with tempfile.TemporaryDirectory(prefix="notebook-times-") as scratch:
            row = one_session(notebooks, Path(scratch), fast=not args.full, timeout=args.timeout)
        row.pop("tail")
        payload = {"mode": "full" if args.full else "fast", "caches": "shared, one session"}
        write_json(args.json, {**payload, "cpus": os.cpu_count(), "session": row})
        print(f"written: {args.json}")
        return 0 if row["returncode"] == 0 else 1
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="notebook-times-") as scratch:
        for i, notebook in enumerate(notebooks):
            cache = Path(scratch) / ("shared" if args.in_order else f"{i:02d}")
            env = cold_env(cache / "runs", cache / "data", fast=not args.full)
            rows[notebook.stem] = run_nbval([notebook], env, args.timeout)
            row = rows[notebook.stem]
            print_row(notebook.stem, row)
            if args.cells:
                profile_cache = Path(scratch) / f"profile-{i:02d}"
                profile_env = cold_env(
                    profile_cache / "runs", profile_cache / "data", fast=not args.full
                )
                row["slowest_cells"] = slowest_cells(notebook, profile_env, args.cells)
                for cell in row["slowest_cells"]:
                    print(
                        f"    cell {cell['cell']:3d} {cell['seconds']:7.2f} s  {cell['first_line']}"
                    )
    timed = [r["seconds"] for r in rows.values() if r["seconds"] is not None]
    total = round(sum(timed), 1)
    print(f"{'total':32s} {total:>7} s  ({len(timed)} of {len(rows)} notebooks timed)")
    write_json(
        args.json,
        {
            "mode": "full" if args.full else "fast",
            "caches": "shared, in order" if args.in_order else "each notebook alone",
            "cpus": os.cpu_count(),
            "machine": platform.platform(),
            "load_average_after": os.getloadavg(),
            "notebooks": {k: {x: v for x, v in r.items() if x != "tail"} for k, r in rows.items()},
            "total_seconds": total,
        },
    )
    print(f"written: {args.json}")
    return 0 if all(r["returncode"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
