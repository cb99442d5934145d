"""``TFCodec`` (registered as codec ``tfcodec``): the non-predictive TF-Codec HSM-TSS decodes through.

16 kHz mono. ``encode``: wave float [B, T] -> CodecFrames(codes long [B, 16, F] in [0, 1024),
lengths long [B], latents float [B, F, 1920] = the chosen code vectors of the 16 groups, each
4 hops x 30 channels, concatenated). ``decode``: codes [B, 16, F] -> wave float [B, (4F - 1) * 80].

Rates at the defaults (TF-Codec's '6k_20ms_redundant' configuration): STFT hop 5 ms, 4 hops
per code frame, so F = 50 frames per second (the HSM-TSS issue's 50 Hz is right). Each frame
carries 16 indices of 10 bits = 160 bits, i.e. 8 kbit/s as fixed-length indices; TF-Codec's
"6 kbps" is that same layout with its rate (entropy) loss pulling the code entropy to 120 bits
per frame (``target_entropy: 120``) and entropy coding, 120 x 50 = 6 kbit/s. This
reimplementation has no rate loss or entropy coder: ``bitrate`` reports the fixed-length rate.
Lookahead: see ``model`` (559 samples, about 35 ms). 7.63 M parameters at full size.

``checkpoint``: a sepkit checkpoint of the ``tfcodec`` training system (its ``codec.*`` weights
are taken and its ``discriminator.*`` weights dropped) or a bare ``torch.save`` of this
component's state dict; read with ``torch.load(weights_only=True)``. Missing or unexpected keys
are named in the error; only the quantiser's moving-average statistics may be absent (inference-only
files, see ``quantizer.add_training_statistics``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.hub import local_file
from sepkit.interfaces import Codec, CodecFrames

from .model import TFCodecNet, TFCodecSizes

LOGGER = logging.getLogger("sepkit.tfcodec")
SAMPLE_RATE = 16000


@dataclass
class TFCodecConfig:
    checkpoint: Optional[str] = None  # a sepkit 'tfcodec' training checkpoint or a state dict file
    win_length: int = positive(320)
    hop_length: int = positive(80)
    power: float = positive(0.3)
    channels: list[int] = positive(default_factory=lambda: [16, 32, 64, 64])
    bin_strides: list[int] = positive(default_factory=lambda: [1, 4, 4, 2])
    tcm_channels: int = positive(512)
    tcm_blocks: int = positive(4)
    tcm_kernel: int = positive(5)
    latent_dim: int = positive(480)
    combine_frames: int = positive(4)
    num_groups: int = positive(16)
    codebook_size: int = positive(1024)


class TFCodec(Codec):
    """wave float [B, T] at 16 kHz <-> codes long [B, num_groups, F] at 50 Hz (full size); see the module docstring."""

    Config = TFCodecConfig
    sample_rate = SAMPLE_RATE

    def __init__(self, config: TFCodecConfig) -> None:
        super().__init__(config)
        sizes = {k: getattr(config, k) for k in TFCodecSizes.__dataclass_fields__}
        try:
            self.net = TFCodecNet(TFCodecSizes(**sizes))
        except ValueError as exc:
            raise SepkitError(f"codec 'tfcodec': {exc}; fix the sizes in its config") from None
        if config.win_length % config.hop_length:
            raise SepkitError("codec 'tfcodec': win_length must be a multiple of hop_length")
        self.num_codebooks = config.num_groups
        self.codebook_size = config.codebook_size
        self.frame_rate = SAMPLE_RATE / (config.hop_length * config.combine_frames)
        if config.checkpoint is not None:
            load_codec_weights(self, config.checkpoint)

    @property
    def bitrate(self) -> float:
        """Bits per second of the codes as fixed-length indices (8000 at full size)."""
        return self.frame_rate * self.num_codebooks * math.log2(self.codebook_size)

    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        q = self.net.quantize(wave)
        frames = self.net.code_frames(lengths.to(q.codes.device)).clamp_max(q.codes.shape[-1])
        return CodecFrames(codes=q.codes, lengths=frames.long(), latents=q.embeddings)

    def decode(self, codes: Tensor) -> Tensor:
        return self.net.decode(codes.long())


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a sepkit checkpoint or a bare state-dict file (``torch.load(weights_only=True)``); ``path``
    may be an ``hf://OWNER/REPO/FILE`` reference (resolved in the Hugging Face cache, ``sepkit.hub``)."""
    path = local_file(path, "tfcodec checkpoint")
    path = Path(path).expanduser()
    if not path.is_file():
        raise SepkitError(
            f"tfcodec checkpoint {path} not found; give a best.ckpt of 'sepkit train' with the tfcodec system"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SepkitError(
            f"tfcodec checkpoint {path} could not be read with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise SepkitError(
            f"tfcodec checkpoint {path} holds no state dict; give a sepkit checkpoint or a torch.save(state_dict) file"
        )
    return state


def codec_state_dict(state: dict[str, Tensor], where: str) -> dict[str, Tensor]:
    """A training system's state (``codec.*`` + ``discriminator.*``) -> the component's (``net.*``)."""
    if any(k.startswith("codec.") for k in state):
        dropped = [k for k in state if k.startswith("discriminator.")]
        if dropped:
            LOGGER.info("%s: dropped %d discriminator keys; only the codec is used", where, len(dropped))
        state = {k[len("codec.") :] if k.startswith("codec.") else k: v for k, v in state.items() if k not in dropped}
    return state


def load_codec_weights(codec: TFCodec, path: str | Path) -> None:
    """Load ``codec`` strictly from the file (a path or an ``hf://`` reference) its ``checkpoint`` key names."""
    from sepkit.checkpoint import load_state_dict_checked

    from .quantizer import add_training_statistics

    path = local_file(path, "tfcodec checkpoint")
    where = f"tfcodec checkpoint {Path(path).expanduser()}"
    state = add_training_statistics(codec_state_dict(read_state_dict(path), where), "net.quantizer.")
    load_state_dict_checked(codec, state, where)
