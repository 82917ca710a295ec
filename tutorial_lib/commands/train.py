"""`python -m tutorial_lib train --preset NAME [--data DIR] [--epochs N] [--device D] [--out DIR] [--resume] [--compile] [--graph] [--bf16]`.

Under `torchrun --nproc_per_node N -m tutorial_lib train ...` the run trains data-parallel on N
ranks (tutorial_lib.distributed); rank 0 writes the run folder and prints the result.
"""

from __future__ import annotations

import argparse
import dataclasses

from tutorial_lib import train as training  # looked up at run time (tests substitute it)
from tutorial_lib.commands.options import (
    add_bf16_option,
    add_compile_option,
    add_device_options,
    add_graph_option,
    metric_line,
)
from tutorial_lib.device import set_cpu_threads
from tutorial_lib.distributed import ranks_from_environment
from tutorial_lib.presets import PRESETS, get_preset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        required=True,
        choices=sorted(PRESETS),
        help="named settings (tutorial_lib.presets)",
    )
    parser.add_argument(
        "--data", default=None, help="prepared dataset folder (default: generate the toy data)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="override the preset's number of epochs"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="override the preset's training seed"
    )
    parser.add_argument(
        "--fast", action="store_true", help="the preset's short variant (as reproduce --fast)"
    )
    add_device_options(parser)
    parser.add_argument(
        "--out", default=None, help="run directory (default: runs/<preset>[-fast][-s<seed>])"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    add_compile_option(parser)
    add_bf16_option(parser)
    add_graph_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    set_cpu_threads(args.threads)
    config = get_preset(args.preset, fast=args.fast)
    changes = {k: v for k, v in (("epochs", args.epochs), ("seed", args.seed)) if v is not None}
    if args.bf16:
        changes["amp"] = "bf16"
    config = dataclasses.replace(config, **changes)
    if args.out is None:  # one folder per variant: a --fast run never meets the full run's folder
        variant = (
            ("-fast" if args.fast else "")
            + (f"-s{args.seed}" if args.seed is not None else "")
            + ("-bf16" if args.bf16 else "")
        )
        args.out = f"runs/{config.name}{variant}"
    out = args.out  # kept in args for `interrupted`
    summary = training.train(
        config,
        data_root=args.data,
        out_dir=out,
        device=args.device,
        resume=args.resume,
        progress=not args.quiet,
        compile=args.compile,
        graph=args.graph,
    )
    ranks = ranks_from_environment()
    if ranks is not None and ranks.rank != 0:  # torchrun: rank 0 reports for every rank
        return 0
    test = summary.get("test", {})
    print(
        f"run: {out}  best epoch {summary['best_epoch']}  val 2-D DSC {summary['best_val_dsc2d_mean']:.3f}"
        + (f"  ({summary['precision']})" if "precision" in summary else "")
    )
    for metric in ("test_dsc3d", "test_hd95"):
        values = test.get(metric, {})
        print(metric_line(metric, values))
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves: the run folder at its last finished epoch."""
    if args.out is None:  # stopped before the run started
        return "nothing was written; run the command again"
    return (
        f"{args.out} keeps the epochs finished so far (checkpoints/last.pt); run the same command "
        "with --resume to continue"
    )
