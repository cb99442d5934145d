"""The spectrogram U-Net of SGN (after Sound of Pixels, Zhao et al. 2018, which SGN builds on).

Tensors are feature maps ``[batch, channels, time, freq]``.

- ``UNetEncoder``: ``depth`` blocks ``Conv2d(4x4, stride 2, pad 1) -> BatchNorm -> LeakyReLU(0.2)``
  (no norm in the first), halving time and frequency each time; returns every block's output.
- ``UNetDecoder``: per level ``Upsample(x2, bilinear) -> Conv2d(3x3) -> BatchNorm -> ReLU`` on the
  concatenation of the upsampled map and the encoder's skip, ending in ``out_channels`` feature
  channels at the input resolution (Sound of Pixels: 32 "audio feature" channels that a
  per-source vector turns into a mask by a dot product).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def down_block(in_channels: int, out_channels: int, norm: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class UNetEncoder(nn.Module):
    """[B, 1, T, F] (T, F multiples of 2^depth) -> [h_1 .. h_depth], h_k [B, channels[k-1], T / 2^k, F / 2^k]."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        ins = [1, *channels[:-1]]
        self.blocks = nn.ModuleList(down_block(i, o, norm=k > 0) for k, (i, o) in enumerate(zip(ins, channels)))

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs


class UNetDecoder(nn.Module):
    """bottleneck [B, channels[-1], T / 2^depth, F / 2^depth] + skips -> features [B, out_channels, T, F]."""

    def __init__(self, channels: list[int], out_channels: int) -> None:
        super().__init__()
        depth = len(channels)
        blocks = []
        for k in range(depth - 1, 0, -1):  # from the bottleneck up to level 1, concatenating skip k
            c_in = channels[k] if k == depth - 1 else 2 * channels[k]
            blocks.append(up_block(c_in, channels[k - 1]))
        self.blocks = nn.ModuleList(blocks)
        self.last = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(2 * channels[0] if depth > 1 else channels[0], out_channels, kernel_size=3, padding=1),
        )

    def forward(self, bottleneck: Tensor, skips: list[Tensor]) -> Tensor:
        """skips: the encoder outputs h_1 .. h_{depth-1} (h_depth is ``bottleneck``)."""
        x = bottleneck
        for block, skip in zip(self.blocks, reversed(skips)):
            x = torch.cat((block(x), skip), dim=1)
        return self.last(x)
