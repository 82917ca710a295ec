"""Mutation testing of the core: does each module's own test file catch small plausible bugs?

    python benchmarks/mutation.py                  # every module below, smallest first
    python benchmarks/mutation.py penalties bounds # some of them
    python benchmarks/mutation.py --survivors      # also print the diff of each surviving mutant

Needs the optional extra ``mutation`` (``pip install -e .[mutation]``): mutmut 3. Not run by CI
(the whole run takes tens of minutes on 2 cores).

Why mutmut: it mutates every function once into a copy of the package and switches the mutants on
one at a time by name, in processes forked from one where torch and the tests are already imported,
and it runs for each mutant only the tests that call the mutated function. A tool that restarts the
test command for every mutant (cosmic-ray) pays the torch import and the whole test file (5 to 20 s)
for each of the ~3,000 mutants: hours on 2 cores, where mutmut takes about 15 minutes.

For each module the script copies ``tutorial_lib/``, ``tests/``, ``conftest.py`` and
``pyproject.toml`` into a scratch folder (``--work``), adds to ``[tool.mutmut]`` the one module to
mutate and its own test files (``MODULES`` below), and runs ``mutmut run`` there with fail-fast
tests and a per-test timeout (the shared settings are in ``pyproject.toml``). It prints one line per
module: mutants, killed (a failing test or a timeout), survived, equivalent, device-only, and
the score ``killed / (mutants - equivalent - device-only)``. Equivalent mutants (no test can tell
them from the original) and device-only ones (a dropped ``device=``, which no CPU run can see)
are listed, each with why, in ``benchmarks/mutation_equivalent.md``; they are named as mutmut
names them (``tutorial_lib.penalties.x_log_barrier_extension__mutmut_7``), which
``mutmut show NAME`` in the scratch folder turns into a diff.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT_FILE = ROOT / "benchmarks" / "mutation_equivalent.md"

# module name -> (files to mutate, the test files that are that module's own), smallest first
MODULES: dict[str, tuple[list[str], list[str]]] = {
    "splits": (["tutorial_lib/data/splits.py"], ["tests/test_splits.py"]),
    "penalties": (
        ["tutorial_lib/penalties.py"],
        ["tests/test_penalties.py", "tests/test_core_edges.py"],
    ),
    "augment": (["tutorial_lib/data/augment.py"], ["tests/test_data_augment.py"]),
    "laplacian": (["tutorial_lib/laplacian.py"], ["tests/test_descriptors.py"]),
    "bounds": (["tutorial_lib/bounds.py"], ["tests/test_bounds.py"]),
    "metrics": (["tutorial_lib/metrics.py"], ["tests/test_metrics.py"]),
    "losses": (
        ["tutorial_lib/losses.py", "tutorial_lib/loss_tables.py"],
        ["tests/test_losses.py", "tests/test_core_edges.py", "tests/test_weak_labels.py"],
    ),
    "descriptors": (
        [
            "tutorial_lib/geometry.py",
            "tutorial_lib/descriptor_registry.py",
            "tutorial_lib/descriptors.py",
        ],
        ["tests/test_descriptors.py", "tests/test_core_edges.py"],
    ),
}
COPIED = ("tutorial_lib", "tests", "conftest.py", "pyproject.toml")
KILLED = {"killed", "timeout", "segfault"}


def excluded_mutants() -> dict[str, str]:
    """Mutant name -> its kind ("equivalent" or "device"), from mutation_equivalent.md: each name in
    backquotes at the start of a list line, under the heading ``## Equivalent`` or
    ``## Device placement``."""
    if not EQUIVALENT_FILE.is_file():
        return {}
    kinds, kind = {}, None
    for line in EQUIVALENT_FILE.read_text().splitlines():
        if line.startswith("## "):
            kind = "device" if "device" in line.lower() else "equivalent"
        found = re.match(r"^- `(tutorial_lib\.[\w.ǁ]+__mutmut_\d+)`", line)
        if found and kind:
            kinds[found.group(1)] = kind
    return kinds


def prepare(scratch: Path, mutate: list[str], tests: list[str]) -> None:
    """A fresh copy of the project in ``scratch`` whose mutmut settings name one module."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, scratch / name)
    text = (scratch / "pyproject.toml").read_text()
    if "[tool.mutmut]\n" not in text:
        sys.exit("pyproject.toml: expected a [tool.mutmut] table, got none")
    extra = f"only_mutate = {json.dumps(mutate)}\npytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
    (scratch / "pyproject.toml").write_text(
        text.replace("[tool.mutmut]\n", "[tool.mutmut]\n" + extra)
    )


def mutmut(scratch: Path, *args: str, capture: bool = False) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)  # the scratch copy, not the worktree, must be imported
    done = subprocess.run(
        [sys.executable, "-m", "mutmut", *args],
        cwd=scratch,
        env=env,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
        check=False,
    )
    return done.stdout or ""


def statuses(scratch: Path) -> dict[str, str]:
    """Mutant name -> status ("killed", "survived", "timeout", "no tests", ...)."""
    out = mutmut(scratch, "results", "--all", "true", capture=True)
    found = re.findall(r"^\s+(tutorial_lib\.\S+__mutmut_\d+): (.+)$", out, re.MULTILINE)
    return {name: status.strip() for name, status in found}


def run_module(
    name: str, work: Path, jobs: int, show: bool, rerun: bool = True
) -> tuple[int, int, int, int]:
    mutate, tests = MODULES[name]
    scratch = work / name
    start = time.perf_counter()
    if rerun:
        prepare(scratch, mutate, tests)
        log = mutmut(scratch, "run", "--max-children", str(jobs), capture=True)
        (work / f"{name}.log").write_text(log)
    found = statuses(scratch)
    if not found:
        print(f"{name}: no results (see {work / name}.log)")
        return 0, 0, 0, 0
    kinds = excluded_mutants()
    killed = sum(status in KILLED for status in found.values())
    alive = sorted(k for k, status in found.items() if status not in KILLED)
    equivalent = [k for k in alive if kinds.get(k) == "equivalent"]
    device = [k for k in alive if kinds.get(k) == "device"]
    survivors = [k for k in alive if k not in kinds]
    counted = len(found) - len(equivalent) - len(device)
    score = 100 * killed / counted if counted else 100.0
    print(
        f"{name:12s} mutants {len(found):4d}  killed {killed:4d}  survived {len(survivors):3d}  "
        f"equivalent {len(equivalent):3d}  device-only {len(device):3d}  score {score:5.1f} %  "
        f"({time.perf_counter() - start:.0f} s)",
        flush=True,
    )
    stale = sorted(k for k in kinds if k in found and found[k] in KILLED)
    for key in stale:
        print(f"    listed in {EQUIVALENT_FILE.name} but killed: {key}")
    for key in survivors:
        print(f"    {found[key]:10s} {key}")
        if show:
            print(mutmut(scratch, "show", key, capture=True))
    return len(found), killed, len(survivors), len(equivalent) + len(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help=f"among {', '.join(MODULES)} (default: all)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tutorial_lib-mutation"))
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument(
        "--report", action="store_true", help="score the results already in --work, run nothing"
    )
    args = parser.parse_args()
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"modules: expected names among {list(MODULES)}, got {unknown}")
    for name in args.modules or list(MODULES):
        run_module(name, args.work, args.jobs, args.survivors, rerun=not args.report)


if __name__ == "__main__":
    main()
