"""`python -m tutorial_lib evaluate --run DIR`: test 3-D DSC and HD95 of a run's best checkpoint."""

from __future__ import annotations

import argparse

from tutorial_lib.commands.options import add_device_options, metric_line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="run directory written by `train`")
    parser.add_argument("--data", default=None, help="prepared dataset folder (default: the run's)")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    add_device_options(parser)


def run(args: argparse.Namespace) -> int:
    # torch and the training stack load here, so that `evaluate --help` stays quick
    from tutorial_lib.device import set_cpu_threads
    from tutorial_lib.evaluation import evaluate

    set_cpu_threads(args.threads)
    result = evaluate(args.run, device=args.device, data_root=args.data, split=args.split)
    split = result["split"]
    print(
        f"{args.run}: best epoch {result['best_epoch']}, {len(result['volumes'])} {split} volumes"
    )
    for metric in (f"{split}_dsc3d", f"{split}_hd95"):
        values = result[metric]
        print(metric_line(metric, values))
    return 0
