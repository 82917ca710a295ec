"""Pieces of a training run built from its TrainConfig: data, network, loss, LR rule, precision."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tutorial_lib.presets import TrainConfig

__all__ = [
    "LRSchedule",
    "resolve_data_root",
    "load_data",
    "amp_dtype",
    "fits_on_device",
    "build_network",
    "compile_network",
    "compile_mode",
    "COMPILE_MODES",
    "build_loss",
    "augment",
    "stat_columns",
    "init_bias_from_sizes",
]


@dataclasses.dataclass
class LRSchedule:
    """The authors' rule: after epoch i, halve the LR when `i % (best_epoch + 20) == 0`.

    "paper" fires after epoch 0 too (their code); "paper-skip-epoch0" skips that; "constant" never.
    """

    rule: str
    lr: float

    def step(self, epoch: int, best_epoch: int, optimizer: torch.optim.Optimizer) -> bool:
        fire = self.rule != "constant" and epoch % (best_epoch + 20) == 0
        if self.rule == "paper-skip-epoch0":
            fire = fire and epoch > 0
        if fire:
            self.lr *= 0.5
            for group in optimizer.param_groups:
                group["lr"] = self.lr
        return fire

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "lr": self.lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rule, self.lr = state["rule"], float(state["lr"])


def resolve_data_root(config: TrainConfig, data_root: str | os.PathLike | None) -> Path:
    """`data_root` if given; for toy datasets without one, the cached generated dataset."""
    if data_root is not None:
        root = Path(data_root)
        if not (root / "manifest.json").is_file():
            raise ValueError(
                f"data root: expected a prepared dataset with manifest.json at {root}, found none"
            )
        return root
    data = config.data
    if not data.dataset.startswith("toy-"):
        raise ValueError(
            f"data root: dataset {data.dataset!r} needs a prepared folder (python -m tutorial_lib prepare), got none"
        )
    from tutorial_lib.data.toy.dataset import ensure_toy_dataset

    kwargs: dict[str, Any] = {"size": data.size, "seed": data.generator_seed}
    if data.n_patients is not None:
        kwargs["n_patients"] = data.n_patients
    return Path(ensure_toy_dataset(data.dataset, None, **kwargs, **dict(data.shape_options)))


def load_data(config: TrainConfig, root: Path, split: str):
    from tutorial_lib.data.datasets import load_split

    data = load_split(root, split)
    if split == "train" and config.data.max_train_slices is not None:
        data = data.subset(range(min(config.data.max_train_slices, len(data.images))))
    return data


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    if config.amp == "off":
        return None
    if config.amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return device.type == "mps" or device.type == "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.25 * free


def build_network(
    config: TrainConfig, n_classes: int, device: torch.device, channels_last: bool
) -> nn.Module:
    from tutorial_lib.models import build_model

    model = build_model(config.model, 1, n_classes, **dict(config.model_options)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile: bool | str) -> str | None:
    """The torch.compile mode asked for: False -> None (eager), True -> "default", or a mode name."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return "default"
    if compile not in COMPILE_MODES:
        raise ValueError(
            f"compile: expected True, False or one of {COMPILE_MODES}, got {compile!r}"
        )
    return compile


def compile_network(model: nn.Module, mode: str = "default") -> nn.Module:
    """`torch.compile(model, mode=mode)`: shares the parameters of `model`, whose state_dict stays
    unprefixed. "reduce-overhead" also replays CUDA graphs on a GPU. Shapes are static: the short
    last batch of an epoch and validation get their own graphs, compiled once in the first epoch,
    and the full batches keep kernels specialised to their size.

    Raises ValueError where this torch has no working `torch.compile` (older than 2.0, or a
    platform / Python version it does not support).
    """
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        raise ValueError(
            f"compile: expected torch.compile (torch 2.0 or newer), got torch {torch.__version__}"
        )
    try:
        return compile_fn(model, mode=mode, dynamic=False)
    except RuntimeError as error:
        raise ValueError(
            f"compile: expected torch.compile to be supported here, got {type(error).__name__}: {error}"
        ) from error


def build_loss(config: TrainConfig):
    """The descriptor loss for "descriptors" runs (None for "ce")."""
    if config.method == "ce":
        return None
    from tutorial_lib.losses import ShapeDescriptorLoss

    return ShapeDescriptorLoss(
        list(config.terms),
        penalty=config.penalty,
        normalisation=config.normalisation,
        empty_policy=config.empty_policy,
        check_inputs=False,
    )


def augment(config: TrainConfig, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
    """The preset's online augmentation of a batch (labels follow the geometric transforms)."""
    if not config.augment.enabled:
        return x, y
    from tutorial_lib.data.augment import augment_batch

    a = config.augment
    return augment_batch(
        x,
        y,
        generator,
        p=a.p,
        rotation_deg=a.rotation_deg,
        scale_range=tuple(a.scale),
        blur_sigma=tuple(a.blur_sigma),
    )


def stat_columns(stats: dict[str, torch.Tensor]) -> dict[str, str]:
    """CSV column -> key of `ShapeDescriptorLoss.last_stats`: "c_size_violation" -> "size/violation".

    "total" (the loss itself) is left out: it is the `train_loss` column already.
    """
    return {"c_" + key.replace("/", "_"): key for key in stats if key != "total"}


@torch.no_grad()
def init_bias_from_sizes(model: nn.Module, labels: torch.Tensor, n_classes: int) -> None:
    """Set the output layer's bias to log(mean class size / image size), centred.

    At initialisation every pixel then predicts the average class proportions, so the summed
    probabilities start near the true sizes instead of H·W/K each. Only the mean of the size
    descriptor over the training set is used (no pixel label). The output layer is the last
    Conv2d / ConvTranspose2d with `n_classes` output channels and a bias.
    """
    last = None
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is not None:
            if module.out_channels == n_classes:
                last = module
    if last is None:
        raise ValueError(
            f"init_bias: expected an output convolution with {n_classes} channels and a bias, found none"
        )
    counts = torch.bincount(labels.reshape(-1).long(), minlength=n_classes)[:n_classes]
    log_prior = torch.log(counts.double().clamp_min(1) / counts.sum())
    last.bias.copy_((log_prior - log_prior.mean()).to(last.bias))
