"""Convolution blocks of the OpenSep U-Net: feature maps are ``[batch, channels, time, freq]``."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each followed by batch norm and leaky ReLU, with a residual 1x1 shortcut.

    [B, in, T, F] -> [B, out, T, F].
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = F.leaky_relu(self.bn1(self.conv1(x)), 0.01)
        h = F.leaky_relu(self.bn2(self.conv2(h)), 0.01)
        return self.shortcut(x) + h


class Down(nn.Module):
    """ConvBlock then 2x2 average pooling: [B, in, T, F] -> (pooled [B, out, T/2, F/2], skip [B, out, T, F])."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = ConvBlock(in_channels, out_channels)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.block(x)
        return F.avg_pool2d(skip, 2), skip


class Up(nn.Module):
    """2x2 transposed conv, concat skip, ConvBlock: [B, in, T, F] + skip [B, out, 2T, 2F] -> [B, out, 2T, 2F]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.block = ConvBlock(2 * out_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.block(torch.cat((self.up(x), skip), dim=1))
