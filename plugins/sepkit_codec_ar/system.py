"""The ``codec-ar`` training system: teacher-forced cross-entropy of HSM-TSS's AR codec-token decoder.

The recipe names the frozen audio encoder and the decoder to train, whose ``codec:`` sub-section
names the frozen codec::

    model:
      audio_encoder: {name: audiomae, checkpoint: pretrained.pth}
      decoder: {name: codec-ar, codec: {name: tfcodec, checkpoint: tfcodec.ckpt}}
    train:
      system: codec-ar

Batches are the engine's usual ones; only ``target`` (float [B, T] at the audio encoder's rate,
16 kHz) and ``lengths`` are used, as the paper trains H3 on audio alone. One step:

    S_tgt  = audio_encoder.encode_audio(target)            # frozen, [B, N, 768] AudioMAE tokens
    codes  = codec.encode(resample(target, codec rate))     # frozen, long [B, G, T]
    logits = decoder.lm(prefix(S_tgt), codes)               # teacher forcing, [B, G, T, K]
    loss   = cross-entropy over all G groups of every valid step (padding steps masked)

A row's valid steps are its codec frames, cut to the duration its audio-encoder tokens cover
(AudioMAE sees at most 10.24 s; longer targets are trained on their first window). The
``model.decoder`` section gets the audio encoder's ``output_dim`` as ``input_dim``, its
``frame_rate`` and (AudioMAE) ``mel_patches`` as defaults; values the recipe sets win.

Validation: ``loss`` (the cross-entropy per row) and ``accuracy`` (top-1 over groups and valid
steps, per row). Checkpoints store the decoder's weights under ``decoder.*``, the pipeline's own
keys, so the decoder's ``checkpoint:`` key and a separation pipeline read them; the frozen audio
encoder and codec are not stored (they come from their own sections).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from sepkit.config import fraction
from sepkit.errors import SepkitError
from sepkit.train.config import TrainConfig
from sepkit.train.system import System

from .codec import codec_registry
from .decoder import CodecARDecoder


@dataclass
class CodecARSystemConfig:
    label_smoothing: float = fraction(0.0)  # of the cross-entropy (0: plain CE, as the paper's Eq. 10)


class CodecARSystem(System):
    """Trains ``model.decoder`` (codec-ar) on the batch targets; loss "loss" = masked token cross-entropy."""

    Config = CodecARSystemConfig
    validation_metrics = ("loss", "accuracy")

    def __init__(self, config: CodecARSystemConfig, recipe: Any, train: TrainConfig, registry: Any = None) -> None:
        super().__init__(config, recipe, train, registry)
        from sepkit.plugins import get_registry

        self.registry = registry or get_registry()
        audio_section, decoder_section = recipe.section("audio_encoder"), recipe.section("decoder")
        if audio_section is None or decoder_section is None or decoder_section.get("name") != "codec-ar":
            raise SepkitError(
                f"{recipe.source}: train.system codec-ar needs model.audio_encoder (e.g. {{name: audiomae}}) and "
                "model.decoder: {name: codec-ar, codec: {name: ...}}"
            )
        if bool(decoder_section.get("freeze", False)):
            raise SepkitError(f"{recipe.source}: model.decoder is frozen (freeze: true); nothing to train")
        self.audio_encoder = self.registry.build("audio_encoder", audio_section, where="model.audio_encoder")
        self.audio_encoder.requires_grad_(False).eval()
        defaults = {"input_dim": self.audio_encoder.output_dim, "frame_rate": float(self.audio_encoder.frame_rate)}
        if isinstance(getattr(self.audio_encoder, "mel_patches", None), int):
            defaults["mel_patches"] = self.audio_encoder.mel_patches
        with codec_registry(self.registry):
            self.decoder = self.registry.build("decoder", decoder_section, where="model.decoder", **defaults)
        if not isinstance(self.decoder, CodecARDecoder):  # pragma: no cover - the name check above
            raise SepkitError(f"{recipe.source}: model.decoder must be a codec-ar decoder")
        self._check_compatible(recipe.source)
        self._names = {
            "audio_encoder": audio_section.get("name"),
            "decoder": "codec-ar",
            "codec": self.decoder.config.codec["name"],
        }

    def _check_compatible(self, source: str) -> None:
        audio, dec = self.audio_encoder, self.decoder
        pairs = [
            ("consumes", dec.consumes, "representation", audio.representation),
            ("input_dim", dec.input_dim, "output_dim", audio.output_dim),
            ("frame_rate", dec.frame_rate, "frame_rate", float(audio.frame_rate)),
        ]
        for a_attr, a, b_attr, b in pairs:
            if (abs(a - b) > 1e-6) if isinstance(a, float) else a != b:
                raise SepkitError(
                    f"{source}: decoder 'codec-ar' has {a_attr}={a!r} but audio_encoder {self._label()} has "
                    f"{b_attr}={b!r}; make them agree in the recipe"
                )

    def _label(self) -> str:
        return repr(self.recipe.section("audio_encoder").get("name"))

    def train(self, mode: bool = True) -> CodecARSystem:
        """The frozen audio encoder (and the decoder's codec) stay in eval mode."""
        super().train(mode)
        self.audio_encoder.eval()
        return self

    @property
    def sample_rate(self) -> int:
        """Hz of the batches: the audio encoder's (16 kHz for AudioMAE); the codec's input is resampled."""
        return self.audio_encoder.sample_rate

    # --- a step ---------------------------------------------------------------------------
    def targets(self, batch: dict) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (prefix [B, P, prefix_in], prefix_valid bool [B, P], codes long [B, G, T], steps long [B])."""
        wave, lengths = batch["target"].float(), batch["lengths"].long()
        codec = self.decoder.codec
        with torch.no_grad():
            features = self.audio_encoder.encode_audio(wave, lengths)
            prefix, valid = self.decoder.prefix_tokens(features)
            rate_in, rate_out = int(self.audio_encoder.sample_rate), int(codec.sample_rate)
            codec_lengths = lengths
            if rate_in != rate_out:
                wave = AF.resample(wave, rate_in, rate_out)
                codec_lengths = torch.div(lengths * rate_out + rate_in - 1, rate_in, rounding_mode="floor")
            frames = codec.encode(wave, codec_lengths)
        codes = frames.codes.long()
        covered = self.decoder.acoustic_steps(features).to(codes.device)
        steps = torch.minimum(frames.lengths.to(codes.device).long(), covered).clamp(1, codes.shape[-1])
        codes = codes[..., : int(steps.max())]
        if codes.shape[-1] > self.decoder.lm.max_steps:
            raise SepkitError(
                f"{self.recipe.source}: targets of {codes.shape[-1]} codec frames, but model.decoder has positions for "
                f"{self.decoder.lm.max_steps} (max_seconds={self.decoder.config.max_seconds}); set data.crop_seconds "
                "to at most max_seconds or raise max_seconds"
            )
        return prefix, valid, codes, steps

    def token_losses(self, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """-> (cross-entropy float [B, G, T], correct float [B, G, T], valid-step mask float [B, 1, T])."""
        prefix, valid, codes, steps = self.targets(batch)
        logits = self.decoder.lm(prefix, valid, codes).float()  # [B, G, T, K]
        ce = F.cross_entropy(
            logits.permute(0, 3, 1, 2), codes, reduction="none", label_smoothing=self.config.label_smoothing
        )
        correct = (logits.argmax(-1) == codes).float()
        mask = (torch.arange(codes.shape[-1], device=codes.device)[None] < steps[:, None]).float()[:, None]
        return ce, correct, mask

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        ce, correct, mask = self.token_losses(batch)
        count = (mask.sum() * ce.shape[1]).clamp_min(1)
        return {"loss": (ce * mask).sum() / count, "accuracy": ((correct * mask).sum() / count).detach()}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        ce, correct, mask = self.token_losses(batch)
        count = (mask.sum((1, 2)) * ce.shape[1]).clamp_min(1)
        return {"loss": (ce * mask).sum((1, 2)) / count, "accuracy": (correct * mask).sum((1, 2)) / count}

    # --- checkpoints: the pipeline's decoder.* keys -------------------------------------------
    def checkpoint_state(self) -> dict[str, Tensor]:
        return {f"decoder.{k}": v for k, v in self.decoder.state_dict().items()}

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        load_state_dict_checked(nn.ModuleDict({"decoder": self.decoder}), state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        out = {}
        for kind, name in self._names.items():
            entry = self.registry.get(kind, name)
            out[entry.provider] = entry.version
        return out
