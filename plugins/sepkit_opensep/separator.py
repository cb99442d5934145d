"""``OpenSepUNetSeparator``: OpenSep's text-conditioned U-Net separator (registered as ``opensep-unet``).

OpenSep (arXiv 2409.19270, sec. 3.3) separates with a U-Net on the mixture spectrogram whose
lower levels hold self-attention and cross-attention layers; the cross-attention keys and
values are the text encoder's tokens of one parsed source's description. Here::

    X = mixture frames, complex [B, T, input_dim]        (stft encoder, e.g. n_fft 1024 -> 513 bins)
    h = log(1 + |X|), last bin dropped, time zero-padded to a multiple of 2^depth   [B, 1, T', bins - 1]
    h = pre_conv(h)                                       1x1 conv to C_0 channels
    depth encoder levels: ConvBlock (C_i) [+ TextAttentionBlock on the lowest ``attention_levels``],
        2x2 average pooling
    bottleneck: ConvBlock + TextAttentionBlock
    depth decoder levels: 2x2 transposed conv, concat skip, ConvBlock [+ TextAttentionBlock]
    m = sigmoid(after_conv(h)) [B, T, bins - 1], the last bin copies its neighbour
    Y = m · X                                            (complex [B, T, input_dim]: mixture phase)

``C_i = base_channels * channel_multipliers[i]``; ``depth = len(channel_multipliers)``;
``input_dim - 1`` must be divisible by ``2^depth``. Text tokens ``query.tokens`` [B, N, query_dim]
(masked by ``query.mask``) condition every attention block; the pooled embedding is not used.
Self-attention ignores time steps past each row's length. The separator extracts; the pipeline
turns "remove" into the mixture minus the extraction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import Tensor, nn

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.oracles import IdealRatioMaskOracle

from .attention import TextAttentionBlock
from .blocks import ConvBlock, Down, Up


class OpenSepUNetSeparator(IdealRatioMaskOracle, Separator):
    """mixture complex [B, T, input_dim] + query tokens [B, N, query_dim] -> target complex [B, T, input_dim]."""

    @dataclass
    class Config:
        input_dim: int = positive(MISSING)  # STFT bins; set by the pipeline from the audio encoder
        query_dim: int = positive(MISSING)  # text token width; set by the pipeline from the text encoder
        base_channels: int = positive(32)
        channel_multipliers: list[int] = positive(default_factory=lambda: [1, 2, 4, 8, 8, 8])
        attention_levels: int = positive(2)  # lowest resolutions with attention (1: the bottleneck only)
        heads: int = positive(8)

    consumes = "complex_stft"
    produces = "complex_stft"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        multipliers = list(config.channel_multipliers)
        depth = len(multipliers)
        if depth < 1 or min(multipliers) < 1 or config.base_channels < 1:
            raise SepkitError(
                f"opensep-unet: channel_multipliers must be one or more positive ints and base_channels positive, "
                f"got {multipliers} and {config.base_channels}"
            )
        if config.input_dim < 2 or (config.input_dim - 1) % 2**depth:
            raise SepkitError(
                f"opensep-unet: input_dim {config.input_dim} must be 1 + a multiple of {2**depth} (the last bin is "
                f"dropped, then frequency is halved {depth} times), e.g. 513 for n_fft 1024; change n_fft or "
                "channel_multipliers"
            )
        if not 1 <= config.attention_levels <= depth + 1:
            raise SepkitError(
                f"opensep-unet: attention_levels must be in 1..{depth + 1}, got {config.attention_levels}"
            )
        channels = [config.base_channels * m for m in multipliers]
        attended = channels[depth + 1 - config.attention_levels :] + [channels[-1]]
        bad = [c for c in attended if c % config.heads]
        if config.heads < 1 or bad:
            raise SepkitError(
                f"opensep-unet: attention widths {attended} must be divisible by heads={config.heads}; "
                "change heads or base_channels"
            )
        self.input_dim = self.output_dim = config.input_dim
        self.query_dim = config.query_dim
        self.depth = depth
        self.channels = tuple(channels)
        q, heads = config.query_dim, config.heads
        first_attended = depth + 1 - config.attention_levels  # levels >= this have attention (bottleneck = depth)

        def attention(level: int, width: int) -> nn.Module:
            return TextAttentionBlock(width, q, heads) if level >= first_attended else None

        self.pre_conv = nn.Conv2d(1, channels[0], 1)
        self.down = nn.ModuleList(Down(channels[max(i - 1, 0)], channels[i]) for i in range(depth))
        self.down_attention = nn.ModuleList(attention(i, channels[i]) for i in range(depth))
        self.bottleneck = ConvBlock(channels[-1], channels[-1])
        self.bottleneck_attention = TextAttentionBlock(channels[-1], q, heads)
        self.up = nn.ModuleList(Up(channels[min(i + 1, depth - 1)], channels[i]) for i in range(depth))
        self.up_attention = nn.ModuleList(attention(i, channels[i]) for i in range(depth))
        self.after_conv = nn.Conv2d(channels[0], 1, 1)

    def mask_logits(self, magnitude: Tensor, valid_frames: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """magnitude [B, T, bins] -> mask logits [B, T, bins - 1]; valid_frames long [B]; text [B, N, query_dim]."""
        frames = magnitude.shape[1]
        x = torch.log1p(magnitude[..., :-1])[:, None]
        x = F.pad(x, (0, 0, 0, -frames % 2**self.depth))
        x = self.pre_conv(x)
        skips = []
        for level, (down, attn) in enumerate(zip(self.down, self.down_attention)):
            x, skip = down(x)
            if attn is not None:
                skip = attn(skip, _frames_at(valid_frames, level), text, text_mask)
            skips.append(skip)
        x = self.bottleneck(x)
        x = self.bottleneck_attention(x, _frames_at(valid_frames, self.depth), text, text_mask)
        for level in reversed(range(self.depth)):
            x = self.up[level](x, skips[level])
            if self.up_attention[level] is not None:
                x = self.up_attention[level](x, _frames_at(valid_frames, level), text, text_mask)
        return self.after_conv(x)[:, 0, :frames].float()

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        frames = mixture.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or not frames.is_complex():
            raise SepkitError(
                f"opensep-unet expects complex STFT frames [batch, frames, {self.input_dim}], "
                f"got {frames.dtype}{tuple(frames.shape)}"
            )
        if query.tokens.shape[-1] != self.query_dim:
            raise SepkitError(
                f"opensep-unet expects text tokens of width {self.query_dim}, got {query.tokens.shape[-1]}"
            )
        dtype = self.pre_conv.weight.dtype
        with torch.autocast(device_type=frames.device.type, enabled=False):
            spec = frames.to(torch.complex64)
            magnitude = spec.abs()
        valid = mixture.lengths.to(frames.device).clamp(1, frames.shape[1])
        logits = self.mask_logits(magnitude.to(dtype), valid, query.tokens.to(dtype), query.mask.bool())
        mask = torch.sigmoid(torch.cat((logits, logits[..., -1:]), dim=-1))
        return AudioFeatures(frames=spec * mask, lengths=mixture.lengths, frame_rate=mixture.frame_rate)


def _frames_at(valid_frames: Tensor, level: int) -> Tensor:
    """Time steps holding audio after ``level`` 2x poolings: ceil(valid / 2^level), long [B]."""
    return torch.div(valid_frames + 2**level - 1, 2**level, rounding_mode="floor")
