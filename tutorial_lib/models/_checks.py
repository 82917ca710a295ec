"""Input validation shared by the segmentation networks."""

from __future__ import annotations

import torch


def check_input(x: torch.Tensor, in_channels: int, stride: int, name: str) -> None:
    """Raise ValueError unless `x` is (B, in_channels, H, W) with H and W divisible by `stride`."""
    if x.ndim != 4:
        raise ValueError(
            f"x: expected a 4-D input (B, C, H, W) for {name}, "
            f"got {x.ndim} dimensions, shape {tuple(x.shape)}"
        )
    if x.shape[1] != in_channels:
        raise ValueError(
            f"x: expected {in_channels} input channel(s) for {name}, "
            f"got {x.shape[1]} (shape {tuple(x.shape)})"
        )
    h, w = x.shape[-2:]
    if h % stride or w % stride:
        raise ValueError(
            f"x: expected H and W divisible by {name}'s total stride {stride}, got H={h}, W={w}"
        )
