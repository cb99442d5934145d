"""``AudioMAEEncoder`` (registered as ``audiomae``): AudioMAE patch features as a sepkit audio encoder.

wave float [B, T] at 16 kHz -> Kaldi fbank [B, 1, 1024, 128] (``frontend``: padded or cropped
to 10.24 s like the official loader) -> ViT-B/16 (``vit.AudioMAEViT``) -> AudioFeatures:

- ``frames`` [B, 512, 768]: the patch tokens, time-major. The patch grid is 64 time x 8 mel:
  token n covers fbank frames 16 * (n // 8) ... 16 * (n // 8) + 15 (time step n // 8, 160 ms each)
  and mel bins 16 * (n % 8) ... + 15 (mel band n % 8, low to high). So ``frame_rate`` is
  50 tokens per second (8 tokens per 160 ms step) and ``frames.view(B, 64, 8, 768)`` recovers
  the grid (``patch_grid``). Every row always has all 512 tokens (AudioMAE always sees
  10.24 s); tokens past a clip's end encode the padding and are not zeroed.
- ``lengths`` long [B]: tokens covering the clip: 8 * ceil(fbank frames / 16), at most 512
  (fbank frames = 1 + (samples - 400) // 160).
- ``pooled`` [B, 768]: with ``final_norm: norm`` (pretrained.pth) the normed CLS token, or with
  ``pooling: mean`` the mean of the normed patch tokens that cover the clip; with
  ``final_norm: fc_norm`` (finetuned.pth) the official global pool, fc_norm(mean of all 512
  un-normed patch tokens), and ``frames`` are the un-normed tokens.

Inputs longer than 10.24 s are cropped to their first 10.24 s, as the official loader does; set
the recipe's ``inference.chunk_seconds`` to at most 10.24 so the pipeline cuts long inputs into
chunks first. With other ``target_frames`` / ``num_mel_bins`` / ``patch_size`` (the tiny test
configs) the same holds with N = (target_frames / p) * (num_mel_bins / p) tokens at
(num_mel_bins / p) * 100 / p tokens per second.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioEncoder, AudioFeatures

from .frontend import AUDIOSET_MEAN, AUDIOSET_STD, FRAMES_PER_SECOND, SAMPLE_RATE, audiomae_input, fbank_frames
from .vit import FINAL_NORMS, AudioMAEViT

REPRESENTATION = "audiomae_patches"
POOLINGS = ("cls", "mean")


@dataclass
class AudioMAEConfig:
    checkpoint: Optional[str] = None  # official pretrained.pth / finetuned.pth, or a sepkit 'mae' checkpoint
    embed_dim: int = positive(768)  # ViT-B/16: 768, 12 layers, 12 heads
    depth: int = positive(12)
    num_heads: int = positive(12)
    mlp_ratio: float = positive(4.0)
    patch_size: int = positive(16)
    target_frames: int = positive(1024)  # fbank frames seen (10 ms each): 1024 = 10.24 s
    num_mel_bins: int = positive(128)
    # input normalisation (fbank - norm_mean) / (2 * norm_std), AudioSet statistics as the official models use;
    # HSM-TSS's own pretraining drops dataset-level normalisation: norm_mean 0, norm_std 0.5 leave fbank as is
    norm_mean: float = AUDIOSET_MEAN
    norm_std: float = positive(AUDIOSET_STD)
    final_norm: str = "norm"  # norm (pretrained.pth, per token) | fc_norm (finetuned.pth, of the mean token)
    pooling: str = "cls"  # pooled with final_norm norm: cls | mean (of the patch tokens covering the clip)


class AudioMAEEncoder(AudioEncoder):
    """AudioMAE: frames = patch tokens [B, N, D] (time-major 64 x 8 grid), 50 tokens/s, pooled [B, D].

    See the module docstring for the token order, lengths and pooling.
    """

    Config = AudioMAEConfig
    representation = REPRESENTATION
    sample_rate = SAMPLE_RATE

    def __init__(self, config: AudioMAEConfig) -> None:
        super().__init__(config)
        p = config.patch_size
        if config.final_norm not in FINAL_NORMS:
            raise SepkitError(
                f"audiomae: final_norm must be one of {', '.join(FINAL_NORMS)}, got {config.final_norm!r}"
            )
        if config.pooling not in POOLINGS:
            raise SepkitError(f"audiomae: pooling must be one of {', '.join(POOLINGS)}, got {config.pooling!r}")
        if p < 1 or config.target_frames % p or config.num_mel_bins % p:
            raise SepkitError(
                f"audiomae: target_frames ({config.target_frames}) and num_mel_bins ({config.num_mel_bins}) must be "
                f"multiples of patch_size ({p})"
            )
        if config.embed_dim % config.num_heads or config.embed_dim % 4:
            raise SepkitError(
                f"audiomae: embed_dim {config.embed_dim} must be divisible by num_heads ({config.num_heads}) and by 4"
            )
        if config.norm_std <= 0:
            raise SepkitError(f"audiomae: norm_std must be > 0, got {config.norm_std}")
        self.vit = AudioMAEViT(
            image_size=(config.target_frames, config.num_mel_bins),
            patch_size=p,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            final_norm=config.final_norm,
        )
        self.output_dim = config.embed_dim
        self.mel_patches = config.num_mel_bins // p
        self.num_patches = self.vit.num_patches
        self.frame_rate = self.mel_patches * FRAMES_PER_SECOND / p
        if config.checkpoint:
            from .official import load_official_encoder

            load_official_encoder(config.checkpoint, self.vit)

    def load_official_checkpoint(self, path: str) -> bool:
        """Load the encoder of an official AudioMAE file (``--ckpt`` / ``--init-from``); False if not one."""
        from .official import load_official_encoder, read_official_state_dict

        try:
            state = read_official_state_dict(path)
        except SepkitError:
            return False
        if "patch_embed.proj.weight" not in state or "blocks.0.attn.qkv.weight" not in state:
            return False
        load_official_encoder(path, self.vit)
        return True

    def fbank(self, wave: Tensor, lengths: Optional[Tensor] = None) -> Tensor:
        """wave [B, T] at 16 kHz -> the normalised model input [B, 1, target_frames, num_mel_bins]."""
        if wave.dim() != 2:
            raise SepkitError(f"audiomae expects mono wave [batch, samples], got shape {tuple(wave.shape)}")
        lengths = self._lengths(wave, lengths)
        c = self.config
        return audiomae_input(wave.float(), lengths, c.target_frames, c.num_mel_bins, c.norm_mean, c.norm_std)

    def token_lengths(self, lengths: Tensor) -> Tensor:
        """long [B]: patch tokens covering clips of ``lengths`` samples (whole 160 ms steps, at most N)."""
        steps = torch.div(
            fbank_frames(lengths) + self.config.patch_size - 1, self.config.patch_size, rounding_mode="floor"
        )
        max_steps = self.config.target_frames // self.config.patch_size
        return steps.clamp(1, max_steps) * self.mel_patches

    def patch_grid(self, frames: Tensor) -> Tensor:
        """frames [B, N, D] -> [B, time patches, mel patches, D] (64 x 8 for the official size)."""
        return frames.reshape(frames.shape[0], -1, self.mel_patches, frames.shape[-1])

    def _lengths(self, wave: Tensor, lengths: Optional[Tensor]) -> Tensor:
        if lengths is None:
            return torch.full((wave.shape[0],), wave.shape[1], dtype=torch.long, device=wave.device)
        return lengths.to(torch.long).clamp(1, wave.shape[1])

    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        lengths = self._lengths(wave, lengths)
        image = self.fbank(wave, lengths)
        tokens, pooled = self.vit(image)
        token_lengths = self.token_lengths(lengths).to(wave.device)
        if self.config.final_norm == "norm" and self.config.pooling == "mean":
            valid = (torch.arange(tokens.shape[1], device=tokens.device)[None] < token_lengths[:, None]).float()
            pooled = (tokens * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
        return AudioFeatures(frames=tokens, lengths=token_lengths, frame_rate=self.frame_rate, pooled=pooled)

    def forward(self, wave: Tensor, lengths: Optional[Tensor] = None) -> AudioFeatures:
        return self.encode_audio(wave, self._lengths(wave, lengths))

    @property
    def seconds(self) -> float:
        """Audio seen per pass: target_frames * 10 ms (10.24 s)."""
        return self.config.target_frames / FRAMES_PER_SECOND
