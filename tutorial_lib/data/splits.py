"""Patient-level train/val/test split, the way the authors' slicing scripts do it."""

from __future__ import annotations

import random
from collections.abc import Iterable


def split_patients(
    patients: Iterable[str], n_val: int, n_test: int, seed: int = 0
) -> dict[str, list[str]]:
    """Split patient ids into {"train", "val", "test"} lists (each sorted).

    As in the authors' code: sort the unique ids, `random.seed(seed)`, `random.shuffle`, then
    the first `n_val` are validation, the next `n_test` test, the rest training. A private
    `random.Random(seed)` is used, which gives the same order without touching global state.
    """
    ids = sorted(set(patients))
    if n_val < 0 or n_test < 0:
        raise ValueError(f"n_val, n_test: expected non-negative numbers, got {n_val} and {n_test}")
    if n_val + n_test >= len(ids):
        raise ValueError(
            f"n_val, n_test: expected n_val + n_test < number of patients ({len(ids)}) so that "
            f"some are left for training, got n_val={n_val}, n_test={n_test}"
        )
    random.Random(seed).shuffle(ids)
    val, test, train = ids[:n_val], ids[n_val : n_val + n_test], ids[n_val + n_test :]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}
