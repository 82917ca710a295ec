"""Data: embedded toy datasets (`toy/`), real-data download and preparation, torch views, augmentation.

The prepared on-disk format is shared by all of them (see `storage` and docs/design.md).
Import from the module that defines a name, e.g. `tutorial_lib.data.toy.dataset.ensure_toy_dataset`.
"""
