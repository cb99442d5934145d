"""LASS-Net's ResUNet blocks, written as their differences from AudioSep's (``sepkit_resunet.blocks``).

Tensors are spectrogram feature maps ``[batch, channels, time, freq]``; ``cond`` is the
conditioning vector ``[batch, cond_dim]`` (LASS-Net: 256-d).

What LASS-Net (github.com/liuxubo717/LASS, ``model/modules.py``, ``model/film.py``) does
differently from AudioSep's ResUNet30:

- FiLM is a two-layer MLP ``ReLU(Linear(2C -> C)(ReLU(Linear(cond -> 2C))))`` giving a per-channel
  bias (still no scale), added **after** each convolution (AudioSep: a linear bias added after each
  batch norm, before the activation), and a third FiLM on the 1x1 shortcut when channels change.
- Batch norms use torch's default momentum 0.1.
- Encoder blocks hold two residual blocks before the 2x2 average pooling (AudioSep: one).
- Decoder blocks upsample with ``relu(bn1(x))`` -> a 3x3 transposed convolution of stride 2 (no
  FiLM there), drop the last time row (2n + 1 -> 2n; the frequency axis keeps 2n + 1, matching
  the floor-pooled odd widths), concatenate the skip and apply two residual blocks.

The residual block reuses ``sepkit.layers.resunet.ConvBlockRes`` (same batch norms, 3x3
convolutions, 1x1 shortcut and initialisation) and only replaces its FiLM layers and forward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from sepkit.layers.resunet import LEAKY_SLOPE, ConvBlockRes, init_layer

BN_MOMENTUM = 0.1  # LASS-Net's residual blocks build nn.BatchNorm2d without a momentum argument


class FiLMMLP(nn.Sequential):
    """cond [B, cond_dim] -> per-channel bias [B, channels, 1, 1] through Linear-ReLU-Linear-ReLU."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__(nn.Linear(cond_dim, 2 * channels), nn.ReLU(), nn.Linear(2 * channels, channels), nn.ReLU())

    def forward(self, cond: Tensor) -> Tensor:
        return super().forward(cond)[:, :, None, None]


class LASSConvBlockRes(ConvBlockRes):
    """Residual block with post-convolution FiLM, [B, in, T, F] -> [B, out, T, F]::

    h = film1(conv1(leaky_relu(bn1(x))));  h = film2(conv2(leaky_relu(bn2(h))))
    return film_res(shortcut(x)) + h        (x + h if in == out)
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int) -> None:
        super().__init__(in_channels, out_channels, cond_dim, BN_MOMENTUM)
        self.film1 = FiLMMLP(cond_dim, out_channels)
        self.film2 = FiLMMLP(cond_dim, out_channels)
        self.film_res = FiLMMLP(cond_dim, out_channels) if self.shortcut is not None else None

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        h = self.conv1(F.leaky_relu(self.bn1(x), LEAKY_SLOPE)) + self.film1(cond)
        h = self.conv2(F.leaky_relu(self.bn2(h), LEAKY_SLOPE)) + self.film2(cond)
        if self.shortcut is None:
            return x + h
        return self.shortcut(x) + self.film_res(cond) + h


class LASSEncoderBlock(nn.Module):
    """[B, in, T, F] -> (2x2 average-pooled [B, out, T / 2, floor(F / 2)], skip [B, out, T, F])."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int) -> None:
        super().__init__()
        self.conv_block1 = LASSConvBlockRes(in_channels, out_channels, cond_dim)
        self.conv_block2 = LASSConvBlockRes(out_channels, out_channels, cond_dim)

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.conv_block2(self.conv_block1(x, cond), cond)
        return F.avg_pool2d(skip, kernel_size=2), skip


class LASSDecoderBlock(nn.Module):
    """[B, in, T, F] and skip [B, out, 2T, 2F + 1] -> [B, out, 2T, 2F + 1]::

    x = conv_transpose3x3/2(relu(bn1(x)))[:, :, :-1]   # [B, out, 2T, 2F + 1]
    return conv_block3(conv_block2(concat(x, skip)))
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=2, bias=False)
        self.conv_block2 = LASSConvBlockRes(2 * out_channels, out_channels, cond_dim)
        self.conv_block3 = LASSConvBlockRes(out_channels, out_channels, cond_dim)

    def forward(self, x: Tensor, skip: Tensor, cond: Tensor) -> Tensor:
        x = self.conv1(F.relu(self.bn1(x)))[:, :, :-1]  # drop the extra time row of the 3x3 kernel
        x = self.conv_block2(torch.cat((x, skip), dim=1), cond)  # upsampled first, skip second
        return self.conv_block3(x, cond)


__all__ = ["FiLMMLP", "LASSConvBlockRes", "LASSDecoderBlock", "LASSEncoderBlock", "init_layer"]
