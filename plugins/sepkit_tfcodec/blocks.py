"""TF-Codec's causal building blocks (time is causal everywhere; frequency is not).

- ``EncoderConv``: Conv2d over [B, C, frames, bins] with a (2, 5) kernel, time padded on the
  left only, frequency stride s, BatchNorm, PReLU.
- ``DecoderDeconv``: the mirror: ConvTranspose2d with frequency stride s, the extra trailing
  frame cut (so output frame t sees input frames t-1 and t) and the bins cropped to the size
  the matching encoder layer had.
- ``TCMBlock``: temporal convolution module on [B, C, frames]: 1x1 conv to ``mid`` channels,
  causal dilated depthwise conv, 1x1 conv back, residual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class EncoderConv(nn.Module):
    """[B, C_in, N, F] -> [B, C_out, N, (F + 2*pad - k) // stride + 1]."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: int, pad: int, norm: bool = True
    ) -> None:
        super().__init__()
        self.kernel, self.pad = kernel, pad
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, (1, stride), bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-3) if norm else nn.Identity()
        self.act = nn.PReLU(init=0.5) if norm else nn.Identity()
        nn.init.xavier_normal_(self.conv.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = F.pad(x, (self.pad, self.pad, self.kernel[0] - 1, 0))
        return self.act(self.norm(self.conv(x)))


class DecoderDeconv(nn.Module):
    """[B, C_in, N, F] -> [B, C_out, N, out_bins] (causal in time)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: int, pad: int, out_bins: int
    ) -> None:
        super().__init__()
        self.kernel, self.pad, self.out_bins = kernel, pad, out_bins
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, kernel, (1, stride), bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.act = nn.PReLU(init=0.5)
        nn.init.xavier_normal_(self.deconv.weight)

    def forward(self, x: Tensor) -> Tensor:
        frames = x.shape[2]
        x = self.deconv(x)[:, :, :frames, self.pad : self.pad + self.out_bins]
        return self.act(self.norm(x))


class TCMBlock(nn.Module):
    """[B, C, N] -> [B, C, N]; receptive field (kernel - 1) * dilation past frames."""

    def __init__(self, channels: int, mid_channels: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.left = (kernel - 1) * dilation
        self.inp = nn.Sequential(
            nn.Conv1d(channels, mid_channels, 1, bias=False), nn.BatchNorm1d(mid_channels, eps=1e-3), nn.PReLU(init=0.5)
        )
        self.depthwise = nn.Conv1d(
            mid_channels, mid_channels, kernel, dilation=dilation, groups=mid_channels, bias=False
        )
        self.mid = nn.Sequential(nn.BatchNorm1d(mid_channels, eps=1e-3), nn.PReLU(init=0.5))
        self.out = nn.Conv1d(mid_channels, channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        h = self.mid(self.depthwise(F.pad(h, (self.left, 0))))
        return x + self.out(h)


class GRUBlock(nn.Module):
    """A one-layer GRU over [B, C, N] with a learned initial state (causal)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gru = nn.GRU(channels, channels, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(1, 1, channels))

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.gru(x.transpose(1, 2), self.h0.expand(-1, x.shape[0], -1).contiguous())
        return out.transpose(1, 2)
