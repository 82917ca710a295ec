"""Data: embedded toy datasets, real-data download and preparation, torch views, augmentation.

The prepared on-disk format is shared by all of them (see `storage` and docs/design.md).
`fetch` and `prepare` (downloads, NIfTI/MetaImage readers) are imported only when used.
"""

from tutorial_lib.data.augment import augment_batch
from tutorial_lib.data.datasets import SliceDataset, SliceSet, iterate_batches, load_split
from tutorial_lib.data.synthetic import (
    ToyCardiacOptions,
    ToyProstateOptions,
    ensure_toy_dataset,
    generate_toy,
    make_toy_dataset,
)

__all__ = [
    "SliceDataset",
    "SliceSet",
    "ToyCardiacOptions",
    "ToyProstateOptions",
    "augment_batch",
    "ensure_toy_dataset",
    "generate_toy",
    "iterate_batches",
    "load_split",
    "make_toy_dataset",
]
