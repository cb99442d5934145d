"""``BEATsEncoder`` (registered as ``beats``): BEATs frame features as a sepkit audio encoder.

wave float [B, T] at 16 kHz -> 128-bin Kaldi fbank of wave * 2^15, (fbank - 15.41663) / (2 * 6.55582)
(``frontend``) -> the BEATs transformer (``backbone``) -> AudioFeatures:

- ``frames`` [B, N, 768]: the patch tokens, time-major. Patches are 16 fbank frames x 16 mel bins,
  so the grid is steps x 8 (128 mel / 16): token n covers fbank frames 16 * (n // 8) ... + 15
  (160 ms step n // 8) and mel bins 16 * (n % 8) ... + 15 (band n % 8, low to high).
  ``frame_rate`` is 50 tokens per second (8 per 160 ms step); ``patch_grid`` gives [B, steps, 8, 768].
  Tokens of a row's padded steps (rows shorter than the longest) are zero.
- ``lengths`` long [B]: 8 * steps covering the clip, steps = ceil(fbank frames / 16)
  (``pad_last_patch``; floor without), fbank frames = 1 + (samples - 400) // 160.
- ``pooled`` [B, 768]: the mean of the row's valid tokens.

With ``checkpoint`` (an official ``BEATs_iter3*.pt``), the architecture is read from the file's ``cfg``
and overrides this config's architecture keys; without it the model has random weights at the
published size (90.0 M parameters, see ``parameter_count``). Any length works (relative position
bias); BEATs was trained on 10 s clips.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures

from .backbone import ARCHITECTURE_KEYS, ITER3_CONFIG, BEATsModel, parameter_count
from .frontend import FBANK_MEAN, FBANK_STD, FRAMES_PER_SECOND, SAMPLE_RATE, beats_input

REPRESENTATION = "beats_patches"
LOGGER = logging.getLogger("sepkit.beats")


@dataclass
class BEATsConfig:
    checkpoint: Optional[str] = None  # official BEATs_iter3*.pt ({'cfg', 'model'}); its cfg sets the architecture
    num_mel_bins: int = positive(128)
    fbank_mean: float = FBANK_MEAN
    fbank_std: float = positive(FBANK_STD)
    pad_last_patch: bool = True  # keep a clip's last partial 160 ms step (zero-padded); false: drop it
    # architecture (BEATs_iter3); ignored when a checkpoint is given
    input_patch_size: int = positive(16)
    embed_dim: int = positive(512)
    conv_bias: bool = False
    encoder_layers: int = positive(12)
    encoder_embed_dim: int = positive(768)
    encoder_ffn_embed_dim: int = positive(3072)
    encoder_attention_heads: int = positive(12)
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = positive(128)
    conv_pos_groups: int = positive(16)
    relative_position_embedding: bool = True
    num_buckets: int = positive(320)
    max_distance: int = positive(800)
    gru_rel_pos: bool = True


class BEATsEncoder(AudioEncoder):
    """BEATs: frames = patch tokens [B, N, 768] (time-major steps x 8 grid), 50 tokens/s, pooled mean [B, 768]."""

    Config = BEATsConfig
    representation = REPRESENTATION
    sample_rate = SAMPLE_RATE

    def __init__(self, config: BEATsConfig) -> None:
        super().__init__(config)
        state = None
        if config.checkpoint:
            from .official import read_official_checkpoint

            cfg, state = read_official_checkpoint(config.checkpoint)
        else:
            cfg = {
                **ITER3_CONFIG,
                **{f.name: getattr(config, f.name) for f in fields(config) if f.name in ARCHITECTURE_KEYS},
            }
            cfg["finetuned_model"] = False
        self._check(cfg, config)
        self.model = BEATsModel(cfg)
        if state is not None:
            from .official import load_official_state

            load_official_state(self.model, state, f"BEATs checkpoint {config.checkpoint}")
        p = cfg["input_patch_size"]
        self.patch_size = p
        self.mel_patches = config.num_mel_bins // p
        self.output_dim = int(cfg["encoder_embed_dim"])
        self.frame_rate = self.mel_patches * FRAMES_PER_SECOND / p

    @staticmethod
    def _check(cfg: dict, config: BEATsConfig) -> None:
        p = cfg["input_patch_size"]
        if p < 1 or config.num_mel_bins % p:
            raise SepkitError(
                f"beats: num_mel_bins ({config.num_mel_bins}) must be a multiple of input_patch_size ({p})"
            )
        if cfg["encoder_embed_dim"] % cfg["encoder_attention_heads"]:
            raise SepkitError(
                f"beats: encoder_embed_dim {cfg['encoder_embed_dim']} must be divisible by "
                f"encoder_attention_heads ({cfg['encoder_attention_heads']})"
            )
        if cfg["encoder_embed_dim"] % cfg["conv_pos_groups"]:
            raise SepkitError(
                f"beats: encoder_embed_dim must be divisible by conv_pos_groups ({cfg['conv_pos_groups']})"
            )
        if config.fbank_std <= 0:
            raise SepkitError(f"beats: fbank_std must be > 0, got {config.fbank_std}")

    def load_official_checkpoint(self, path: str) -> bool:
        """Load an official BEATs file given to ``--ckpt`` / ``--init-from``; False if the file is not one."""
        from .official import load_official_state, read_official_checkpoint

        try:
            cfg, state = read_official_checkpoint(path)
        except SepkitError:
            return False
        if "patch_embedding.weight" not in state:
            return False
        mine = {k: self.model.cfg[k] for k in ARCHITECTURE_KEYS if k != "finetuned_model"}
        theirs = {k: cfg[k] for k in mine}
        if mine != theirs:
            diff = ", ".join(f"{k}: {theirs[k]} (model {mine[k]})" for k in mine if mine[k] != theirs[k])
            raise SepkitError(
                f"BEATs checkpoint {path} has another architecture ({diff}); set beats.checkpoint instead"
            )
        load_official_state(self.model, state, f"BEATs checkpoint {path}")
        return True

    @property
    def parameter_count(self) -> int:
        return parameter_count(self.model)

    def fbank(self, wave: Tensor, lengths: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """wave [B, T] at 16 kHz -> (normalised fbank [B, 1, 16 * steps, mel], steps long [B])."""
        if wave.dim() != 2:
            raise SepkitError(f"beats expects mono wave [batch, samples], got shape {tuple(wave.shape)}")
        lengths = self._lengths(wave, lengths)
        c = self.config
        return beats_input(
            wave.float(), lengths, c.num_mel_bins, self.patch_size, c.fbank_mean, c.fbank_std, c.pad_last_patch
        )

    def patch_grid(self, frames: Tensor) -> Tensor:
        """frames [B, N, D] -> [B, steps, mel patches (8), D]."""
        return frames.reshape(frames.shape[0], -1, self.mel_patches, frames.shape[-1])

    def _lengths(self, wave: Tensor, lengths: Optional[Tensor]) -> Tensor:
        if lengths is None:
            return torch.full((wave.shape[0],), wave.shape[1], dtype=torch.long, device=wave.device)
        return lengths.to(torch.long).clamp(1, wave.shape[1])

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        lengths = self._lengths(wave, lengths)
        image, steps = self.fbank(wave, lengths)
        step_padding = torch.arange(image.shape[2] // self.patch_size, device=wave.device)[None] >= steps[:, None]
        tokens = self.model(image, step_padding)
        token_lengths = steps * self.mel_patches
        valid = (torch.arange(tokens.shape[1], device=tokens.device)[None] < token_lengths[:, None]).to(tokens.dtype)
        tokens = tokens * valid[..., None]
        pooled = tokens.sum(1) / valid.sum(1, keepdim=True)
        return AudioFeatures(frames=tokens, lengths=token_lengths, frame_rate=self.frame_rate, pooled=pooled)

    def forward(self, wave: Tensor, lengths: Optional[Tensor] = None) -> AudioFeatures:
        return self.encode_audio(wave, self._lengths(wave, lengths))
