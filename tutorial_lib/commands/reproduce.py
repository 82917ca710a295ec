"""`python -m tutorial_lib reproduce --dataset D [--fast] [--seed S] [--out DIR] [--bf16]
[--devices LIST]`: CE vs descriptors."""

from __future__ import annotations

import argparse

from tutorial_lib import reproduce as reproducing  # looked up at run time (tests substitute it)
from tutorial_lib.commands.options import (
    add_bf16_option,
    add_compile_option,
    add_device_options,
    add_graph_option,
)
from tutorial_lib.device import set_cpu_threads


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=reproducing.DATASETS)
    parser.add_argument("--fast", action="store_true", help="the short variant of both presets")
    parser.add_argument(
        "--seed", type=int, default=0, help="training seed (and toy data seed), default 0"
    )
    parser.add_argument(
        "--out",
        default=None,
        help="output folder (default: runs/reproduce-<dataset>[-fast]-s<seed>[-bf16])",
    )
    parser.add_argument(
        "--data", default=None, help="prepared dataset folder (needed for acdc, promise12)"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="image side of a toy dataset (default: the preset's; toy-cardiac-paper: 256)",
    )
    add_device_options(parser)
    parser.add_argument(
        "--devices",
        default=None,
        metavar="LIST",
        help="where the runs train, one process per run, e.g. cuda:0,cuda:1 (default: every "
        "visible GPU on CUDA, else --device); a device listed twice takes two runs at once",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs trained at once, each in its own process (default: 2 per GPU, 2 on a CPU "
        "with 2+ threads, one per entry of --devices otherwise); 1: one after the other",
    )
    add_compile_option(parser)
    add_bf16_option(parser)
    add_graph_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def train_options(args: argparse.Namespace) -> dict | None:
    """The execution options passed to each run's `train` (None: the defaults)."""
    options = {"compile": args.compile} if args.compile else {}
    if args.graph:
        options["graph"] = True
    return options or None


def default_out(args: argparse.Namespace) -> str:
    size = f"-{args.size}px" if getattr(args, "size", None) else ""
    variant = f"{'-fast' if args.fast else ''}-s{args.seed}{'-bf16' if args.bf16 else ''}"
    return f"runs/reproduce-{args.dataset}{size}{variant}"


def run(args: argparse.Namespace) -> int:
    set_cpu_threads(args.threads)
    args.out = out = args.out or default_out(args)  # kept in args for `interrupted`
    summary = reproducing.reproduce(
        args.dataset,
        fast=args.fast,
        seed=args.seed,
        out_dir=out,
        data_root=args.data,
        device=args.device,
        devices=args.devices,
        progress=not args.quiet,
        jobs=args.jobs,
        size=args.size,
        train_options=train_options(args),
        bf16=args.bf16,
    )
    print(reproducing.format_table(summary))
    print(
        f"wrote {out}/summary.json and {', '.join(summary['figures'])} in {summary['seconds']:.0f} s"
    )
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: each run folder at its last finished epoch; reproduce resumes them."""
    out = args.out or default_out(args)
    return (
        f"{out}/ce and {out}/descriptors keep the epochs finished so far; run the same command "
        "again to continue"
    )
