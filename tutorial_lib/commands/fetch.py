"""`python -m tutorial_lib fetch {acdc,promise12,msd-prostate} [--dest DIR] [--archive FILE]`.

Downloads (or takes from `--archive`) a real dataset's archive, checks its published checksum
and unpacks it (see tutorial_lib.data.fetch). `python data_fetch.py` runs this same command.
"""

from __future__ import annotations

import argparse

from tutorial_lib.data.fetch import SOURCES, FetchError, fetch

FAILURES = (FetchError,)  # the download failed (login, host, transfer): exit code 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=sorted(SOURCES))
    parser.add_argument(
        "--dest", help="folder to unpack into (default: $TUTORIAL_DATA_DIR/raw/<dataset>)"
    )
    parser.add_argument("--archive", help="use this archive file instead of downloading")
    parser.add_argument(
        "--accept-checksum",
        action="store_true",
        help="accept an archive whose checksum differs from the published one",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    fetch(
        args.dataset,
        args.dest,
        archive=args.archive,
        accept_checksum=args.accept_checksum,
        progress=not args.no_progress,
    )
    return 0
