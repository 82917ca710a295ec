"""What several commands (and the benchmarks) share: command-line options, the metric lines."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

COMPILE_HELP = (
    "run the network through torch.compile to cut the per-kernel launch overhead on a GPU "
    "(ENet); MODE: default, reduce-overhead (CUDA graphs), max-autotune; the first epoch pays the "
    "compile time, on the CPU it needs a C++ compiler"
)


def add_compile_option(parser: argparse.ArgumentParser) -> None:
    """`--compile [MODE]`: False when absent, True when given alone, else the mode's name."""
    parser.add_argument(
        "--compile", nargs="?", const=True, default=False, metavar="MODE", help=COMPILE_HELP
    )


def add_bf16_option(parser: argparse.ArgumentParser) -> None:
    """`--bf16`: train in bfloat16 autocast whatever the preset's `amp` (recorded in config.json as
    `"amp": "bf16"` and in summary.json as `"precision"`)."""
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="bfloat16 autocast instead of the preset's precision (the paper presets train in "
        "float32); config.json and summary.json record it",
    )


GRAPH_HELP = (
    "replay the whole training step (augmentation, forward, loss, backward, Adam) and the "
    "validation forward as CUDA graphs: one launch per step instead of ~1,000 (ENet); on the "
    "CPU the same step runs eagerly; not with --compile or torchrun"
)


def add_graph_option(parser: argparse.ArgumentParser) -> None:
    """`--graph`: graph mode (tutorial_lib.graphs)."""
    parser.add_argument("--graph", action="store_true", help=GRAPH_HELP)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """`--device` (default: the best available) and `--threads` (CPU threads)."""
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1, mps (default: the best available)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: all cores, at most 8)"
    )


def metric_line(metric: str, values: Mapping[str, float | None]) -> str:
    """`test_dsc3d: rv 0.812  myocardium 0.790 ...`, `n/a` for a class without a value."""
    return f"{metric}: " + "  ".join(
        f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in values.items()
    )
