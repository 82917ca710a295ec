"""`python -m tutorial_lib study --base PRESET --vary KEY=V1,V2 [--vary KEY2=...] [--fast] ...`.

Trains the grid (one or two varied keys, see tutorial_lib.study_grid), resumes an interrupted
study, and writes `table.csv`, `table.json` and `study.png` into `--out` (tutorial_lib.study).
"""

from __future__ import annotations

import argparse
import dataclasses

from tutorial_lib import study as studying  # looked up at run time (tests substitute it)
from tutorial_lib.commands.options import add_compile_option, add_device_options
from tutorial_lib.device import set_cpu_threads
from tutorial_lib.presets import PRESETS, get_preset
from tutorial_lib.study_grid import KEYS, parse_vary

KEYS_HELP = ", ".join(k if k != "margin." else "margin.NAME[+NAME]" for k in KEYS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, choices=sorted(PRESETS), help="the base preset")
    parser.add_argument(
        "--vary",
        action="append",
        required=True,
        metavar="KEY=V1,V2",
        help=f"a key and its values (once or twice); keys: {KEYS_HELP}",
    )
    parser.add_argument("--fast", action="store_true", help="the base preset's short variant")
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated (default: 0)")
    parser.add_argument("--epochs", type=int, default=None, help="override the base's epochs")
    parser.add_argument(
        "--out", default=None, help="study folder (default: runs/study-<base>[-fast]-<keys>)"
    )
    parser.add_argument(
        "--runs", default=None, help="where the cells' run folders go (default: OUT/runs)"
    )
    add_device_options(parser)
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs trained at once (default: 2 on CUDA and on a CPU with 2+ threads, else 1)",
    )
    add_compile_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ValueError(f"seeds: expected integers separated by commas, got {text!r}") from None


def default_out(args: argparse.Namespace) -> str:
    keys = "-".join(v.partition("=")[0] for v in args.vary)
    return f"runs/study-{args.base}{'-fast' if args.fast else ''}-{keys}"


def run(args: argparse.Namespace) -> int:
    set_cpu_threads(args.threads)
    axes = [parse_vary(text) for text in args.vary]
    base = get_preset(args.base, fast=args.fast)
    if args.epochs is not None:
        base = dataclasses.replace(base, epochs=args.epochs)
    args.out = out = args.out or default_out(args)  # kept in args for `interrupted`
    table = studying.run_study(
        base,
        axes,
        out_dir=out,
        seeds=_seeds(args.seeds),
        runs_dir=args.runs,
        jobs=args.jobs,
        device=args.device,
        progress=not args.quiet,
        train_options={"compile": args.compile} if args.compile else None,
    )
    print(studying.format_study(table))
    print(
        f"wrote {out}/table.csv, table.json and study.png; {table['trained']} of "
        f"{len(table['rows'])} runs trained now, in {table['seconds']:.0f} s"
    )
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: finished cells, and each run at its last finished epoch."""
    out = args.out or default_out(args)
    return (
        f"{out} keeps the finished cells and every run at its last finished epoch; run the same "
        "command again to continue"
    )
