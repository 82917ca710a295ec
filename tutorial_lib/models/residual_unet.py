"""Residual U-Net (FusionNet-like) in the variant used by Kervadec et al. for PROMISE12.

Each level is a residual block: `c1 = conv-BN-act(x)`; `c2 = [conv-BN-act, conv-BN-act, conv-BN](c1)`;
`out = conv-BN-act(c1 + c2)`, all 3x3. Encoder: four blocks (base, 2, 4, 8 x base channels) each
followed by a 2x2 max-pool, then a bridge block (16 x base); LeakyReLU(0.2). Decoder: a 3x3
stride-2 transposed conv-BN-ReLU halves the channels, the skip is *averaged* in,
(up + skip) / 2, then a residual block with ReLU. Head: a 3x3 conv to the logits.
Total stride 16; about 19.6 M parameters with base 32, 1 input channel and 2 classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ._checks import check_input


def conv_bn_act(c_in: int, c_out: int, act: nn.Module) -> nn.Sequential:
    """3x3 conv (with bias) -> BatchNorm2d -> act."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), act)


class ResidualBlock(nn.Module):
    """conv_bn_act, then a 3-conv residual branch added to it, then conv_bn_act."""

    def __init__(self, c_in: int, c_out: int, act: nn.Module) -> None:
        super().__init__()
        self.first = conv_bn_act(c_in, c_out, act)
        self.branch = nn.Sequential(
            conv_bn_act(c_out, c_out, act),
            conv_bn_act(c_out, c_out, act),
            nn.Conv2d(c_out, c_out, 3, padding=1),
            nn.BatchNorm2d(c_out),
        )
        self.last = conv_bn_act(c_out, c_out, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x)
        return self.last(x + self.branch(x))


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 stride-2 transposed conv (doubles H, W) -> BatchNorm2d -> ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class ResidualUNet(nn.Module):
    """Residual U-Net; input (B, C, H, W) with H and W divisible by 16; logits (B, K, H, W)."""

    def __init__(self, in_channels: int, n_classes: int, *, base: int = 32, depth: int = 4) -> None:
        super().__init__()
        if depth < 1 or base < 1:
            raise ValueError(f"base, depth: expected both >= 1, got base={base}, depth={depth}")
        self.in_channels = in_channels
        self.stride = 2**depth
        widths = [base * 2**i for i in range(depth + 1)]  # last one: the bridge
        enc_act = nn.LeakyReLU(0.2)
        dec_act = nn.ReLU()
        self.encoder = nn.ModuleList()
        c_prev = in_channels
        for w in widths:
            self.encoder.append(ResidualBlock(c_prev, w, enc_act))
            c_prev = w
        self.pool = nn.MaxPool2d(2)
        self.ups = nn.ModuleList(up_block(widths[i + 1], widths[i]) for i in reversed(range(depth)))
        self.decoder = nn.ModuleList(
            ResidualBlock(widths[i], widths[i], dec_act) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(base, n_classes, 3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation: Conv2d weights ~ N(0, 2 / (k*k*C_out)), BN weight 1, bias 0.

        (Transposed convolutions keep PyTorch's default initialisation, as in their code.)
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.stride, "ResidualUNet")
        skips = []
        for i, block in enumerate(self.encoder):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()
        for up, block in zip(self.ups, self.decoder, strict=True):
            x = block((up(x) + skips.pop()) / 2)
        return self.head(x)
