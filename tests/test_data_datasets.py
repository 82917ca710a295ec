"""Torch views of a prepared folder: load_split, SliceSet, SliceDataset, iterate_batches."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tutorial_lib.data.datasets import SliceDataset, iterate_batches, load_split
from tutorial_lib.data.toy.dataset import make_toy_dataset


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    path = tmp_path_factory.mktemp("prepared") / "toy"
    return make_toy_dataset("toy-cardiac", path, size=32, n_patients=6, seed=0)


def test_load_split_follows_the_contract(root):
    s = load_split(root, "train")
    n = len(s)
    assert s.images.shape == (n, 1, 32, 32) and s.images.dtype == torch.float32
    assert s.labels.shape == (n, 32, 32) and s.labels.dtype == torch.uint8
    assert len(s.volume_ids) == n and s.slice_indices.shape == (n,)
    assert s.spacing.shape == (n, 3) and s.class_names == ["background", "rv", "myocardium", "lv"]
    assert s.dataset == "toy-cardiac" and s.split == "train" and s.n_classes == 4


def test_slices_match_the_files_and_volumes_regroup_them(root):
    s = load_split(root, "test")
    for vid, idx in s.volumes().items():
        with np.load(root / "test" / f"{vid}.npz") as data:
            np.testing.assert_array_equal(s.images[idx, 0].numpy(), data["image"])
            np.testing.assert_array_equal(s.labels[idx].numpy(), data["label"])
        assert s.slice_indices[idx].tolist() == list(range(len(idx)))


def test_splits_are_disjoint_and_cover_every_volume(root):
    ids = [set(load_split(root, split).volume_ids) for split in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(set().union(*ids)) == 6


def test_to_and_subset(root):
    s = load_split(root, "val", device="cpu")
    moved = s.to(torch.device("cpu"))
    assert moved.device.type == "cpu" and torch.equal(moved.labels, s.labels)
    sub = s.subset([2, 0])
    assert torch.equal(sub.images[1], s.images[0]) and sub.volume_ids == [
        s.volume_ids[2],
        s.volume_ids[0],
    ]


def test_slice_dataset_items_and_default_collate(root):
    ds = SliceDataset(root, "train")
    item = ds[3]
    assert item["image"].shape == (1, 32, 32) and item["label"].shape == (32, 32)
    assert item["volume_id"] == ds.slices.volume_ids[3] and item["index"] == 3
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["image"].shape == (4, 1, 32, 32) and len(batch["volume_id"]) == 4


def test_iterate_batches_visits_each_slice_once_and_repeats_with_a_seed(root):
    s = load_split(root, "train")
    order = [
        i
        for _, _, idx in iterate_batches(
            s, 5, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        for i in idx.tolist()
    ]
    again = [
        i
        for _, _, idx in iterate_batches(
            s, 5, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        for i in idx.tolist()
    ]
    assert sorted(order) == list(range(len(s))) and order == again and order != sorted(order)
    batches = list(iterate_batches(s, 5, drop_last=True))
    assert all(len(b[0]) == 5 for b in batches) and len(batches) == len(s) // 5
    images, labels, idx = batches[1]
    assert torch.equal(images, s.images[idx]) and torch.equal(labels, s.labels[idx])


def test_errors_name_what_was_expected(root, tmp_path):
    with pytest.raises(
        ValueError, match=r"^split: expected one of \('train', 'val', 'test'\), got 'training'$"
    ):
        load_split(root, "training")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        load_split(tmp_path, "train")
    with pytest.raises(ValueError, match="^batch_size: expected >= 1, got 0$"):
        next(iterate_batches(load_split(root, "val"), 0))
