"""Building blocks of AudioSep's ResUNet30: FiLM biases, residual conv blocks, encoder and decoder blocks.

Tensors are spectrogram feature maps ``[batch, channels, time, freq]``. The query
conditions every batch normalisation of the network through FiLM: a linear map of
the query embedding gives one bias per channel, added after the normalisation and
before the activation (AudioSep's FiLM has no scale term).

Module and parameter names follow the official ``models/resunet.py`` (encoder
``conv_block1``, decoder ``conv1``/``bn1``/``conv_block2``; ``bn1``/``conv1``/``bn2``/
``conv2``/``shortcut`` inside a residual block), so an official checkpoint maps onto
these modules by renaming only the FiLM layers (see ``official.py``): the official
code keeps them in one separate module, here each block owns its ``film1``/``film2``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LEAKY_SLOPE = 0.01


def init_layer(layer: nn.Module) -> None:
    """Xavier-uniform weight and zero bias, as the official code initialises convolutions and linears."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


def add_channel_bias(x: Tensor, bias: Tensor) -> Tensor:
    """``x + bias`` per example and channel: x [B, C, T, F], bias [B, C, 1, 1] -> [B, C, T, F], x's layout.

    On a channels-last ``x`` the plain broadcast runs its inner loop over the C channels only
    (8 at the mini widths), which made this add five times slower than on a channels-first map.
    Here the bias is first repeated along F (a [B, 1, F, C] tensor, small), so the inner loop
    covers F x C contiguous elements; the result and its gradients are the same.
    """
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    if not channels_last or bias.shape[2:] != (1, 1):
        return x + bias
    batch, channels, _, freq = x.shape
    row = bias.reshape(batch, 1, 1, channels).expand(batch, 1, freq, channels).contiguous()
    return (x.permute(0, 2, 3, 1) + row).permute(0, 3, 1, 2)


NARROW_CHANNELS = 16  # below this, channels-last batch norm is slow on a multi-threaded CPU


def norm_film_act(x: Tensor, bn: nn.BatchNorm2d, bias: Tensor) -> Tensor:
    """``leaky_relu(bn(x) + bias)``: x [B, C, T, F], bias [B, C, 1, 1] -> [B, C, T, F] in x's layout.

    On a multi-threaded CPU, channels-last batch norm with fewer than 16 channels ran its forward
    and backward 8x slower than channels-first (40 vs 5 ms on an [8, 8, 224, 256] bf16 map, 2
    threads; with one thread channels-last is the faster). Such maps (the mini widths' first
    and last blocks) are normalised, biased and activated channels-first and handed back
    channels-last for the convolution: 1.7x faster over the three ops with their conversions.
    """
    narrow = x.shape[1] < NARROW_CHANNELS and x.device.type == "cpu" and torch.get_num_threads() > 1
    if narrow and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        out = F.leaky_relu(bn(Relayout.apply(x, torch.contiguous_format)) + bias, LEAKY_SLOPE)
        return Relayout.apply(out, torch.channels_last)
    return F.leaky_relu(add_channel_bias(bn(x), bias), LEAKY_SLOPE)


class Relayout(torch.autograd.Function):
    """``x.contiguous(memory_format=layout)`` whose gradient goes back in x's layout.

    (``contiguous`` passes the gradient through in the output's layout, and the element-wise
    backward ops that then meet tensors of the other layout take a strided path.)
    """

    @staticmethod
    def forward(ctx, x: Tensor, layout: torch.memory_format) -> Tensor:
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        ctx.back = torch.channels_last if channels_last else torch.contiguous_format
        return x.contiguous(memory_format=layout)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad.contiguous(memory_format=ctx.back), None


class FiLMBias(nn.Linear):
    """query float [B, query_dim] -> per-channel bias [B, channels, 1, 1]."""

    def __init__(self, query_dim: int, channels: int) -> None:
        super().__init__(query_dim, channels)
        init_layer(self)

    def forward(self, query: Tensor) -> Tensor:
        return super().forward(query)[:, :, None, None]


class ConvBlockRes(nn.Module):
    """Pre-activation residual block, [B, in, T, F] -> [B, out, T, F].

    ``h = conv1(leaky_relu(bn1(x) + film1(query)))``, ``h = conv2(leaky_relu(bn2(h) + film2(query)))``,
    output ``shortcut(x) + h`` (shortcut: a 1x1 conv if in != out, else the identity).
    """

    def __init__(self, in_channels: int, out_channels: int, query_dim: int, momentum: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.film1 = FiLMBias(query_dim, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=momentum)
        self.film2 = FiLMBias(query_dim, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        init_bn(self.bn1)
        init_bn(self.bn2)
        init_layer(self.conv1)
        init_layer(self.conv2)
        if self.shortcut is not None:
            init_layer(self.shortcut)

    def forward(self, x: Tensor, query: Tensor) -> Tensor:
        h = self.conv1(norm_film_act(x, self.bn1, self.film1(query)))
        h = self.conv2(norm_film_act(h, self.bn2, self.film2(query)))
        return (self.shortcut(x) if self.shortcut is not None else x) + h


class EncoderBlock(nn.Module):
    """[B, in, T, F] -> (average-pooled [B, out, T / dt, F / df], skip [B, out, T, F])."""

    def __init__(
        self, in_channels: int, out_channels: int, query_dim: int, downsample: tuple[int, int], momentum: float
    ) -> None:
        super().__init__()
        self.conv_block1 = ConvBlockRes(in_channels, out_channels, query_dim, momentum)
        self.downsample = tuple(downsample)

    def forward(self, x: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.conv_block1(x, query)
        pooled = F.avg_pool2d(skip, kernel_size=self.downsample) if self.downsample != (1, 1) else skip
        return pooled, skip


class DecoderBlock(nn.Module):
    """[B, in, T, F] and skip [B, out, T * ut, F * uf] -> [B, out, T * ut, F * uf]::

        x = conv_transpose(leaky_relu(bn1(input) + film1(query)))    # kernel = stride = upsample
        return conv_block2(concat(x, skip), query)

    (The official block also holds a ``bn2`` and a FiLM ``beta2`` that its forward
    never uses; they are left out here and dropped when loading official weights.)
    """

    def __init__(
        self, in_channels: int, out_channels: int, query_dim: int, upsample: tuple[int, int], momentum: float
    ) -> None:
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=upsample, stride=upsample, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.film1 = FiLMBias(query_dim, in_channels)
        self.conv_block2 = ConvBlockRes(2 * out_channels, out_channels, query_dim, momentum)
        init_bn(self.bn1)
        init_layer(self.conv1)

    def forward(self, x: Tensor, skip: Tensor, query: Tensor) -> Tensor:
        x = self.conv1(norm_film_act(x, self.bn1, self.film1(query)))
        return self.conv_block2(torch.cat((x, skip), dim=1), query)  # upsampled first, skip second
