"""``TFCodec`` (registered as codec ``tfcodec``): the non-predictive TF-Codec HSM-TSS decodes through.

16 kHz mono. ``encode``: wave float [B, T] -> CodecFrames(codes long [B, 16, F] in [0, 1024),
lengths long [B], latents float [B, F, 1920] = the chosen code vectors of the 16 groups, each
4 hops x 30 channels, concatenated). ``decode``: codes [B, 16, F] -> wave float [B, (4F - 1) * 80].

Rates at the defaults (TF-Codec's '6k_20ms_redundant' configuration): STFT hop 5 ms, 4 hops
per code frame, so F = 50 frames per second (the HSM-TSS issue's 50 Hz is right). Each frame
carries 16 indices of 10 bits = 160 bits, i.e. 8 kbit/s as fixed-length indices; TF-Codec's
"6 kbps" is that same layout with its rate (entropy) loss pulling the code entropy to 120 bits
per frame (``target_entropy: 120``) and entropy coding, 120 x 50 = 6 kbit/s. Here the rate loss is
the training system's ``rate_weight`` / ``target_entropy`` (``entropy``), and the entropy coder is
``range_coder`` with per-group frequency tables fitted on audio:

- ``fit_code_tables(waves)`` encodes the waves, counts each group's codes and keeps the tables
  (``range_coder.frequency_tables``: counts scaled to 2**20, every code at least 1) as the buffer
  ``code_tables`` long [G, K], which ``state_dict`` then holds (``torch.save(codec.state_dict(), f)``
  and ``checkpoint: f`` bring it back). Files without it (every checkpoint written before) load as
  before: no tables. Refit after further training (the codes change).
- ``to_bitstream(wave [T]) -> bytes``: 4 bytes of sample count (little-endian) + the arithmetic-coded
  indices of the valid code frames; ``from_bitstream(bytes) -> wave [T]`` decodes exactly those codes.
- ``bitrate``: with tables, the rate they code data like their fitting set at (frame rate x the sum of
  the tables' entropies); without, the fixed-length rate (8000 at full size).
Lookahead: see ``model`` (559 samples, about 35 ms). 7.63 M parameters at full size.

``checkpoint``: a sepkit checkpoint of the ``tfcodec`` training system (its ``codec.*`` weights
are taken and its ``discriminator.*`` weights dropped) or a bare ``torch.save`` of this
component's state dict; read with ``torch.load(weights_only=True)``. Missing or unexpected keys
are named in the error; only the quantiser's moving-average statistics (inference-only files, see
``quantizer.add_training_statistics``) and ``code_tables`` may be absent.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.hub import local_file
from sepkit.interfaces import Codec, CodecFrames

from . import range_coder
from .entropy import code_counts, entropy_bits
from .model import TFCodecNet, TFCodecSizes

LOGGER = logging.getLogger("sepkit.tfcodec")
SAMPLE_RATE = 16000
BITSTREAM_HEADER = struct.Struct("<I")  # samples of the coded wave


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
        self.register_buffer("code_tables", None)  # long [G, K] once fitted; not in state_dict until then
        if config.checkpoint is not None:
            load_codec_weights(self, config.checkpoint)

    @property
    def bitrate(self) -> float:
        """Bits per second: with ``code_tables``, frame rate x the sum over groups of the tables' entropies (the
        entropy-coded rate of audio like the tables' fitting set); else the fixed-length rate (8000 at full size)."""
        tables = getattr(self, "code_tables", None)
        if tables is None:
            return self.frame_rate * self.num_codebooks * math.log2(self.codebook_size)
        tables = tables.double()
        return self.frame_rate * float(entropy_bits(tables / tables.sum(-1, keepdim=True)).sum())

    # --- entropy coding ------------------------------------------------------------------------
    def set_code_tables(self, tables: Optional[Tensor]) -> None:
        """Keep ``tables`` int [G, K] (frequencies >= 1, see ``range_coder``) as the ``code_tables`` buffer;
        None drops them."""
        if tables is None:
            self.code_tables = None
            return
        tables = torch.as_tensor(tables)
        expected = (self.num_codebooks, self.codebook_size)
        if tuple(tables.shape) != expected:
            raise SepkitError(
                f"codec 'tfcodec': code tables of shape {tuple(tables.shape)}, expected {expected} "
                "(groups x codes); fit them with fit_code_tables on this codec"
            )
        try:
            range_coder.check_tables(tables.cpu().numpy())
        except ValueError as exc:
            raise SepkitError(f"codec 'tfcodec': code tables: {exc}") from None
        self.code_tables = tables.to(device=self.net.quantizer.codebooks.device, dtype=torch.long)

    def _encode_one(self, wave: Tensor) -> Tensor:
        """wave float [T] (or [1, T]) at 16 kHz -> codes long [G, frames] of its valid code frames (in eval mode)."""
        wave = wave.reshape(-1).float().to(self.net.quantizer.codebooks.device)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                frames = self.encode(wave[None], torch.tensor([wave.shape[-1]], device=wave.device))
        finally:
            self.train(was_training)
        return frames.codes[0, :, : int(frames.lengths[0])]

    def fit_code_tables(self, waves: Iterable[Tensor]) -> Tensor:
        """Count each group's codes over ``waves`` (each float [T] at 16 kHz) and keep the frequency tables made
        from the counts (``code_tables``); returns the counts long [G, K]."""
        counts = torch.zeros(self.num_codebooks, self.codebook_size, dtype=torch.long)
        for wave in waves:
            counts += code_counts(self._encode_one(wave)[None].cpu(), self.codebook_size)
        if int(counts.sum()) == 0:
            raise SepkitError("codec 'tfcodec': fit_code_tables got no audio; give it a non-empty list of waves")
        self.set_code_tables(torch.from_numpy(range_coder.frequency_tables(counts.numpy())))
        return counts

    def _tables(self) -> Tensor:
        if getattr(self, "code_tables", None) is None:
            raise SepkitError(
                "codec 'tfcodec' has no code tables to entropy-code with; call fit_code_tables(waves) first "
                "(or load a codec state dict saved after it)"
            )
        return self.code_tables.cpu().numpy()

    def to_bitstream(self, wave: Tensor) -> bytes:
        """wave float [T] at 16 kHz -> bytes: the sample count (4 bytes) + the arithmetic-coded codes."""
        tables = self._tables()
        samples = int(wave.reshape(-1).shape[0])
        codes = self._encode_one(wave).cpu().numpy()
        return BITSTREAM_HEADER.pack(samples) + range_coder.encode(codes, tables)

    def from_bitstream(self, data: bytes) -> Tensor:
        """``to_bitstream``'s bytes -> wave float [T] at 16 kHz (the decoding of exactly the encoded codes)."""
        tables = self._tables()
        if len(data) < BITSTREAM_HEADER.size:
            raise SepkitError(
                f"codec 'tfcodec': a bitstream of {len(data)} bytes has no header; give to_bitstream's bytes"
            )
        (samples,) = BITSTREAM_HEADER.unpack_from(data)
        frames = int(self.net.code_frames(torch.tensor([samples]))[0])
        try:
            codes = range_coder.decode(data[BITSTREAM_HEADER.size :], tables, frames)
        except ValueError as exc:
            raise SepkitError(f"codec 'tfcodec': the bitstream does not decode with these tables: {exc}") from None
        codes = torch.from_numpy(codes)[None].to(self.net.quantizer.codebooks.device)
        with torch.no_grad():
            return self.decode(codes)[0, :samples]

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
    tables = state.pop("code_tables", None)  # optional: only files saved after fit_code_tables have it
    codec.set_code_tables(None)
    load_state_dict_checked(codec, state, where)
    if tables is not None:
        codec.set_code_tables(tables)
