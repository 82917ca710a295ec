"""`python -m tutorial_lib prepare {acdc,promise12,msd-prostate} --src RAW --dest OUT`.

Slices, normalises, resizes and splits a downloaded dataset into the prepared format
(see tutorial_lib.data.prepare for what is faithful to the authors and what is not).
"""

from __future__ import annotations

import argparse

from tutorial_lib.data.prepare import SPECS, prepare_dataset

DATASETS = tuple(SPECS)  # acdc, promise12, msd-prostate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument(
        "--src", required=True, help="raw data folder (the unpacked archive's top folder is fine)"
    )
    parser.add_argument(
        "--dest", required=True, help="output folder (absent or empty; apart from --src)"
    )
    parser.add_argument("--size", type=int, default=256, help="slice side in pixels (default 256)")
    parser.add_argument(
        "--val", type=int, default=None, help="validation patients (ACDC 10, PROMISE12 5, MSD 3)"
    )
    parser.add_argument(
        "--test", type=int, default=None, help="test patients (ACDC 20, PROMISE12 10, MSD 6)"
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (authors: 0)")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument(
        "--nearest-labels",
        action="store_true",
        help="resize the labels nearest (default for acdc and msd-prostate); promise12's default "
        "follows the authors' script: bilinear, then truncated (it slightly erodes the masks)",
    )
    labels.add_argument(
        "--label-quirk",
        action="store_true",
        help="resize the labels bilinear, then truncate, whatever the dataset (promise12's default)",
    )
    parser.add_argument(
        "--include-testing",
        action="store_true",
        help="ACDC: also use patients below a 'testing' folder (the authors used training only)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier output in --dest (only the files its manifest lists; "
        "anything else there stops the command)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def label_resize(args: argparse.Namespace) -> str | None:
    """The `label_resize` of `prepare_dataset` the flags ask for (None: the dataset's default)."""
    if args.nearest_labels:
        return "nearest"
    return "bilinear-truncate" if args.label_quirk else None


def run(args: argparse.Namespace) -> int:
    prepare_dataset(
        args.dataset,
        args.src,
        args.dest,
        size=args.size,
        n_val=args.val,
        n_test=args.test,
        seed=args.seed,
        label_resize=label_resize(args),
        include_testing=args.include_testing,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    return 0
