"""Predictions and scores of a trained network: per-epoch validation and the final test evaluation.

Scores come from `tutorial_lib.metrics` (DSC = 2|P∩G| / (|P| + |G|)). A class absent from both the
prediction and the ground truth of a slice (or volume) has no test DSC (NaN) and is left out of the
means; in the training and validation DSC (and so in model selection) the run's
`config.dice_absent` decides: "skip" (the same) or "one" (scores 1, as in the authors' code).
2-D DSC is averaged over slices; 3-D DSC pools the counts of a volume's slices, then is averaged
over volumes. HD95 (mm, with the volume's spacing) is infinite where a class is predicted but
absent from the ground truth or the reverse; means are over the finite values and
`<split>_hd95_n_inf` counts the others.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tutorial_lib.checkpoint import load_checkpoint, require_keys
from tutorial_lib.config import TrainConfig, config_from_dict
from tutorial_lib.device import get_device
from tutorial_lib.metrics import (
    class_means,
    dice_3d_per_volume,
    dice_from_counts,
    hd95_per_volume,
    mean_dice,
    volume_counts,
)
from tutorial_lib.run_folder import claim_folder
from tutorial_lib.run_setup import (
    amp_dtype,
    build_network,
    load_data,
    resolve_channels_last,
    resolve_data_root,
    selection_classes,
)
from tutorial_lib.runlog import damaged_file, read_json, write_json

__all__ = [
    "autocast_context",
    "predict_labels",
    "dice_empty",
    "validation_scores",
    "volume_column",
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
            out.append(logits.max(1).indices.to(images.device))  # = argmax(1), faster
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, *images.shape[2:], dtype=torch.long)


def dice_empty(config: TrainConfig) -> str:
    """The `empty` argument of `metrics.dice_from_counts` for `config.dice_absent`."""
    return "one" if config.dice_absent == "one" else "nan"


def volume_column(class_name: str, volume_id: str) -> str:
    """The metrics.csv column of one validation volume's 3-D DSC: `val_dsc3d_<class>@<volume>`."""
    return f"val_dsc3d_{class_name}@{volume_id}"


def validation_scores(
    counts: torch.Tensor,
    volume_ids: Sequence[str],
    class_names: Sequence[str],
    selection: Sequence[int],
    *,
    empty: str = "nan",
) -> dict[str, float]:
    """Row entries `val_dsc2d_<class>`, `val_dsc3d_<class>`, their `_mean` over `selection`, and
    each volume's 3-D DSC (`volume_column`).

    `counts` (N, K, 3): `dice_counts` of the N validation slices; 2-D DSC is averaged over slices,
    3-D DSC pools each volume's counts first (`volume_counts`). `empty`: the DSC of a class absent
    from both masks, "nan" (left out of the means) or "one" (`metrics.dice_from_counts`).
    """
    row: dict[str, float] = {}
    ids, pooled = volume_counts(counts, volume_ids)
    per_volume = dice_from_counts(pooled, empty=empty).cpu()
    d2 = mean_dice(dice_from_counts(counts, empty=empty), dim=0)
    d3 = mean_dice(per_volume, dim=0)
    for key, values in (("val_dsc2d", d2), ("val_dsc3d", d3)):
        for k, name in enumerate(class_names):
            row[f"{key}_{name}"] = float(values[k])
        row[f"{key}_mean"] = float(mean_dice(values[list(selection)]))
    for k, name in enumerate(class_names):
        for v, vid in enumerate(ids):
            row[volume_column(name, str(vid))] = float(per_volume[v, k])
    return row


def load_run_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The TrainConfig saved in `run_dir/config.json`."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"run directory: expected {path} (written by train), got none")
    data = read_json(path)
    try:
        return config_from_dict(data)
    except Exception as error:  # noqa: BLE001 - any failure means the file is not a run's config
        raise damaged_file(path, "the config of a run", error) from None


def _saved_data_root(run_dir: Path) -> str | None:
    """The data root `train` recorded in `summary.json`, when it still holds a dataset."""
    summary_path = run_dir / "summary.json"
    saved = read_json(summary_path).get("data_root") if summary_path.is_file() else None
    return saved if saved and Path(saved, "manifest.json").is_file() else None


def _network(
    run_dir: Path, config: TrainConfig, device: torch.device, channels_last: bool
) -> tuple[nn.Module, dict[str, Any]]:
    """The network of the run's `best.pt` checkpoint (`train` writes it) on `device`, and the
    checkpoint."""
    path = run_dir / "checkpoints" / "best.pt"
    best = load_checkpoint(path)
    require_keys(best, ("epoch", "model", "class_names"), path)
    model = build_network(config, len(best["class_names"]), device, channels_last)
    try:
        model.load_state_dict(best["model"])
    except (RuntimeError, TypeError) as error:
        raise damaged_file(path, "the weights of this run", error) from None
    return model, best


def evaluate(
    run_dir: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    data_root: str | os.PathLike | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Evaluate `run_dir/checkpoints/best.pt` on `split`: 3-D DSC and HD95 (mm) per volume and class.

    Writes `run_dir/<split>.json` and the `<split>` entry of `summary.json`; returns
    `{"split", "classes", "selection_classes", "best_epoch", "volumes", "dsc3d": {class: [per
    volume]}, "hd95": {...}, "<split>_dsc3d": {class: mean, "mean": ...}, "<split>_hd95": {...},
    "<split>_hd95_n_inf": {class: count}}` (see the module docstring for the empty-class
    conventions; "mean" is over the `selection_classes`).
    """
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    with claim_folder(run_dir, "run"):  # test.json and summary.json: one writer at a time
        return _evaluate(run_dir, config, device, data_root, split)


def _evaluate(
    run_dir: Path,
    config: TrainConfig,
    device: str | torch.device | None,
    data_root: str | os.PathLike | None,
    split: str,
) -> dict[str, Any]:
    device = get_device(str(device)) if device is not None else get_device()
    root = resolve_data_root(
        config, data_root if data_root is not None else _saved_data_root(run_dir)
    )
    data = load_data(config, root, split)
    names = list(data.class_names)
    channels_last = resolve_channels_last(config, device)
    model, best = _network(run_dir, config, device, channels_last)
    batch_size = max(config.batch_size, 16)
    amp = amp_dtype(config, device)
    pred = predict_labels(
        model,
        data.images,
        batch_size=batch_size,
        device=device,
        amp_dtype=amp,
        channels_last=channels_last,
    ).cpu()
    # each volume's slices together, in slice order: HD95 measures the stacked 3-D masks
    order = torch.cat(list(data.volumes().values()))
    pred, target, spacing = pred[order], data.labels.cpu().long()[order], data.spacing[order]
    volume_ids = [data.volume_ids[i] for i in order.tolist()]
    ids, dsc = dice_3d_per_volume(pred, target, volume_ids, len(names))
    _, hd = hd95_per_volume(pred, target, volume_ids, len(names), spacing)
    selection = selection_classes(config, len(names))
    result = {
        "split": split,
        "classes": names,
        "selection_classes": [names[k] for k in selection],
        "best_epoch": int(best["epoch"]),
        "volumes": ids,
        "dsc3d": {name: dsc[:, k].tolist() for k, name in enumerate(names)},
        "hd95": {name: hd[:, k].tolist() for k, name in enumerate(names)},
        f"{split}_dsc3d": class_means(dsc, names, selection),
        f"{split}_hd95": class_means(hd, names, selection),
        f"{split}_hd95_n_inf": {
            name: int(torch.isinf(hd[:, k]).sum()) for k, name in enumerate(names)
        },
    }
    _write_results(run_dir, split, result)
    return result


def _write_results(run_dir: Path, split: str, result: dict[str, Any]) -> None:
    """`run_dir/<split>.json`, and the summary's `<split>` entry (best epoch, the means)."""
    write_json(run_dir / f"{split}.json", result)
    summary_path = run_dir / "summary.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    summary[split] = {k: result[k] for k in ("best_epoch", f"{split}_dsc3d", f"{split}_hd95")}
    write_json(summary_path, summary)


def predict_run(
    run_dir: str | os.PathLike, images: torch.Tensor, *, device: str | torch.device | None = None
) -> torch.Tensor:
    """Label maps (N, H, W) predicted by `run_dir`'s best checkpoint for images (N, 1, H, W)."""
    config = load_run_config(run_dir)
    device = get_device(str(device)) if device is not None else get_device()
    model, _ = _network(Path(run_dir), config, device, channels_last=False)
    return predict_labels(
        model, images, batch_size=16, device=device, amp_dtype=amp_dtype(config, device)
    ).cpu()
