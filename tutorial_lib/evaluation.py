"""Predictions and scores of a trained network: per-epoch validation and the final test evaluation.

Scores come from `tutorial_lib.metrics` (DSC = 2|P∩G| / (|P| + |G|)). A class absent from both the
prediction and the ground truth of a slice (or volume) has no DSC (NaN) and is left out of the
means, rather than scoring 1 as in the authors' code. 2-D DSC is averaged over slices; 3-D DSC pools
the counts of a volume's slices, then is averaged over volumes. HD95 (mm, with the volume's
spacing) is infinite where a class is predicted but absent from the ground truth or the reverse;
means are over the finite values and `<split>_hd95_n_inf` counts the others.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tutorial_lib.checkpoint import load_checkpoint
from tutorial_lib.config import TrainConfig, config_from_dict
from tutorial_lib.device import get_device
from tutorial_lib.metrics import dice_counts, dice_from_counts, hd95
from tutorial_lib.runlog import read_json, write_json

__all__ = [
    "autocast_context",
    "predict_labels",
    "volume_counts",
    "validation_scores",
    "load_run_config",
    "evaluate",
    "predict_run",
]


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None):
    """bfloat16 autocast on `device` when `amp_dtype` is set, else a no-op context."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


@torch.no_grad()
def predict_labels(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Arg-max label maps (N, H, W) int64 on `images.device` for images (N, C, H, W), eval mode."""
    was_training = model.training
    model.eval()
    out = []
    try:
        for start in range(0, images.shape[0], batch_size):
            x = images[start : start + batch_size].to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp_dtype):
                logits = model(x)
            out.append(logits.argmax(1).to(images.device))
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, *images.shape[2:], dtype=torch.long)


def volume_counts(
    counts: torch.Tensor, volume_ids: Sequence[str]
) -> tuple[list[str], torch.Tensor]:
    """Pool per-slice counts (N, K, 3) by volume: (ids in first-seen order, (V, K, 3))."""
    if len(volume_ids) != counts.shape[0]:
        raise ValueError(
            f"volume_counts: expected {counts.shape[0]} volume ids, got {len(volume_ids)}"
        )
    order: dict[str, int] = {}
    index = torch.tensor(
        [order.setdefault(v, len(order)) for v in volume_ids], device=counts.device
    )
    pooled = counts.new_zeros(len(order), *counts.shape[1:]).index_add_(0, index, counts)
    return list(order), pooled


def validation_scores(
    counts: torch.Tensor,
    volume_ids: Sequence[str],
    class_names: Sequence[str],
    mean_classes: Sequence[int],
) -> dict[str, float]:
    """Row entries `val_dsc2d_<class>`, `val_dsc3d_<class>` and their `_mean` over `mean_classes`."""
    row: dict[str, float] = {}
    d2 = dice_from_counts(counts).nanmean(0)
    _, vol = volume_counts(counts, volume_ids)
    d3 = dice_from_counts(vol).nanmean(0)
    for key, values in (("val_dsc2d", d2), ("val_dsc3d", d3)):
        for k, name in enumerate(class_names):
            row[f"{key}_{name}"] = float(values[k])
        row[f"{key}_mean"] = float(values[list(mean_classes)].nanmean())
    return row


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig saved in `run_dir/config.json`."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"run directory: expected {path} (written by train), found none")
    return config_from_dict(read_json(path))


def evaluate(
    run_dir: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    data_root: str | os.PathLike | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Evaluate `run_dir/checkpoints/best.pt` on `split`: 3-D DSC and HD95 (mm) per volume and class.

    Writes `run_dir/<split>.json` and the `test` entry of `summary.json`; returns
    `{"classes", "volumes", "dsc3d": {class: [per volume]}, "hd95": {...}, "test_dsc3d": {class: mean,
    "mean": ...}, "test_hd95": {...}, "test_hd95_n_inf": {class: count}, "best_epoch"}` (see the module docstring
    for the empty-class conventions).
    """
    from tutorial_lib.run_parts import amp_dtype, build_network, load_data, resolve_data_root

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    device = get_device(str(device)) if device is not None else get_device()
    if data_root is None:
        summary_path = run_dir / "summary.json"
        saved = read_json(summary_path).get("data_root") if summary_path.is_file() else None
        data_root = saved if saved and Path(saved, "manifest.json").is_file() else None
    root = resolve_data_root(config, data_root)
    data = load_data(config, root, split)
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    class_names = list(data.class_names)
    channels_last = (
        config.channels_last if config.channels_last is not None else device.type == "cuda"
    )
    model = build_network(config, len(class_names), device, channels_last)
    model.load_state_dict(best["model"])
    pred = predict_labels(
        model,
        data.images,
        batch_size=max(config.batch_size, 16),
        device=device,
        amp_dtype=amp_dtype(config, device),
        channels_last=channels_last,
    ).cpu()
    target = data.labels.cpu().long()
    ids, vol = volume_counts(dice_counts(pred, target, len(class_names)).double(), data.volume_ids)
    dsc = dice_from_counts(vol)
    hd = torch.full_like(dsc, math.nan)
    slices_of = data.volumes()
    for v, vid in enumerate(ids):
        rows = slices_of[vid]
        spacing = tuple(float(s) for s in data.spacing[rows[0]])
        for k in range(len(class_names)):
            hd[v, k] = float(hd95(pred[rows] == k, target[rows] == k, spacing))
    mean_classes = list(config.selection_classes or range(1, len(class_names)))

    def summarise(values: torch.Tensor) -> dict[str, float]:
        values = torch.where(torch.isinf(values), math.nan, values)
        means = {name: float(values[:, k].nanmean()) for k, name in enumerate(class_names)}
        means["mean"] = float(values[:, mean_classes].nanmean(0).nanmean())
        return means

    result = {
        "split": split,
        "classes": class_names,
        "mean_classes": [class_names[k] for k in mean_classes],
        "best_epoch": int(best["epoch"]),
        "volumes": ids,
        "dsc3d": {name: dsc[:, k].tolist() for k, name in enumerate(class_names)},
        "hd95": {name: hd[:, k].tolist() for k, name in enumerate(class_names)},
        f"{split}_dsc3d": summarise(dsc),
        f"{split}_hd95": summarise(hd),
        f"{split}_hd95_n_inf": {
            name: int(torch.isinf(hd[:, k]).sum()) for k, name in enumerate(class_names)
        },
    }
    write_json(run_dir / f"{split}.json", result)
    summary_path = run_dir / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    summary[split] = {k: result[k] for k in ("best_epoch", f"{split}_dsc3d", f"{split}_hd95")}
    write_json(summary_path, summary)
    return result


def predict_run(
    run_dir: str | os.PathLike, images: torch.Tensor, *, device: str | torch.device | None = None
) -> torch.Tensor:
    """Label maps (N, H, W) predicted by `run_dir`'s best checkpoint for images (N, 1, H, W)."""
    from tutorial_lib.run_parts import amp_dtype, build_network

    config = load_run_config(run_dir)
    device = get_device(str(device)) if device is not None else get_device()
    best = load_checkpoint(Path(run_dir) / "checkpoints" / "best.pt")
    n_classes = len(best["class_names"])
    model = build_network(config, n_classes, device, channels_last=False)
    model.load_state_dict(best["model"])
    return predict_labels(
        model, images, batch_size=16, device=device, amp_dtype=amp_dtype(config, device)
    ).cpu()
