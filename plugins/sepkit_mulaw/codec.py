"""``MuLawCodec``: sample-wise mu-law companding and uniform quantisation.

One codebook (G = 1) of ``2**bits`` codes per sample, so ``frame_rate`` equals
``sample_rate``. 8 bits at 8 kHz is ITU-T G.711's 64 kbit/s. Useful as a
reference codec and for testing codec-token decoders; no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF
from torch import Tensor

from sepkit.config import positive, ranged
from sepkit.errors import SepkitError
from sepkit.interfaces import Codec, CodecFrames


class MuLawCodec(Codec):
    """wave float [B, T] in [-1, 1] at ``sample_rate`` <-> codes long [B, 1, T] in [0, 2**bits)."""

    @dataclass
    class Config:
        sample_rate: int = positive(16000)
        bits: int = ranged(8, low=2, high=16)

    num_codebooks = 1

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if not 2 <= config.bits <= 16:
            raise SepkitError(f"codec 'mulaw': bits={config.bits}; use 2 to 16")
        self.sample_rate = config.sample_rate
        self.frame_rate = float(config.sample_rate)
        self.codebook_size = 2**config.bits

    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        codes = AF.mu_law_encoding(wave.float().clamp(-1.0, 1.0), self.codebook_size)
        return CodecFrames(codes=codes.long().unsqueeze(1), lengths=lengths.clone())

    def decode(self, codes: Tensor) -> Tensor:
        return AF.mu_law_decoding(codes[:, 0], self.codebook_size).to(torch.float32)
