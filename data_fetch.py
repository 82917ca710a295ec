"""Download and unpack a real dataset: `python data_fetch.py {acdc,promise12,msd-prostate}`.

A thin command line over `tutorial_lib.data.fetch`; see its docstring. Examples:
    python data_fetch.py promise12
    python data_fetch.py acdc --archive ~/Downloads/ACDC.zip
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from tutorial_lib.data.fetch import SOURCES

    parser = argparse.ArgumentParser(
        prog="python data_fetch.py", description=__doc__.splitlines()[0]
    )
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tutorial_lib.data.fetch import ChecksumMismatchError, FetchError, fetch

    try:
        fetch(
            args.dataset,
            args.dest,
            archive=args.archive,
            accept_checksum=args.accept_checksum,
            progress=not args.no_progress,
        )
    except (
        FetchError,
        ChecksumMismatchError,
        FileNotFoundError,
        FileExistsError,
        ValueError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
