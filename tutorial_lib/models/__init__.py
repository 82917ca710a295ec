"""Segmentation networks: `build_model(name, in_channels, n_classes, **kwargs)`.

- "enet": ENet as in Kervadec et al. (ACDC), ~0.46 M parameters, total stride 8;
- "residual_unet": residual U-Net as in Kervadec et al. (PROMISE12), ~19.6 M parameters with
  base 32, total stride 16 (options: base, depth);
- "small_unet": a small U-Net for CPU teaching runs (options: base, depth, norm), stride 2**(depth-1).

Every network takes (B, C, H, W) with H, W divisible by its `stride` attribute (ValueError
otherwise) and returns logits (B, n_classes, H, W). Initialisation only draws from torch's global
generator, so `torch.manual_seed(s)` before `build_model` gives the same weights.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .enet import ENet
from .residual_unet import ResidualUNet
from .small_unet import SmallUNet

MODELS: dict[str, Callable[..., nn.Module]] = {
    "enet": ENet,
    "residual_unet": ResidualUNet,
    "small_unet": SmallUNet,
}


def build_model(name: str, in_channels: int, n_classes: int, **kwargs) -> nn.Module:
    """Return the network `name` with `in_channels` inputs and `n_classes` output logits.

    Taught in notebook 04.
    """
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    if in_channels < 1 or n_classes < 1:
        raise ValueError(
            f"in_channels, n_classes: expected both >= 1, got in_channels={in_channels}, "
            f"n_classes={n_classes}"
        )
    return MODELS[name](in_channels, n_classes, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters. Taught in notebook 06."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = ["MODELS", "build_model", "count_parameters"]
