"""`python -m tutorial_lib student-copy OUT_DIR [--src DIR] [--force]`: the notebooks for learners.

Writes the course's notebooks into OUT_DIR with no way to the exercises' reference solutions (see
tutorial_lib.student_copy): each check says "not yet" with a first step until it is answered.
"""

from __future__ import annotations

import argparse

from tutorial_lib.student_copy import MARKER, write_student_copy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "out_dir",
        metavar="OUT_DIR",
        help="folder to write, missing or empty (or an earlier student copy, with --force)",
    )
    parser.add_argument(
        "--src", default=None, help="the course's notebooks (default: notebooks/ of this clone)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"replace OUT_DIR when it holds an earlier student copy (its {MARKER}), with "
        "anything written into it since",
    )


def run(args: argparse.Namespace) -> int:
    written = write_student_copy(args.out_dir, args.src, force=args.force)
    for name, ids in written.items():
        print(f"  {name}: " + (f"exercises {', '.join(ids)}" if ids else "no exercise"))
    n = sum(len(ids) for ids in written.values())
    print(
        f"wrote {len(written)} notebooks into {args.out_dir}: {n} exercises, each check says "
        '"not yet" until it is answered; no reference solution is run or shown'
    )
    return 0
