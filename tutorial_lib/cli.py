"""Command line: `python -m tutorial_lib {demo,fetch,prepare,train,evaluate,reproduce,student-copy,study} ...`.

Each sub-command lives in `tutorial_lib/commands/<name>.py` (`-` in its name becomes `_`) and exposes
`add_arguments(parser)` and `run(args) -> int`, and may name in `FAILURES` its own exceptions
that mean "it failed" and describe in `interrupted(args) -> str` what Ctrl-C leaves; errors are
turned into messages and exit codes here, once (tutorial_lib.errors): 0 done, 1 failed, 2 bad
input, 130 interrupted (one line, no traceback). Commands are imported only when used, so a command does not pay for
another's imports and a missing optional dependency only affects its command.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from types import ModuleType

from tutorial_lib.errors import RunError  # torch-free

# Before torch loads its OpenMP runtime (no module imported above loads torch): idle worker threads
# sleep instead of spinning, which keeps small CPU convolutions from slowing down many-fold when the
# cores are shared with other work.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

COMMANDS = {
    "demo": "Compute the shape descriptors of a toy image and print them.",
    "fetch": "Download and unpack a real dataset (ACDC, PROMISE12, MSD prostate).",
    "prepare": "Slice, normalise and split a downloaded dataset (ACDC, PROMISE12, MSD prostate).",
    "train": "Train one preset (cross-entropy or shape descriptors).",
    "evaluate": "Evaluate the best checkpoint of a run on its test split.",
    "reproduce": "Train CE and descriptors runs, evaluate both, write the paper's figures.",
    "student-copy": "Write the notebooks for learners: the exercises' stubs, no solution behind them.",
    "study": "Train a grid of runs that vary one or two settings of a preset; tabulate and plot.",
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"tutorial_lib.commands.{name.replace('-', '_')}")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tutorial_lib", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = None
    if argv:
        wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if wanted is None or wanted == name:
            _load(name).add_arguments(p)
    return parser


INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)


def interrupted_message(command: ModuleType, args: argparse.Namespace) -> str:
    """What Ctrl-C left and how to go on: the command's `interrupted(args)`, else a general line."""
    describe = getattr(command, "interrupted", None)
    if describe is not None:
        return describe(args)
    return "nothing half-written was kept; run the command again"


def run_command(command: ModuleType, args: argparse.Namespace) -> int:
    """Run a command module on parsed arguments; errors become a message and an exit code."""
    failures = (RunError, *getattr(command, "FAILURES", ()))
    try:
        return int(command.run(args) or 0)
    except KeyboardInterrupt:
        print(f"interrupted: {interrupted_message(command, args)}", file=sys.stderr)
        return INTERRUPTED
    except failures as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit code 0 done, 1 a run failed, 2 bad input (the message says which),
    130 interrupted (Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(argv).parse_args(argv)
        command = _load(args.command)
    except KeyboardInterrupt:  # while the command's modules load: nothing was started
        print("interrupted: nothing was started", file=sys.stderr)
        return INTERRUPTED
    return run_command(command, args)


if __name__ == "__main__":
    raise SystemExit(main())
