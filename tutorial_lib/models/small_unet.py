"""A small, fast U-Net for CPU teaching runs.

`depth` resolution levels (total stride 2**(depth-1)), `base` channels at full resolution,
doubled at each level. Each level: two (3x3 conv -> norm -> ReLU) blocks. Down: 2x2 max-pool.
Up: nearest-neighbour 2x upsampling, concatenation with the skip connection, then the level block.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import check_input

NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """Two (3x3 conv -> norm -> ReLU) layers."""

    def __init__(self, c_in: int, c_out: int, norm: str) -> None:
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
        )


class SmallUNet(nn.Module):
    """U-Net with `depth` levels and `base` channels; output logits (B, n_classes, H, W)."""

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        *,
        base: int = 16,
        depth: int = 3,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth: expected an integer >= 1, got {depth}")
        if base < 1:
            raise ValueError(f"base: expected an integer >= 1, got {base}")
        if norm not in NORMS:
            raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")
        self.in_channels = in_channels
        self.stride = 2 ** (depth - 1)
        widths = [base * 2**i for i in range(depth)]
        self.down = nn.ModuleList()
        c_prev = in_channels
        for w in widths:
            self.down.append(ConvBlock(c_prev, w, norm))
            c_prev = w
        self.up = nn.ModuleList(
            ConvBlock(widths[i + 1] + widths[i], widths[i], norm)
            for i in reversed(range(depth - 1))
        )
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.head = nn.Conv2d(widths[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.stride, "SmallUNet")
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = block(torch.cat([self.upsample(x), skips.pop()], dim=1))
        return self.head(x)
