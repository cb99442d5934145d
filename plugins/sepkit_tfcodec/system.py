"""The ``tfcodec`` training system: TF-Codec as a GAN codec through ``sepkit train``.

The recipe names the codec as ``model.codec: {name: tfcodec, ...}`` (with ``checkpoint:`` training
continues from those weights, as HSM-TSS fine-tunes a speech TF-Codec on general audio) and picks
this system::

    train:
      system: {name: tfcodec, audio: both, mel_loss_weight: 0.25, adversarial_weight: 0.001, ...}

Each step has two phases (``optimizer_names``):

1. "discriminator": the multi-scale mel discriminator on the batch audio (real) and the codec's
   reconstruction (computed without gradients), LSGAN loss.
2. "generator": the codec's losses, as TF-Codec's stage-2 training weighs them:
   1.0 x power-compressed spectral MSE + 0.25 x multi-window mel L1 (``mel_scale: linear``, TF-Codec's
   linear mels; ``log``: L1 between log mels) + the VQ commitment loss
   (0.25; the codebooks follow moving averages, see ``quantizer``, so the codebook loss is 0),
   and from step ``adversarial_start`` on 0.001 x LSGAN generator loss
   + 0.1 x discriminator feature matching.

Rate (TF-Codec's entropy loss, ``entropy``): with ``rate_weight`` > 0 the generator loss adds
``rate_weight x sum_g |H_g - target_entropy / G|``, H_g the soft estimate (bits) of group g's code
entropy over the batch's valid code frames at ``rate_temperature``; the step logs ``rate`` (that sum),
``entropy_bits`` (sum_g H_g, bits per code frame) and ``kbps`` (entropy_bits x frame rate / 1000), and
validation reports ``entropy_bits`` and ``kbps`` of each validation batch (the batch's value for each
of its examples; a batch statistic, biased low for small batches). TF-Codec's 6 kbps stage 2 is
``rate_weight: 4.0e-4`` (its 0.01 x L1 per group, weighted 0.04) with ``target_entropy: 120`` (16
groups at 50 frames/s). ``rate_weight: 0`` (the default) is the system without a rate: the same
losses, logs, validation metrics and checkpoint keys.

``stft_loss_weight`` > 0 adds that weight x the multi-resolution log-STFT magnitude L1
(``losses.multi_resolution_log_stft``, ``stft_windows``, default 512 / 1024 / 2048, linear frequency) to the
reconstruction loss (ours: TF-Codec has no such term); it sees the harmonic peaks and valleys that the 20 ms
spectral MSE and the 64-band mels do not resolve. The step logs it as ``stft``.

``train_part: decoder`` trains the decoder alone: the encoder, its batch-norm statistics and the codebooks stay
in eval mode with no gradients, so every clip keeps the codes it had, and a codec-ar trained on those codes
stays valid (``recipes/mini/tfcodec_decoder.yaml``). ``all`` (the default) trains the whole codec.

While ``step < adversarial_start`` (a reconstruction warm-up, TF-Codec's stage 1) the discriminator
phase is skipped: no codec or discriminator forward, no discriminator update (the warm-up step costs
about 0.5 s instead of 0.9 s with the mini recipe on one CPU thread).

``mel_scale``: on sepkit-mini's clips (peaks 0.5 to 0.9, louder than TF-Codec's speech) the linear
mel L1 outweighs the complex spectral term and the codec never learns the phase: fitting one batch of
four 1.5 s test targets for 150 steps (mini sizes, lr 1e-3), the output's correlation with the target
reached 0.86 with the spectral loss alone, 0.29 with + 0.25 x linear mel L1 and 0.82 with + 0.25 x
log-mel L1 (the 14,000-step warm-up campaign with linear mels stayed at validation SI-SDR -33 dB and
14 to 23 dB too quiet). The mini recipes use ``log``; the full-size recipe keeps TF-Codec's ``linear``.

Batches are the engine's usual ones; the audio trained on is ``audio: target`` (the single
sources), ``mixture`` or ``both`` (stacked). Validation reconstructs the audio in eval mode and
reports per example ``loss`` (the reconstruction part of the generator loss), ``mel_distance``
(mean |log10 mel| difference, 80 mels at 1024 / 256), ``si_sdr`` (dB), ``rms_db`` (the
reconstruction's level relative to the target's, dB), ``lsd`` (in dB: 10 log10
power ratios, STFT 512 / 128; about ten times the ``lsd`` metric plugin's number, which uses log10
power ratios), ``code_usage`` (the fraction of each group's codes the example uses, averaged over
groups; a collapsed codebook shows as a value near 1 / codebook_size, and it can be no larger than
code frames / codebook_size: 76 / 256 = 0.30 for 1.5 s clips) and, as ``sepkit metrics`` and the
benchmark compute them (metric plugins ``lsd`` and ``psnr``, whole rows), ``lsd_audioldm`` and
``mel_psnr`` (dB). To keep the checkpoint these are best at, set ``val_metric: lsd_audioldm`` with
``val_mode: min`` (or ``mel_psnr``, which ``auto`` maximises).

Checkpoints hold ``codec.*`` (the ``tfcodec`` component) and ``discriminator.*``; the ``tfcodec``
codec reads such a ``best.ckpt`` through its ``checkpoint:`` key and drops the discriminator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from sepkit.config import non_negative, positive
from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.config import TrainConfig
from sepkit.train.system import System, length_mask, si_sdr

from .discriminator import (
    MultiScaleMelDiscriminator,
    feature_matching_loss,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)
from .entropy import TEMPERATURE, estimate_rate, frame_mask, rate_loss
from .losses import (
    STFT_WINDOWS,
    lsd,
    mel_distance,
    multi_resolution_log_stft,
    multi_window_mel,
    power_compressed_mse,
    rms_db,
)
from .quantizer import Quantized

AUDIO_SOURCES = ("target", "mixture", "both")
TRAIN_PARTS = ("all", "decoder")
MEL_SCALES = ("linear", "log")


@dataclass
class TFCodecTrainingConfig:
    audio: str = "target"  # batch audio to code: target | mixture | both
    spectral_loss_weight: float = non_negative(1.0)  # power-compressed STFT MSE
    mel_loss_weight: float = non_negative(0.25)  # multi-window mel L1
    mel_scale: str = "linear"  # linear (TF-Codec's) | log: L1 between log mels
    commitment_loss_weight: float = non_negative(0.25)
    adversarial_weight: float = non_negative(0.001)  # LSGAN generator loss
    feature_matching_weight: float = non_negative(0.1)
    adversarial_start: int = non_negative(0)  # first step whose generator loss has the adversarial terms
    disc_ffts: list[int] = positive(default_factory=lambda: [512, 1024, 2048])
    disc_mels: list[int] = positive(default_factory=lambda: [64, 80, 128])
    disc_channels: int = positive(32)
    disc_layers: int = positive(4)
    rate_weight: float = non_negative(0.0)  # x sum_g |H_g - target_entropy / G| (bits); 0: no rate loss
    target_entropy: float = positive(120.0)  # bits per code frame, all groups (TF-Codec 6 kbps: 120 x 50 Hz)
    rate_temperature: float = positive(TEMPERATURE)  # soft assignments softmax(-distance / T) (TF-Codec: 0.2)
    stft_loss_weight: float = non_negative(0.0)  # multi-resolution log-STFT magnitude L1 (linear frequency)
    stft_windows: list[int] = positive(default_factory=lambda: list(STFT_WINDOWS))
    train_part: str = "all"  # all | decoder: encoder and codebooks frozen, so the codes stay the checkpoint's


class TFCodecSystem(System):
    """GAN training of ``model.codec`` (a ``tfcodec``) with a multi-scale mel discriminator."""

    Config = TFCodecTrainingConfig
    optimizer_names = ("discriminator", "generator")
    validation_metrics = (
        "loss",
        "mel_distance",
        "si_sdr",
        "lsd",
        "rms_db",
        "code_usage",
        "lsd_audioldm",
        "mel_psnr",
    )

    def __init__(self, config: TFCodecTrainingConfig, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)

        from .codec import TFCodec

        section = recipe.section("codec")
        if section is None or section.get("name") != "tfcodec":
            named = None if section is None else section.get("name")
            raise SepkitError(
                f"{recipe.source}: train.system tfcodec trains a TF-Codec; set model.codec: {{name: tfcodec, ...}} "
                f"(got {named!r})"
            )
        if config.mel_scale not in MEL_SCALES:
            raise SepkitError(
                f"{recipe.source}: train.system.mel_scale must be one of {', '.join(MEL_SCALES)} "
                f"(got {config.mel_scale!r})"
            )
        if config.audio not in AUDIO_SOURCES:
            raise SepkitError(f"{recipe.source}: train.system.audio must be one of {', '.join(AUDIO_SOURCES)}")
        if config.train_part not in TRAIN_PARTS:
            raise SepkitError(
                f"{recipe.source}: train.system.train_part must be one of {', '.join(TRAIN_PARTS)} "
                f"(got {config.train_part!r})"
            )
        if config.train_part == "decoder" and config.rate_weight > 0:
            raise SepkitError(
                f"{recipe.source}: train.system.rate_weight shapes the codes, which train_part: decoder keeps "
                "fixed; set rate_weight: 0 or train_part: all"
            )
        self.codec = self.registry.build("codec", section, where="model.codec")
        assert isinstance(self.codec, TFCodec)
        if config.train_part == "decoder":
            for module in self.codec.net.coding_modules():
                module.requires_grad_(False)
        try:
            self.discriminator = MultiScaleMelDiscriminator(
                config.disc_ffts, config.disc_mels, config.disc_channels, config.disc_layers
            )
        except ValueError as exc:
            raise SepkitError(f"{recipe.source}: train.system (tfcodec): {exc}") from None
        if config.rate_weight > 0:
            most = self.codec.num_codebooks * math.log2(self.codec.codebook_size)
            if config.target_entropy > most:
                raise SepkitError(
                    f"{recipe.source}: train.system.target_entropy={config.target_entropy:g} bits per code frame, "
                    f"but {self.codec.num_codebooks} groups of {self.codec.codebook_size} codes carry at most "
                    f"{most:g}; set a target below that"
                )
            self.validation_metrics = (*type(self).validation_metrics, "entropy_bits", "kbps")
        # the metric plugins the targets and the benchmark use (not modules: they hold no weights)
        self._metrics = {
            key: self.registry.build("metric", {"name": name}, where=f"train.system (tfcodec): metric {name}")
            for key, name in (("lsd_audioldm", "lsd"), ("mel_psnr", "psnr"))
        }

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    def train(self, mode: bool = True) -> TFCodecSystem:
        """``train_part: decoder`` keeps the encoder and quantiser in eval mode: their batch-norm statistics
        and codebooks (moving averages) stay the checkpoint's, and so do the codes."""
        super().train(mode)
        if self.config.train_part == "decoder":
            for module in self.codec.net.coding_modules():
                module.eval()
        return self

    def parameters_for(self, optimizer: str) -> list:
        module = self.discriminator if optimizer == "discriminator" else self.codec
        return [p for p in module.parameters() if p.requires_grad]

    def _audio(self, batch: dict) -> tuple[Tensor, Tensor]:
        lengths = batch["lengths"]
        if self.config.audio == "both":
            return torch.cat([batch["mixture"], batch["target"]]).float(), torch.cat([lengths, lengths])
        return batch[self.config.audio].float(), lengths

    def _reconstruction_losses(self, estimate: Tensor, wave: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """Per-example float [B] spectral and mel losses (and ``stft`` with ``stft_loss_weight`` > 0)."""
        out = {
            "spectral": power_compressed_mse(estimate, wave, mask),
            "mel": multi_window_mel(estimate, wave, mask, log=self.config.mel_scale == "log"),
        }
        if self.config.stft_loss_weight > 0:
            out["stft"] = multi_resolution_log_stft(estimate, wave, mask, self.config.stft_windows)
        return out

    def _reconstruction_loss(self, rec: dict[str, Tensor]) -> Tensor:
        """The weighted sum of ``_reconstruction_losses``' terms (float [B], or a scalar of their means)."""
        c = self.config
        loss = c.spectral_loss_weight * rec["spectral"] + c.mel_loss_weight * rec["mel"]
        if "stft" in rec:
            loss = loss + c.stft_loss_weight * rec["stft"]
        return loss

    def _reconstruct(self, wave: Tensor) -> tuple[Tensor, Quantized]:
        """(reconstruction float [B, T], Quantized) for training; ``train_part: decoder`` chooses the codes
        without gradients, so only the decoder learns."""
        if self.config.train_part == "all":
            return self.codec.net(wave, with_distances=self.config.rate_weight > 0)
        with torch.no_grad():
            q = self.codec.net.quantize(wave)
        return self.codec.net.decode_latents(q.quantized)[:, : wave.shape[-1]], q

    def _rate(self, distances: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        """The soft code entropy of the batch's valid code frames: ``group_bits`` float [G], ``entropy_bits``
        (their sum, bits per code frame) and ``kbps``."""
        mask = frame_mask(self.codec.net.code_frames(lengths), distances.shape[1])
        group_bits = estimate_rate(distances, self.config.rate_temperature, mask)
        bits = group_bits.sum()
        return {"group_bits": group_bits, "entropy_bits": bits, "kbps": bits * self.codec.frame_rate / 1000}

    def training_step(self, batch: dict, step: int, optimizer: str = "generator") -> dict[str, Tensor]:
        c = self.config
        wave, lengths = self._audio(batch)
        mask = length_mask(lengths, wave.shape[-1])
        if optimizer == "discriminator":
            if step < c.adversarial_start:  # reconstruction warm-up: the discriminator is not used yet
                return {"loss": self.idle_phase_loss("discriminator", wave.device)}
            with torch.no_grad():
                estimate = self.codec.net(wave)[0] * mask
            loss = lsgan_discriminator_loss(self.discriminator(wave), self.discriminator(estimate))
            return {"loss": loss}
        estimate, q = self._reconstruct(wave)
        estimate = estimate * mask
        rec = self._reconstruction_losses(estimate, wave, mask)
        out = {key: value.mean() for key, value in rec.items()}
        out["commitment"] = q.commitment_loss
        loss = self._reconstruction_loss(out) + c.commitment_loss_weight * out["commitment"]
        if c.rate_weight > 0:
            rate = self._rate(q.distances, lengths)
            out["rate"] = rate_loss(rate["group_bits"], c.target_entropy)
            out["entropy_bits"], out["kbps"] = rate["entropy_bits"].detach(), rate["kbps"].detach()
            loss = loss + c.rate_weight * out["rate"]
        if step >= c.adversarial_start and (c.adversarial_weight or c.feature_matching_weight):
            fake = self.discriminator(estimate)
            with torch.no_grad():
                real = self.discriminator(wave)
            out["adversarial"] = lsgan_generator_loss(fake)
            out["feature_matching"] = feature_matching_loss(real, fake)
            adversarial = c.adversarial_weight * out["adversarial"]
            loss = loss + adversarial + c.feature_matching_weight * out["feature_matching"]
        out["loss"] = loss
        return out

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        c = self.config
        wave, lengths = self._audio(batch)
        mask = length_mask(lengths, wave.shape[-1])
        frames = self.codec.encode(wave, lengths)
        estimate = self.codec.decode(frames.codes)[:, : wave.shape[-1]]
        estimate = torch.nn.functional.pad(estimate, (0, wave.shape[-1] - estimate.shape[-1])) * mask
        rec = self._reconstruction_losses(estimate, wave, mask)
        metrics = {
            "loss": self._reconstruction_loss(rec),
            "mel_distance": mel_distance(estimate, wave, mask),
            "si_sdr": si_sdr(estimate, wave, lengths),
            "lsd": lsd(estimate, wave, mask),
            "rms_db": rms_db(estimate, wave, mask),
            "code_usage": torch.stack(
                [self.codec.net.quantizer.usage(frames.codes[i : i + 1]).mean() for i in range(wave.shape[0])]
            ),
        }
        for key, metric in self._metrics.items():
            metrics[key] = metric.score(estimate.float(), wave.float(), self.sample_rate).to(wave.device)
        if c.rate_weight > 0:
            rate = self._rate(self.codec.net.quantize(wave, with_distances=True).distances, lengths)
            metrics |= {key: rate[key].expand(wave.shape[0]) for key in ("entropy_bits", "kbps")}
        rows = batch["lengths"].shape[0]
        if self.config.audio == "both":  # the mean of the mixture's and the target's row
            metrics = {k: v.reshape(2, rows).mean(0) for k, v in metrics.items()}
        return metrics

    def plugin_versions(self) -> dict[str, str]:
        entry = self.registry.get("codec", "tfcodec")
        return {entry.provider: entry.version}
