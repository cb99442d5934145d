"""``CodecLatentDecoder`` (decoder ``codec-latents``): predicted codec embeddings back to audio.

features float [B, F, G * c] at the codec's frame rate (the ``codec_latents`` a separator predicts,
in the space of the ``codec-latents`` audio encoder) -> per frame and group the nearest code of
the codec's codebooks (``codec_space.nearest_codes``) -> codes long [B, G, F] -> ``codec.decode``
-> wave float [B, T] at the codec's ``sample_rate``. Each row is zeroed past its valid duration
(``lengths / frame_rate`` seconds); ``num_samples`` trims or zero-pads the result.

For the encoder's own latents (the chosen code vectors) the nearest codes are the encoder's codes,
so ``decode`` equals ``codec.decode(codes)`` there. No parameters of its own: the frozen codec's
weights come from the ``codec:`` section, as in the audio encoder (give both the same section).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, Decoder
from sepkit.registry import Registry
from sepkit.waveforms import keep_valid_duration

from .codec_space import REPRESENTATION, CodecSpace, nearest_codes

WHO = "decoder 'codec-latents'"


@dataclass
class CodecLatentsDecoderConfig:
    codec: dict[str, Any] = field(default_factory=lambda: {"name": "tfcodec"})  # the audio encoder's codec section


class CodecLatentDecoder(CodecSpace, Decoder):
    """features float [B, F, G * c] at the codec's frame rate -> wave float [B, T] at the codec's sample rate."""

    Config = CodecLatentsDecoderConfig
    consumes = REPRESENTATION

    def __init__(self, config: CodecLatentsDecoderConfig, registry: Registry) -> None:
        """``registry`` builds the frozen ``codec`` sub-section."""
        super().__init__(config)
        self.attach_codec(registry, config.codec, "model.decoder.codec", WHO)
        self.sample_rate = int(self.codec.sample_rate)
        self.frame_rate = float(self.codec.frame_rate)
        self.input_dim = self.latent_dim

    def codes(self, features: AudioFeatures) -> Tensor:
        """features [B, F, input_dim] -> codes long [B, G, F]: the nearest code of each group."""
        frames = features.frames
        if frames.dim() != 3 or frames.shape[-1] != self.input_dim or frames.is_complex():
            raise SepkitError(
                f"{WHO} expects real codec embeddings [batch, frames, {self.input_dim}] ({REPRESENTATION}), "
                f"got {frames.dtype}{tuple(frames.shape)}"
            )
        return nearest_codes(frames, self.codebooks.to(frames.device))

    @torch.no_grad()
    def decode(self, features: AudioFeatures, num_samples: Optional[int] = None) -> Tensor:
        """features [B, F, input_dim] -> wave float [B, T] at ``sample_rate``, zero past each row's end."""
        wave = self.codec.decode(self.codes(features)).float()
        return keep_valid_duration(wave, features.lengths, features.frame_rate, self.sample_rate, num_samples)
