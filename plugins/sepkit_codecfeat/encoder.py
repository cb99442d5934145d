"""``CodecLatentEncoder`` (audio encoder ``codec-latents``): a codec's frame embeddings as separation features.

HSM-TSS's ablation "Ours_acoustic" separates neural-codec embeddings directly, without AudioMAE.
wave float [B, T] at the codec's ``sample_rate`` -> ``codec.encode`` -> AudioFeatures:

- ``frames`` float [B, F, G * c]: ``CodecFrames.latents``, the code vectors of the G codebook
  groups of each code frame, concatenated group by group (``codec_space``). TF-Codec at full size:
  16 x 120 = 1920 channels at 50 frames/s, 513 frames for 10.24 s (its STFT frames are padded to
  whole code frames); the mini TF-Codec: 8 x 80 = 640 channels, 201 frames for 4 s.
- ``lengths`` long [B]: the codec's own ``CodecFrames.lengths`` (frames covering each row's samples).
  Frames past a row's length are the codec's encoding of the zero padding.
- ``frame_rate``: the codec's (50 Hz for tfcodec); ``pooled``: None.

Recipe: ``audio_encoder: {name: codec-latents, codec: {name: tfcodec, checkpoint: ...}}``; the
separator then consumes the representation ``codec_latents`` (``hsm-local``: ``representation:
codec_latents``, ``num_patches`` = the frame count of a chunk) and the ``codec-latents`` decoder,
with the same codec section, turns its output back into audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures
from sepkit.registry import Registry

from .codec_space import REPRESENTATION, CodecSpace

WHO = "audio encoder 'codec-latents'"


@dataclass
class CodecLatentsConfig:
    codec: dict[str, Any] = field(default_factory=lambda: {"name": "tfcodec"})  # any registered codec's section


class CodecLatentEncoder(CodecSpace, AudioEncoder):
    """wave float [B, T] at the codec's sample rate -> frames float [B, F, G * c] at the codec's frame rate."""

    Config = CodecLatentsConfig
    representation = REPRESENTATION

    def __init__(self, config: CodecLatentsConfig, registry: Registry) -> None:
        """``registry`` builds the frozen ``codec`` sub-section."""
        super().__init__(config)
        self.attach_codec(registry, config.codec, "model.audio_encoder.codec", WHO)
        self.sample_rate = int(self.codec.sample_rate)
        self.frame_rate = float(self.codec.frame_rate)
        self.output_dim = self.latent_dim

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        """wave float [B, T] at ``sample_rate``, lengths long [B] -> AudioFeatures(frames [B, F, output_dim])."""
        encoded = self.codec.encode(wave.float(), lengths)
        latents = encoded.latents
        if latents is None:
            raise SepkitError(
                f"{WHO}: codec {type(self.codec).__name__}.encode returned no latents (CodecFrames.latents); "
                "codec-latents needs the frame embeddings [batch, frames, num_codebooks * code_dim]"
            )
        expected = (wave.shape[0], encoded.codes.shape[-1], self.output_dim)
        if tuple(latents.shape) != expected:
            raise SepkitError(
                f"{WHO}: codec {type(self.codec).__name__} returned latents {tuple(latents.shape)}, expected "
                f"{expected} (batch, code frames, num_codebooks * code_dim of its codebooks)"
            )
        return AudioFeatures(frames=latents.float(), lengths=encoded.lengths.long(), frame_rate=self.frame_rate)
