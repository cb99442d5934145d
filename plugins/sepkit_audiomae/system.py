"""The ``mae`` training system: AudioMAE masked-autoencoder pretraining through ``sepkit train``.

The recipe names the encoder as usual, ``model.audio_encoder: {name: audiomae, ...}`` (with
``checkpoint:`` pretraining continues from those weights), and picks this system with its
decoder settings::

    train:
      system: {name: mae, mask_ratio: 0.8, decoder_dim: 384, decoder_depth: 4, decoder_heads: 8,
               decoder_window_sizes: [4, 8, 16, 32, 64, 128, 0, 0]}

Batches are the engine's usual ones (a mixture manifest, or clips mixed on the fly); the
audio pretrained on is ``audio: mixture`` (default), ``target`` or ``both`` (the two stacked).
One step: Kaldi fbank of each row (16 kHz) -> ``MaskedAutoencoder`` -> the normalised-patch MSE
on masked patches. Validation reports the same loss per example with a fixed masking (seed 0
per batch), so values are comparable between validations.

Checkpoints store the weights in the official ``pretrained.pth`` naming (``cls_token``,
``blocks.N...``, ``norm``, ``mask_token``, ``decoder_*``), so ``audiomae`` reads a ``best.ckpt``
of this system through its ``checkpoint:`` key like an official file (dropping the decoder).
``--init-from`` takes a sepkit checkpoint of this system or an official AudioMAE file (its
encoder; the decoder starts fresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sepkit.config import non_negative, positive, ranged
from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.config import TrainConfig
from sepkit.train.system import System

from .mae import DEFAULT_WINDOWS, MaskedAutoencoder

AUDIO_SOURCES = ("mixture", "target", "both")


@dataclass
class MAEConfig:
    mask_ratio: float = ranged(0.8, low=0, high=1, low_open=True, high_open=True)
    decoder_dim: int = positive(384)
    decoder_depth: int = positive(4)
    decoder_heads: int = positive(8)
    # one per head; 0 = global
    decoder_window_sizes: list[int] = non_negative(default_factory=lambda: list(DEFAULT_WINDOWS))
    norm_pix_loss: bool = True  # target patches normalised to mean 0, variance 1 each
    loss_on_padding: bool = False  # also count masked patches that lie wholly past a clip's end
    audio: str = "mixture"  # which batch audio to pretrain on: mixture | target | both
    validation_seed: int = 0  # masking seed of every validation batch


class MAEPretrainingSystem(System):
    """MAE pretraining of ``model.audio_encoder`` (an ``audiomae``); loss "loss" = masked-patch MSE."""

    Config = MAEConfig
    validation_metrics = ("loss",)

    def __init__(self, config: MAEConfig, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)

        from .encoder import AudioMAEEncoder

        section = recipe.section("audio_encoder")
        if section is None or section.get("name") != "audiomae":
            named = None if section is None else section.get("name")
            raise SepkitError(
                f"{recipe.source}: train.system mae pretrains an AudioMAE encoder; set model.audio_encoder: "
                f"{{name: audiomae, ...}} (got {named!r})"
            )
        if config.audio not in AUDIO_SOURCES:
            raise SepkitError(f"{recipe.source}: train.system.audio must be one of {', '.join(AUDIO_SOURCES)}")
        encoder = self.registry.build("audio_encoder", section, where="model.audio_encoder")
        assert isinstance(encoder, AudioMAEEncoder)
        if encoder.config.final_norm != "norm":
            raise SepkitError(f"{recipe.source}: MAE pretraining needs model.audio_encoder.final_norm: norm")
        try:
            self.mae = MaskedAutoencoder(
                encoder.vit,
                decoder_dim=config.decoder_dim,
                decoder_depth=config.decoder_depth,
                decoder_heads=config.decoder_heads,
                window_sizes=tuple(config.decoder_window_sizes),
                mask_ratio=config.mask_ratio,
                norm_pix_loss=config.norm_pix_loss,
            )
        except ValueError as exc:
            raise SepkitError(f"{recipe.source}: train.system (mae): {exc}") from None
        # the front end (fbank, token lengths) of the same encoder; a tuple keeps it out of the module tree,
        # so its ViT (which is ``mae.encoder``) is stored once
        self._audio_encoder = (encoder,)
        self._section_name = section.get("name")

    @property
    def audio_encoder(self):
        return self._audio_encoder[0]

    @property
    def sample_rate(self) -> int:
        return self.audio_encoder.sample_rate

    def _audio(self, batch: dict) -> tuple[Tensor, Tensor]:
        lengths = batch["lengths"]
        if self.config.audio == "both":
            return torch.cat([batch["mixture"], batch["target"]]).float(), torch.cat([lengths, lengths])
        return batch[self.config.audio].float(), lengths

    def _run(self, batch: dict, generator=None):
        wave, lengths = self._audio(batch)
        image = self.audio_encoder.fbank(wave, lengths)
        valid = None
        if not self.config.loss_on_padding:
            tokens = self.audio_encoder.token_lengths(lengths).to(image.device)
            valid = torch.arange(self.mae.encoder.num_patches, device=image.device)[None] < tokens[:, None]
        return self.mae(image, valid, generator=generator)

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        return {"loss": self._run(batch).loss}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        generator = torch.Generator().manual_seed(self.config.validation_seed)
        out = self._run(batch, generator)
        per_patch = (out.pred - out.target).pow(2).mean(dim=-1)
        per_row = (per_patch * out.weight).sum(1) / out.weight.sum(1).clamp_min(1)
        rows = batch["lengths"].shape[0]
        if per_row.shape[0] != rows:  # audio: both -> mean of the mixture's and the target's row
            per_row = per_row.reshape(2, rows).mean(0)
        return {"loss": per_row}

    # --- checkpoints: the official pretrained.pth naming ------------------------------------
    def checkpoint_state(self) -> dict[str, Tensor]:
        return self.mae.official_state_dict()

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        self.mae.load_official_state_dict(state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        entry = self.registry.get("audio_encoder", self._section_name)
        return {entry.provider: entry.version}

    def init_from(self, path: str) -> None:
        """A sepkit checkpoint of this system, or an official AudioMAE file (encoder only; fresh decoder)."""
        from sepkit.checkpoint import NotASepkitCheckpoint, load_checkpoint

        try:
            payload = load_checkpoint(path)
        except NotASepkitCheckpoint:
            from .official import load_official_encoder

            load_official_encoder(path, self.mae.encoder)
            return
        self.load_checkpoint_state(payload["state_dict"], f"checkpoint {path}")
