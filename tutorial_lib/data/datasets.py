"""Torch views of a prepared dataset folder: all slices of a split as tensors, or a `Dataset`.

`load_split(root, "train")` stacks every 2-D slice of the split (volumes in manifest order,
slices in order), keeping for each slice its volume id and index so that 3-D metrics can
re-assemble volumes. `.to(device)` moves the whole set at once (preloading onto a GPU makes
an epoch a few indexing operations).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from tutorial_lib.data.storage import SPLITS, read_manifest, read_volume


@dataclass
class SliceSet:
    """Every slice of one split.

    images (N, 1, H, W) float32 in [0, 1]; labels (N, H, W) uint8; volume_ids[i] and
    slice_indices[i] locate slice i in its volume; spacing (N, 3) float32 mm (slice, row, col).
    """

    images: torch.Tensor
    labels: torch.Tensor
    volume_ids: list[str]
    slice_indices: torch.Tensor
    spacing: torch.Tensor
    class_names: list[str]
    dataset: str = ""
    split: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> SliceSet:
        """A copy whose tensors live on `device`."""
        return replace(
            self,
            images=self.images.to(device),
            labels=self.labels.to(device),
            slice_indices=self.slice_indices.to(device),
            spacing=self.spacing.to(device),
        )

    def subset(self, index: torch.Tensor | list[int]) -> SliceSet:
        """The slices at `index` (in that order)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return replace(
            self,
            images=self.images[idx.to(self.images.device)],
            labels=self.labels[idx.to(self.labels.device)],
            volume_ids=[self.volume_ids[i] for i in idx.tolist()],
            slice_indices=self.slice_indices[idx.to(self.slice_indices.device)],
            spacing=self.spacing[idx.to(self.spacing.device)],
        )

    def volumes(self) -> dict[str, torch.Tensor]:
        """Map each volume id to the indices of its slices (ordered by slice index)."""
        groups: dict[str, list[int]] = {}
        for i, vid in enumerate(self.volume_ids):
            groups.setdefault(vid, []).append(i)
        order = self.slice_indices.cpu()
        return {
            vid: torch.tensor(sorted(ix, key=lambda i: int(order[i])), dtype=torch.long)
            for vid, ix in groups.items()
        }


def load_split(
    root: str | os.PathLike, split: str, *, device: torch.device | str | None = None
) -> SliceSet:
    """Load every slice of `split` ("train", "val" or "test") of the prepared dataset at `root`.

    Every volume is checked as it is read (storage.read_volume: dtypes, shapes, a finite image,
    labels within the manifest's classes), so a bad file stops here, before a run writes anything.
    Taught in notebook 00.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    manifest = read_manifest(root)
    records = [v for v in manifest["volumes"] if v["split"] == split]
    if not records:
        raise ValueError(
            f"{root}: expected the manifest to list volumes in split {split!r}, got none"
        )
    images, labels, ids, index, spacing = [], [], [], [], []
    for record in records:
        vol = read_volume(root, split, record["id"], n_classes=len(manifest["classes"]))
        n = vol["image"].shape[0]
        images.append(vol["image"])
        labels.append(vol["label"])
        ids.extend([record["id"]] * n)
        index.append(np.arange(n))
        spacing.append(np.broadcast_to(vol["spacing"], (n, 3)))
    shapes = {im.shape[1:] for im in images}
    if len(shapes) != 1:
        raise ValueError(
            f"{root}/{split}: expected one in-plane size for all volumes, got {shapes}"
        )
    result = SliceSet(
        images=torch.from_numpy(np.concatenate(images)).unsqueeze(1),
        labels=torch.from_numpy(np.concatenate(labels)),
        volume_ids=ids,
        slice_indices=torch.from_numpy(np.concatenate(index)),
        spacing=torch.from_numpy(np.concatenate(spacing).astype(np.float32)),
        class_names=list(manifest["classes"]),
        dataset=manifest["dataset"],
        split=split,
    )
    return result.to(device) if device is not None else result


def check_split(root: str | os.PathLike, split: str) -> int:
    """Read and check every volume of `split` (storage.read_volume) without keeping it; return
    their number. A run calls it on the test split before writing anything, so that a bad test
    volume stops it at the start rather than after training."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    manifest = read_manifest(root)
    records = [v for v in manifest["volumes"] if v["split"] == split]
    for record in records:
        read_volume(root, split, record["id"], n_classes=len(manifest["classes"]))
    return len(records)


class SliceDataset(Dataset):
    """A torch `Dataset` of the 2-D slices of one split (preloaded in memory, optionally on a
    device). Item i is a dict: image (1, H, W) float32, label (H, W) uint8, volume_id,
    slice_index, index (position in the split)."""

    def __init__(
        self, root: str | os.PathLike, split: str, *, device: torch.device | str | None = None
    ) -> None:
        self.slices = load_split(root, split, device=device)

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> dict:
        s = self.slices
        return {
            "image": s.images[i],
            "label": s.labels[i],
            "volume_id": s.volume_ids[i],
            "slice_index": int(s.slice_indices[i]),
            "index": i,
        }


def iterate_batches(
    slices: SliceSet,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Yield (images, labels, indices) batches by indexing the preloaded tensors directly.

    No DataLoader workers and no host-device copies when `slices` already lives on the GPU.
    The shuffle permutation is drawn on the CPU from `generator` (seeded runs repeat exactly).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    n = len(slices)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        dev_idx = idx.to(slices.device)
        yield slices.images[dev_idx], slices.labels[dev_idx], idx
