"""``TFCodecNet``: the non-predictive TF-Codec network (Jiang, Peng, Lu; microsoft/TF-Codec), 16 kHz.

    wave [B, T] --CompressedSTFT--> [B, 2, N, 161]     (20 ms Hann window, 5 ms hop, |X|**0.3)
      --4 x EncoderConv (2x5 kernels; channels 16, 32, 64, 64; bin strides 1, 4, 4, 2)--> [B, 64, N, 5]
      --flatten--> [B, 320, N] --4 TCM blocks (dilation 1, 2, 4, 8)--> --GRU--> --1x1 conv--> [B, 480, N]
      --GroupVectorQuantizer (4 hops combined, 16 groups x 1024 codes of 120 values)--> codes [B, 16, N/4]
    codes --embed--> [B, 480, N] --1x1 conv--> [B, 320, N] --4 TCM--> --GRU--> --4 TCM-->
      --unflatten--> [B, 64, N, 5] --3 DecoderDeconv + EncoderConv (to 2 channels) + 2x5 conv-->
      [B, 2, N, 161] --inverse compression, iSTFT--> wave [B, (N - 1) * 80]

Every layer is causal in time (STFT frames), so the only lookahead comes from the centred STFT
window (160 samples either side) and from combining 4 hops into one code frame (3 hops): output
sample t depends on input samples up to t + ``LOOKAHEAD`` = t + 559 (about 35 ms). Code frames
come at 16000 / (80 * 4) = 50 Hz. With all numbers at their defaults the network has 7.60 M
parameters (HSM-TSS Table IX: 7.63 M).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import DecoderDeconv, EncoderConv, GRUBlock, TCMBlock
from .quantizer import GroupVectorQuantizer, Quantized
from .stft import CompressedSTFT


@dataclass
class TFCodecSizes:
    """Network sizes; the defaults are TF-Codec's 6 kbps, 20 ms configuration ('6k_20ms_redundant')."""

    win_length: int = 320  # STFT window (samples at 16 kHz): 20 ms
    hop_length: int = 80  # STFT hop: 5 ms
    power: float = 0.3  # magnitude compression |X|**power
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])  # encoder conv channels
    bin_strides: list[int] = field(default_factory=lambda: [1, 4, 4, 2])  # frequency strides: 161 -> 161, 41, 11, 5
    tcm_channels: int = 512  # TCM hidden width
    tcm_blocks: int = 4  # TCM blocks per stack (dilations 1, 2, 4, ...); three stacks
    tcm_kernel: int = 5
    latent_dim: int = 480  # channels per hop before grouping
    combine_frames: int = 4  # hops per code frame
    num_groups: int = 16  # codebooks (one code each per code frame)
    codebook_size: int = 1024


KERNEL = (2, 5)  # (frames, bins), as TF-Codec


def bin_sizes(bins: int, strides: list[int]) -> list[int]:
    """Bins after each encoder conv (kernel 5, padding 2 each side, 1 for stride 2 as TF-Codec)."""
    sizes = [bins]
    for stride in strides:
        pad = 1 if stride == 2 else 2
        sizes.append((sizes[-1] + 2 * pad - KERNEL[1]) // stride + 1)
    return sizes


class TFCodecNet(nn.Module):
    """wave float [B, T] at 16 kHz <-> codes long [B, num_groups, F] at 16000 / (hop * combine) Hz."""

    def __init__(self, sizes: TFCodecSizes) -> None:
        super().__init__()
        if len(sizes.channels) != len(sizes.bin_strides):
            raise ValueError("channels and bin_strides need one entry per encoder layer")
        self.sizes = sizes
        self.stft = CompressedSTFT(sizes.win_length, sizes.hop_length, sizes.power)
        bins = bin_sizes(self.stft.bins, sizes.bin_strides)
        self.bins = bins
        pads = [1 if s == 2 else 2 for s in sizes.bin_strides]
        ins = [2, *sizes.channels[:-1]]
        self.encoder_convs = nn.ModuleList(
            EncoderConv(i, o, KERNEL, s, p) for i, o, s, p in zip(ins, sizes.channels, sizes.bin_strides, pads)
        )
        width = sizes.channels[-1] * bins[-1]
        self.feature_dim = width

        def tcm_stack() -> nn.Sequential:
            return nn.Sequential(
                *(TCMBlock(width, sizes.tcm_channels, sizes.tcm_kernel, 2**i) for i in range(sizes.tcm_blocks))
            )

        self.encoder_tcm = tcm_stack()
        self.encoder_gru = GRUBlock(width)
        self.to_latent = nn.Conv1d(width, sizes.latent_dim, 1, bias=False)
        self.quantizer = GroupVectorQuantizer(
            sizes.latent_dim, sizes.num_groups, sizes.codebook_size, sizes.combine_frames
        )
        self.from_latent = nn.Conv1d(sizes.latent_dim, width, 1, bias=False)
        self.decoder_tcm1 = tcm_stack()
        self.decoder_gru = GRUBlock(width)
        self.decoder_tcm2 = tcm_stack()
        layers = len(sizes.channels)
        outs = [*sizes.channels[::-1][1:], 2]
        deconvs = []
        for i in range(layers):
            j = layers - 1 - i  # the mirrored encoder layer
            if j == 0:  # TF-Codec's last decoder layer is a plain causal conv (stride 1)
                deconvs.append(EncoderConv(sizes.channels[0], 2, KERNEL, sizes.bin_strides[0], pads[0]))
            else:
                deconvs.append(
                    DecoderDeconv(sizes.channels[::-1][i], outs[i], KERNEL, sizes.bin_strides[j], pads[j], bins[j])
                )
        self.decoder_convs = nn.ModuleList(deconvs)
        self.out_conv = EncoderConv(2, 2, KERNEL, 1, 2, norm=False)

    def coding_modules(self) -> list[nn.Module]:
        """The modules that choose the codes: the encoder and the quantiser."""
        return [self.encoder_convs, self.encoder_tcm, self.encoder_gru, self.to_latent, self.quantizer]

    # --- rates -----------------------------------------------------------------------------
    @property
    def samples_per_code(self) -> int:
        return self.sizes.hop_length * self.sizes.combine_frames

    def padded_length(self, samples: int) -> int:
        """Samples after right-padding so that the STFT frames (samples / hop + 1) fill whole code frames."""
        hop, combine = self.sizes.hop_length, self.sizes.combine_frames
        frames = -(-samples // hop) + 1
        frames = -(-frames // combine) * combine
        return (frames - 1) * hop

    def code_frames(self, samples: Tensor) -> Tensor:
        """long [B] code frames covering ``samples`` valid samples each."""
        hop, combine = self.sizes.hop_length, self.sizes.combine_frames
        frames = torch.div(samples + hop - 1, hop, rounding_mode="floor") + 1
        return torch.div(frames + combine - 1, combine, rounding_mode="floor")

    # --- halves ----------------------------------------------------------------------------
    def encode_latents(self, wave: Tensor) -> Tensor:
        """wave float [B, T] -> continuous latents float [B, latent_dim, N] (N = STFT frames, whole code frames)."""
        wave = F.pad(wave, (0, self.padded_length(wave.shape[-1]) - wave.shape[-1]))
        x = self.stft.compress(wave)
        for conv in self.encoder_convs:
            x = conv(x)
        b, c, n, f = x.shape
        x = x.permute(0, 1, 3, 2).reshape(b, c * f, n)
        x = self.encoder_gru(self.encoder_tcm(x))
        return self.to_latent(x)

    def decode_latents(self, latents: Tensor) -> Tensor:
        """quantised latents float [B, latent_dim, N] -> wave float [B, (N - 1) * hop]."""
        x = self.from_latent(latents)
        x = self.decoder_tcm2(self.decoder_gru(self.decoder_tcm1(x)))
        b, n = x.shape[0], x.shape[-1]
        x = x.reshape(b, self.sizes.channels[-1], self.bins[-1], n).permute(0, 1, 3, 2)
        for layer in self.decoder_convs:
            x = layer(x)
        return self.stft.decompress(self.out_conv(x))

    def quantize(self, wave: Tensor, with_distances: bool = False) -> Quantized:
        """``with_distances``: the Quantized also holds each latent's distances to its group's codes (rate loss)."""
        return self.quantizer(self.encode_latents(wave), with_distances=with_distances)

    def decode(self, codes: Tensor) -> Tensor:
        """codes long [B, G, F] -> wave float [B, (4F - 1) * hop] (at full size)."""
        return self.decode_latents(self.quantizer.decode(codes))

    def forward(self, wave: Tensor, with_distances: bool = False) -> tuple[Tensor, Quantized]:
        """wave float [B, T] -> (reconstruction float [B, T], Quantized) for training."""
        q = self.quantize(wave, with_distances)
        out = self.decode_latents(q.quantized)
        return out[:, : wave.shape[-1]], q
