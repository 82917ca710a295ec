"""Download and unpack a real dataset: `python data_fetch.py {acdc,promise12,msd-prostate}`.

The same command as `python -m tutorial_lib fetch` (tutorial_lib/commands/fetch.py), with the
same options and exit codes. Examples:
    python data_fetch.py promise12
    python data_fetch.py acdc --archive ~/Downloads/ACDC.zip
"""

from __future__ import annotations

import argparse

from tutorial_lib.cli import run_command
from tutorial_lib.commands import fetch as fetch_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python data_fetch.py", description=__doc__.splitlines()[0]
    )
    fetch_command.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 done, 1 the download failed, 2 bad input (checksum, --archive, --dest)."""
    return run_command(fetch_command, build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
