"""``STFTEncoder`` and ``ISTFTDecoder``: a matched analysis/synthesis pair.

Frames are complex STFT bins, ``[batch, frames, n_fft // 2 + 1]`` complex64, at
``sample_rate / hop_length`` frames per second (centred frames: a row of T
samples gives ``T // hop_length + 1`` frames). Both always compute in float32,
also under autocast, since STFT round trips lose accuracy in half precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive, require
from sepkit.interfaces import AudioEncoder, AudioFeatures, Decoder

REPRESENTATION = "complex_stft"


@dataclass
class STFTConfig:
    n_fft: int = positive(1024)
    hop_length: int = positive(256)
    win_length: Optional[int] = positive(None)  # None: n_fft
    sample_rate: int = positive(16000)

    def __post_init__(self) -> None:
        window = self.win_length or self.n_fft
        require(window <= self.n_fft, "win_length", f"must be at most n_fft ({self.n_fft}), got {window}")
        require(
            self.hop_length <= window,
            "hop_length",
            f"must be at most the window (win_length or n_fft: {window}) for an invertible STFT, got {self.hop_length}",
        )


class _STFTBase:
    def _setup(self, config: STFTConfig) -> None:
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.win_length = config.win_length or config.n_fft
        self.sample_rate = config.sample_rate
        self.frame_rate = config.sample_rate / config.hop_length
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)


class STFTEncoder(_STFTBase, AudioEncoder):
    """wave float [B, T] at ``sample_rate`` -> frames complex64 [B, T // hop + 1, n_fft // 2 + 1]."""

    Config = STFTConfig
    representation = REPRESENTATION

    def __init__(self, config: STFTConfig) -> None:
        super().__init__(config)
        self._setup(config)
        self.output_dim = config.n_fft // 2 + 1
        self.min_samples = config.n_fft // 2 + 1  # reflection padding of n_fft // 2 needs a longer input

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            spec = torch.stft(
                wave.float(),
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=True,
                return_complex=True,
            )
        frames = spec.transpose(1, 2)
        return AudioFeatures(frames=frames, lengths=lengths // self.hop_length + 1, frame_rate=self.frame_rate)


class ISTFTDecoder(_STFTBase, Decoder):
    """frames complex [B, F, n_fft // 2 + 1] -> wave float [B, (F - 1) * hop] at ``sample_rate``."""

    Config = STFTConfig
    consumes = REPRESENTATION

    def __init__(self, config: STFTConfig) -> None:
        super().__init__(config)
        self._setup(config)
        self.input_dim = config.n_fft // 2 + 1

    def decode(self, features: AudioFeatures, num_samples: Optional[int] = None) -> Tensor:
        frames = features.frames
        length = num_samples if num_samples is not None else (frames.shape[1] - 1) * self.hop_length
        with torch.autocast(device_type=frames.device.type, enabled=False):
            return torch.istft(
                frames.transpose(1, 2).to(torch.complex64),
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=True,
                length=length,
            )
