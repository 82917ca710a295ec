"""The paper at scale on the toy stand-in: CE against descriptors with the ACDC presets, one size.

    python benchmarks/paper_at_scale.py --size 256 --out paper-at-scale/256px [--device cuda] [--graph]
    python benchmarks/paper_at_scale.py --table paper-at-scale/*px     # the ratios of finished sizes
    python benchmarks/paper_at_scale.py --size 32 --tiny --device cpu --out /tmp/p  # does it run?

Each size is `reproduce("toy-cardiac-paper", size=N)`: the `acdc-ce` and `acdc-descriptors`
presets, every setting the paper's (ENet, batch 8, Adam 5e-4, the authors' LR rule and
augmentation, 200 epochs, size ±10 %, centroid and spread ±20 px, length margin 10, t = 1 x 1.1
per epoch), on a toy cardiac set of ACDC's size (200 volumes, about 1,900 slices, split 140 / 20
/ 40 volumes) generated at N x N pixels. The margins stay ±20 px at every size: the question is
whether the paper's settings work once the image is as large as ACDC's (on the 64 x 64 toy data
they do not, `tutorial_lib/presets.py`). `--fast`: 20 epochs. `--tiny`: 5 volumes and 1 epoch,
only to check that the script runs. The table gives, per size, each run's mean test 3-D DSC (or,
for a run still going, its epochs done and best validation DSC), the descriptors / CE ratio,
and the minutes the slower run takes for all its epochs at its pace after the first epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def _shrink_for_a_check() -> None:
    """5 volumes, 1 epoch (`--tiny`): the presets `reproduce` reads, in this process only."""
    from tutorial_lib import presets

    for method in ("ce", "descriptors"):
        name = f"toy-cardiac-paper-{method}"
        cfg = presets.PRESETS[name]
        data = dataclasses.replace(cfg.data, n_patients=5)
        presets.PRESETS[name] = dataclasses.replace(cfg, data=data, epochs=1)


def _run_state(run_dir: Path) -> dict:
    """A run's epochs so far, best validation DSC, seconds per epoch (the median after the
    first, which compiles and captures) and the minutes all its epochs take at that pace; its
    test mean 3-D DSC once done."""
    from tutorial_lib.runlog import read_csv

    rows = read_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
    config = run_dir / "config.json"  # absent when stopped before the run started
    epochs = json.loads(config.read_text())["epochs"] if config.is_file() else None
    steady = sorted(row["seconds"] for row in rows[1:] or rows)
    pace = steady[len(steady) // 2] if steady else None
    state = {
        "done": (run_dir / "test.json").is_file(),
        "epochs_done": len(rows),
        "epochs": epochs,
        "best_val_dsc2d_mean": max((row["val_dsc2d_mean"] for row in rows), default=None),
        "seconds_per_epoch": pace,
        "projected_minutes": None if pace is None or epochs is None else pace * epochs / 60,
    }
    if state["done"]:
        test = json.loads((run_dir / "test.json").read_text())
        state["test_dsc3d_mean"] = test["test_dsc3d"]["mean"]
    return state


def table(folders: list[Path]) -> list[dict]:
    """One line per size folder (a `reproduce` folder: ce/, descriptors/); printed and returned."""
    lines = []
    header = f"{'size':>6} {'CE test DSC':>18} {'descr. test DSC':>18} {'descr./CE':>10}"
    print(header + f" {'min / all epochs':>17}")
    for folder in folders:
        runs = {m: _run_state(folder / m) for m in ("ce", "descriptors")}
        config = json.loads((folder / "ce" / "config.json").read_text())
        size = config["data"]["size"]
        shown = {}
        for method, state in runs.items():
            if state["done"]:
                shown[method] = f"{state['test_dsc3d_mean']:.3f}"
            else:
                best = state["best_val_dsc2d_mean"]
                best_text = "-" if best is None else f"{best:.3f}"
                shown[method] = f"({state['epochs_done']} ep, val {best_text})"
        done = all(state["done"] for state in runs.values())
        ce_mean = runs["ce"].get("test_dsc3d_mean")
        ratio = runs["descriptors"]["test_dsc3d_mean"] / ce_mean if done and ce_mean else None
        ratio_text = f"{ratio:.3f}" if ratio is not None else "n/a"
        minutes = [s["projected_minutes"] for s in runs.values() if s["projected_minutes"]]
        pace = f"{max(minutes):.1f}" if minutes else "-"  # two runs at once: the slower
        print(f"{size:>6} {shown['ce']:>18} {shown['descriptors']:>18} {ratio_text:>10} {pace:>17}")
        lines.append({"size": size, "runs": runs, "ratio_dsc3d_mean": ratio})
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None, help="the reproduce folder of this size")
    parser.add_argument("--device", default=None)
    parser.add_argument("--devices", default=None, help="as reproduce --devices")
    parser.add_argument("--graph", action="store_true", help="graph mode (CUDA graphs)")
    parser.add_argument("--fast", action="store_true", help="20 epochs instead of 200")
    parser.add_argument("--tiny", action="store_true", help="5 volumes, 1 epoch: does it run?")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--table", type=Path, nargs="+", default=None, help="print size folders")
    args = parser.parse_args()
    if args.table is not None:
        lines = table(args.table)
        if args.json:
            args.json.write_text(json.dumps(lines, indent=2))
        return 0

    from tutorial_lib.device import set_cpu_threads
    from tutorial_lib.reproduce import reproduce

    set_cpu_threads(None)
    if args.tiny:
        _shrink_for_a_check()
    out = args.out or Path(f"paper-at-scale/{args.size}px")
    start = time.perf_counter()
    try:
        reproduce(
            "toy-cardiac-paper",
            fast=args.fast,
            seed=args.seed,
            out_dir=out,
            device=args.device,
            devices=args.devices,
            progress=False,
            size=args.size,
            train_options={"graph": True} if args.graph else None,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # LIMIT in paper_at_scale.sh: the finished epochs are kept
        print(f"interrupted: {out} keeps the finished epochs; run again to continue")
        table([out])
        return 130
    lines = table([out])
    lines[0]["seconds"] = time.perf_counter() - start
    print(f"  {args.size} px: {lines[0]['seconds'] / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps(lines[0], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
