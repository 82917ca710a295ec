"""Are two `reproduce` (or `train`) output folders the same runs? A check for changes that must not
change the numbers (a refactor, a faster kernel that claims bit-identity).

    python benchmarks/same_runs.py runs/before runs/after

For every run folder found in both (a folder holding `metrics.csv`), compares `metrics.csv` row by
row (every column but the wall-clock `seconds`) and the numbers of `test.json` (its per-volume and
mean scores), exactly as written. Prints one line per run and the first difference; exits 1 if any
run differs or is missing on one side.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

TIMING_COLUMNS = {"seconds"}
TEST_KEYS = ("volumes", "dsc3d", "hd95", "best_epoch")  # the scores, not the bookkeeping


def run_folders(root: Path) -> dict[str, Path]:
    """Run folders below `root` (those with a metrics.csv), keyed by their path relative to it."""
    return {str(p.parent.relative_to(root)): p.parent for p in sorted(root.rglob("metrics.csv"))}


def metrics_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return [
            {k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)
        ]


def test_scores(run: Path) -> dict:
    path = run / "test.json"
    if not path.is_file():
        return {}
    result = json.loads(path.read_text())
    scores = {key: result.get(key) for key in TEST_KEYS}
    scores.update({k: v for k, v in result.items() if k.endswith(("_dsc3d", "_hd95", "_n_inf"))})
    return scores


def first_difference(a: list[dict], b: list[dict]) -> str | None:
    if len(a) != len(b):
        return f"{len(a)} rows against {len(b)}"
    for i, (row_a, row_b) in enumerate(zip(a, b, strict=True)):
        keys = sorted(set(row_a) | set(row_b))
        diff = [(k, row_a.get(k), row_b.get(k)) for k in keys if row_a.get(k) != row_b.get(k)]
        if diff:
            return f"row {i}: " + ", ".join(f"{k} {x} != {y}" for k, x, y in diff[:3])
    return None


def compare(before: Path, after: Path) -> bool:
    runs_a, runs_b = run_folders(before), run_folders(after)
    same = True
    for name in sorted(set(runs_a) | set(runs_b)):
        if name not in runs_a or name not in runs_b:
            print(f"{name}: only in {before if name in runs_a else after}")
            same = False
            continue
        rows_a, rows_b = metrics_rows(runs_a[name]), metrics_rows(runs_b[name])
        diff = first_difference(rows_a, rows_b)
        test_same = test_scores(runs_a[name]) == test_scores(runs_b[name])
        verdict = "same" if diff is None and test_same else "DIFFERENT"
        print(
            f"{name}: {verdict} (metrics.csv {len(rows_a)} rows"
            f"{'' if diff is None else ', ' + diff}; test.json {'same' if test_same else 'differs'})"
        )
        same &= diff is None and test_same
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    for root in (args.before, args.after):
        if not root.is_dir():
            parser.error(f"{root}: expected a folder of runs, got no such folder")
    same = compare(args.before, args.after)
    print("identical" if same else "different")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
