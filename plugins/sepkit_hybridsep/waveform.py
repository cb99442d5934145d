"""``waveform`` audio encoder and decoder: the wave itself, cut into frames of ``hop`` samples.

Separators that work on the waveform (``hybrid-sep``) consume these frames; the encoder and the decoder are
exact inverses. encode: wave [B, T] -> frames [B, ceil(T / hop), hop] (zero-padded), lengths ceil(len / hop),
frame_rate sample_rate / hop. decode: frames [B, F, hop] -> wave [B, F * hop] (trimmed or padded to num_samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures, Decoder

REPRESENTATION = "waveform_frames"


@dataclass
class WaveformConfig:
    sample_rate: int = positive(16000)
    hop: int = positive(160)  # samples per frame (frame_rate = sample_rate / hop)


def _check(config: WaveformConfig) -> None:
    if config.hop < 1 or config.sample_rate < 1:
        raise SepkitError(f"waveform: hop ({config.hop}) and sample_rate ({config.sample_rate}) must be positive")


class WaveformEncoder(AudioEncoder):
    """wave [B, T] -> AudioFeatures(frames [B, ceil(T / hop), hop])."""

    Config = WaveformConfig
    representation = REPRESENTATION

    def __init__(self, config: WaveformConfig) -> None:
        super().__init__(config)
        _check(config)
        self.sample_rate = int(config.sample_rate)
        self.output_dim = int(config.hop)
        self.frame_rate = config.sample_rate / config.hop

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        hop = self.output_dim
        frames = F.pad(wave, (0, (-wave.shape[-1]) % hop)).reshape(wave.shape[0], -1, hop)
        frame_lengths = torch.div(lengths.to(torch.long) + hop - 1, hop, rounding_mode="floor")
        return AudioFeatures(frames=frames, lengths=frame_lengths, frame_rate=self.frame_rate)


class WaveformDecoder(Decoder):
    """AudioFeatures(frames [B, F, hop]) -> wave [B, F * hop]."""

    Config = WaveformConfig
    consumes = REPRESENTATION

    def __init__(self, config: WaveformConfig) -> None:
        super().__init__(config)
        _check(config)
        self.sample_rate = int(config.sample_rate)
        self.input_dim = int(config.hop)
        self.frame_rate = config.sample_rate / config.hop

    def decode(self, features: AudioFeatures, num_samples: Optional[int] = None) -> Tensor:
        wave = features.frames.reshape(features.frames.shape[0], -1)
        if num_samples is not None:
            wave = (
                wave[:, :num_samples]
                if wave.shape[-1] >= num_samples
                else F.pad(wave, (0, num_samples - wave.shape[-1]))
            )
        return wave
