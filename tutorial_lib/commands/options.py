"""Command-line options that several commands (and the benchmarks) share."""

from __future__ import annotations

import argparse

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
