"""Patient splits: the authors' shuffle (sorted ids, random.seed, random.shuffle), for several seeds."""

from __future__ import annotations

import random

import pytest

from tutorial_lib.data.splits import split_patients

PATIENTS = [f"patient{i:03d}" for i in range(1, 31)]


def reference_split(patients, n_val, n_test, seed):
    """The authors' slicing scripts: sorted unique ids, the global random module, first val, then test."""
    ids = sorted(set(patients))
    random.seed(seed)
    random.shuffle(ids)
    return {
        "train": sorted(ids[n_val + n_test :]),
        "val": sorted(ids[:n_val]),
        "test": sorted(ids[n_val : n_val + n_test]),
    }


@pytest.mark.parametrize("seed", [0, 1, 7, 2021])
@pytest.mark.parametrize("n_val, n_test", [(5, 10), (3, 0), (0, 4), (1, 28)])
def test_split_equals_reference_shuffle(seed, n_val, n_test):
    state = random.getstate()
    ours = split_patients(reversed(PATIENTS + PATIENTS[:5]), n_val, n_test, seed=seed)
    assert random.getstate() == state  # the global generator is left alone
    assert ours == reference_split(PATIENTS, n_val, n_test, seed)
    assert len(ours["val"]) == n_val and len(ours["test"]) == n_test
    assert sorted(ours["train"] + ours["val"] + ours["test"]) == PATIENTS


def test_default_seed_is_0():
    assert split_patients(PATIENTS, 5, 5) == reference_split(PATIENTS, 5, 5, 0)


def test_seeds_give_different_splits():
    splits = {tuple(split_patients(PATIENTS, 5, 5, seed=s)["val"]) for s in range(5)}
    assert len(splits) == 5


@pytest.mark.parametrize(
    "n_val, n_test, match",
    [
        (-1, 2, r"n_val, n_test: expected non-negative numbers, got -1 and 2"),
        (2, -1, r"n_val, n_test: expected non-negative numbers, got 2 and -1"),
        (20, 10, r"n_val, n_test: expected n_val \+ n_test < number of patients \(30\)"),
        (29, 1, r"got n_val=29, n_test=1"),
    ],
)
def test_bad_sizes_raise(n_val, n_test, match):
    with pytest.raises(ValueError, match=match):
        split_patients(PATIENTS, n_val, n_test)
