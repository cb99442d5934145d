"""``ToyCodec``: a parameter-free G-group codec for tests and complexity measurements (not registered).

Frames of ``hop`` samples at ``sample_rate`` (``frame_rate`` = sample_rate / hop); each frame is cut
into G equal sub-segments and the mean of sub-segment g, mu-law quantised to ``codebook_size``
levels, is group g's code. ``decode`` holds each dequantised mean over its sub-segment, so
codes [B, G, T] -> wave [B, T * hop]. Register it in a test registry to stand in for a neural codec
of the same shape (e.g. 16 groups x 1024 codes at 50 Hz, the size of HSM-TSS's TF-Codec tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import Codec, CodecFrames


class ToyCodec(Codec):
    """wave float [B, T] at ``sample_rate`` <-> codes long [B, G, ceil(T / hop)]."""

    @dataclass
    class Config:
        sample_rate: int = positive(16000)
        hop: int = positive(320)  # samples per code frame (16 kHz / 320 = 50 Hz)
        num_codebooks: int = positive(16)
        codebook_size: int = positive(1024)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if config.hop % config.num_codebooks:
            raise SepkitError(f"toy codec: hop {config.hop} must be a multiple of num_codebooks {config.num_codebooks}")
        self.sample_rate = config.sample_rate
        self.frame_rate = config.sample_rate / config.hop
        self.num_codebooks = config.num_codebooks
        self.codebook_size = config.codebook_size

    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        hop, g = self.config.hop, self.num_codebooks
        frames = -(-wave.shape[-1] // hop)
        padded = F.pad(wave.float(), (0, frames * hop - wave.shape[-1]))
        means = padded.view(wave.shape[0], frames, g, hop // g).mean(-1).transpose(1, 2)
        codes = AF.mu_law_encoding(means.clamp(-1, 1), self.codebook_size).long()
        return CodecFrames(codes=codes, lengths=torch.div(lengths + hop - 1, hop, rounding_mode="floor"))

    def decode(self, codes: Tensor) -> Tensor:
        b, g, t = codes.shape
        values = AF.mu_law_decoding(codes, self.codebook_size).float()  # [B, G, T]
        return values.transpose(1, 2).repeat_interleave(self.config.hop // g, dim=-1).reshape(b, -1)
