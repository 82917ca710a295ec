"""ENet (Paszke et al., 2016) in the variant used by Kervadec et al. for ACDC.

Structure (16 base kernels, projection factor 4, PReLU everywhere, total stride 8):

- initial block: [3x3 stride-2 conv (16 - C channels) | 2x2 max-pool of the input (C channels)];
- stage 1: a down-sampling bottleneck 16 -> 64, four regular bottlenecks (dropout 0.01);
- stage 2: a down-sampling bottleneck 64 -> 128, then regular, dilated 2, asymmetric 5,
  dilated 4, regular, dilated 8, asymmetric 5, dilated 16 (dropout 0.1, 0.01 for dilated);
- stage 3: the same eight without down-sampling, the last one dilated 16 and 128 -> 64;
- decoder: max-unpooling with the stage-2 indices, an up-sampling bottleneck on
  [unpooled | stage-1 output], two regular bottlenecks (64 -> 64 -> 16), max-unpooling with the
  stage-1 indices, an up-sampling bottleneck on [unpooled | initial block], a regular bottleneck,
  then nearest 2x up-sampling, two 3x3 conv-BN-PReLU and a 1x1 conv to the logits.

About 0.46 M parameters for 1 input channel and 4 classes (see `tests/test_models.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import check_input


def conv_bn_prelu(c_in: int, c_out: int, kernel, *, bias: bool = True, **conv) -> nn.Sequential:
    """Conv2d -> BatchNorm2d -> PReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, bias=bias, **conv), nn.BatchNorm2d(c_out), nn.PReLU()
    )


class Bottleneck(nn.Module):
    """Residual bottleneck: 1x1 projection, a middle conv, 1x1 expansion, dropout; + shortcut.

    `kind`: "regular" (3x3), "asym" (5x1 then 1x5), "dilated" (3x3 with `dilation`).
    Shortcut: identity when c_in == c_out, else a 1x1 conv-BN-PReLU, or a plain 3x3 conv when
    `conv_shortcut` is set (the last bottleneck of stage 3). Output: PReLU(shortcut + branch).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        *,
        kind: str = "regular",
        dilation: int = 1,
        dropout: float = 0.1,
        conv_shortcut: bool = False,
        projection: int = 4,
    ) -> None:
        super().__init__()
        mid = c_in // projection
        if kind == "regular":
            middle = conv_bn_prelu(mid, mid, 3, padding=1)
        elif kind == "asym":
            middle = nn.Sequential(
                nn.Conv2d(mid, mid, (5, 1), padding=(2, 0)),
                nn.Conv2d(mid, mid, (1, 5), padding=(0, 2)),
                nn.BatchNorm2d(mid),
                nn.PReLU(),
            )
        elif kind == "dilated":
            middle = conv_bn_prelu(mid, mid, 3, padding=dilation, dilation=dilation)
        else:
            raise ValueError(f"kind: expected 'regular', 'asym' or 'dilated', got {kind!r}")
        self.branch = nn.Sequential(
            conv_bn_prelu(c_in, mid, 1), middle, conv_bn_prelu(mid, c_out, 1), nn.Dropout(dropout)
        )
        if conv_shortcut:
            self.shortcut: nn.Module = nn.Conv2d(c_in, c_out, 3, padding=1)
        elif c_in != c_out:
            self.shortcut = conv_bn_prelu(c_in, c_out, 1)
        else:
            self.shortcut = nn.Identity()
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shortcut(x) + self.branch(x))


class DownBottleneck(nn.Module):
    """Halves H and W: PReLU(zero-padded 2x2 max-pool + branch); also returns the pool indices."""

    def __init__(self, c_in: int, c_out: int, projection: int = 4) -> None:
        super().__init__()
        mid = c_in // projection
        self.extra = c_out - c_in
        self.branch = nn.Sequential(
            conv_bn_prelu(c_in, mid, 2, stride=2),
            conv_bn_prelu(mid, mid, 3, padding=1),
            conv_bn_prelu(mid, c_out, 1),
            nn.Dropout(0.01),
        )
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, indices = F.max_pool2d(x, 2, return_indices=True)
        pooled = F.pad(pooled, (0, 0, 0, 0, 0, self.extra))  # zero channels appended
        return self.act(pooled + self.branch(x)), indices


class UpBottleneck(nn.Sequential):
    """3x3 conv-BN-PReLU (c_in -> c_in/4), 3x3 conv-BN-PReLU, 1x1 conv-BN-PReLU (-> c_out), dropout."""

    def __init__(self, c_in: int, c_out: int, projection: int = 4) -> None:
        mid = c_in // projection
        super().__init__(
            conv_bn_prelu(c_in, mid, 3, padding=1),
            conv_bn_prelu(mid, mid, 3, padding=1),
            conv_bn_prelu(mid, c_out, 1),
            nn.Dropout(0.01),
        )


def _stage(c: int, c_last: int, last_conv_shortcut: bool) -> nn.Sequential:
    """The eight bottlenecks of stages 2 and 3 (dilations 2, 4, 8, 16 interleaved)."""
    plan = [
        ("regular", 1),
        ("dilated", 2),
        ("asym", 1),
        ("dilated", 4),
        ("regular", 1),
        ("dilated", 8),
        ("asym", 1),
        ("dilated", 16),
    ]
    layers = []
    for i, (kind, dilation) in enumerate(plan):
        last = i == len(plan) - 1
        layers.append(
            Bottleneck(
                c,
                c_last if last else c,
                kind=kind,
                dilation=dilation,
                dropout=0.01 if kind == "dilated" else 0.1,
                conv_shortcut=last and last_conv_shortcut,
            )
        )
    return nn.Sequential(*layers)


class ENet(nn.Module):
    """ENet as in Kervadec et al.'s code; input (B, C, H, W), H and W divisible by 8.

    Returns logits (B, n_classes, H, W). `in_channels` must be below 16 (the initial block
    concatenates a (16 - C)-channel convolution with the C-channel max-pooled input).
    """

    stride = 8

    def __init__(self, in_channels: int, n_classes: int, *, base: int = 16) -> None:
        super().__init__()
        if not 1 <= in_channels < base:
            raise ValueError(
                f"in_channels: expected 1 <= in_channels < {base} for ENet, got {in_channels}"
            )
        self.in_channels = in_channels
        self.initial_conv = nn.Conv2d(in_channels, base - in_channels, 3, stride=2, padding=1)
        self.down1 = DownBottleneck(base, 4 * base)
        self.stage1 = nn.Sequential(
            *(Bottleneck(4 * base, 4 * base, dropout=0.01) for _ in range(4))
        )
        self.down2 = DownBottleneck(4 * base, 8 * base)
        self.stage2 = _stage(8 * base, 8 * base, last_conv_shortcut=False)
        self.stage3 = _stage(8 * base, 4 * base, last_conv_shortcut=True)
        self.up1 = UpBottleneck(8 * base, 4 * base)
        self.act_up1 = nn.PReLU()
        self.stage4 = nn.Sequential(Bottleneck(4 * base, 4 * base), Bottleneck(4 * base, base))
        self.up2 = UpBottleneck(2 * base, base)
        self.stage5 = Bottleneck(base, base)
        self.act_up2 = nn.PReLU()
        self.head = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            conv_bn_prelu(base, base, 3, padding=1, bias=False),
            conv_bn_prelu(base, base, 3, padding=1, bias=False),
            nn.Conv2d(base, n_classes, 1),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' initialisation: Xavier-normal conv weights, BN weights ~ N(1, 0.02), BN bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.stride, "ENet")
        initial = torch.cat([self.initial_conv(x), F.max_pool2d(x, 2)], dim=1)
        s1, idx1 = self.down1(initial)
        s1 = self.stage1(s1)
        s2, idx2 = self.down2(s1)
        s3 = self.stage3(self.stage2(s2))
        u1 = F.max_unpool2d(s3, idx2, 2, output_size=s1.shape[-2:])
        u1 = self.act_up1(u1 + self.up1(torch.cat([u1, s1], dim=1)))
        u1 = self.stage4(u1)
        u2 = F.max_unpool2d(u1, idx1, 2, output_size=initial.shape[-2:])
        u2 = self.act_up2(u2 + self.stage5(self.up2(torch.cat([u2, initial], dim=1))))
        return self.head(u2)
