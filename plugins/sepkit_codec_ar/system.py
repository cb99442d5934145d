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

``condition_dropout`` p zeroes the prefix of a fraction p of the training rows (never in validation): the
same network then also models the codes without a condition, which classifier-free guidance at inference
(the decoder's ``guidance``) needs.

``code_dropout`` p (*ours*) replaces the teacher-forced input codes of a fraction p of the steps (all groups of
a step together) by uniformly random codes; the targets stay the true codes. Plain teacher forcing lets the
model predict a step mostly by copying the previous one (the codes of neighbouring 20 ms frames agree), which
free running turns into a drone that ignores the condition (``benchmarks/hsm_ladder``); corrupted inputs make
it read the features.

Validation: ``loss`` (the cross-entropy per row) and ``accuracy`` (top-1 over groups and valid
steps, per row). ``free_running_val: true`` adds what inference gives: every row decoded free running with
the decoder's own sampling settings, scored against the target as ``free_lsd`` and ``free_psnr`` (the metric
plugins lsd and psnr) and ``free_accuracy`` (the generated codes equal to the target's); teacher-forced accuracy
can rise while free-running output gets no better, so ``val_metric: free_lsd`` picks checkpoints on what
the chain will output. Checkpoints store the decoder's weights under ``decoder.*``, the pipeline's own
keys, so the decoder's ``checkpoint:`` key and a separation pipeline read them; the frozen audio
encoder and codec are not stored (they come from their own sections).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from sepkit.config import fraction, probability
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures
from sepkit.registry import Registry
from sepkit.train.config import TrainConfig
from sepkit.train.system import System

from .decoder import CodecARDecoder

FREE_RUNNING_METRICS = ("free_lsd", "free_psnr", "free_accuracy")  # free_running_val: true


@dataclass
class CodecARSystemConfig:
    label_smoothing: float = fraction(0.0)  # of the cross-entropy (0: plain CE, as the paper's Eq. 10)
    # training rows whose prefix is zeroed (the "no condition" input), so that the decoder's ``guidance`` > 1
    # (classifier-free guidance) has an unconditional model to guide against; 0: never (the paper)
    condition_dropout: float = probability(0.0)
    # *ours*: each teacher-forced input step's codes (all groups) are replaced by uniformly random codes with this
    # probability (the targets stay the true codes), so the model cannot lean on copying the previous step and has
    # to read the condition; free running it otherwise drones (benchmarks/hsm_ladder); 0: plain teacher forcing
    code_dropout: float = probability(0.0)
    # validation also decodes every row free running, as inference does (the decoder's own sampling settings), and
    # scores the waveform against the target: free_lsd, free_psnr (metric plugins lsd, psnr) and free_accuracy (the
    # generated codes equal to the target's). Teacher-forced accuracy alone misleads: it rewards copying the
    # previous step, which free running turns into a drone
    free_running_val: bool = False


class CodecARSystem(System):
    """Trains ``model.decoder`` (codec-ar) on the batch targets; loss "loss" = masked token cross-entropy."""

    Config = CodecARSystemConfig
    validation_metrics = ("loss", "accuracy")

    def __init__(self, config: CodecARSystemConfig, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)

        audio_section, decoder_section = recipe.section("audio_encoder"), recipe.section("decoder")
        if audio_section is None or decoder_section is None or decoder_section.get("name") != "codec-ar":
            raise SepkitError(
                f"{recipe.source}: train.system codec-ar needs model.audio_encoder (e.g. {{name: audiomae}}) and "
                "model.decoder: {name: codec-ar, codec: {name: ...}}"
            )
        if bool(decoder_section.get("freeze", False)):
            raise SepkitError(f"{recipe.source}: model.decoder is frozen (freeze: true); nothing to train")
        self.audio_encoder, self.decoder = self.build_models(audio_section, decoder_section)
        self.audio_encoder.requires_grad_(False).eval()
        if not isinstance(self.decoder, CodecARDecoder):  # pragma: no cover - the name check above
            raise SepkitError(f"{recipe.source}: model.decoder must be a codec-ar decoder")
        self._check_compatible(recipe.source)
        self._cached: dict[str, dict[str, Tensor]] = {}  # clip id -> cached targets (use_feature_cache)
        self._metrics = {}
        if config.free_running_val:
            self.validation_metrics = (*type(self).validation_metrics, *FREE_RUNNING_METRICS)
            self._metrics = {
                key: self.registry.build("metric", {"name": name}, where=f"train.system (codec-ar): metric {name}")
                for key, name in (("free_lsd", "lsd"), ("free_psnr", "psnr"))
            }
        self._names = {
            "audio_encoder": audio_section.get("name"),
            "decoder": "codec-ar",
            "codec": self.decoder.config.codec["name"],
        }

    def build_models(self, audio_section: Any, decoder_section: Any) -> tuple[nn.Module, nn.Module]:
        """(frozen audio encoder, decoder): the decoder takes the encoder's width, frame rate and mel patches."""
        audio_encoder = self.registry.build("audio_encoder", audio_section, where="model.audio_encoder")
        defaults = {"input_dim": audio_encoder.output_dim, "frame_rate": float(audio_encoder.frame_rate)}
        if isinstance(getattr(audio_encoder, "mel_patches", None), int):
            defaults["mel_patches"] = audio_encoder.mel_patches
        decoder = self.registry.build("decoder", decoder_section, where="model.decoder", **defaults)
        return audio_encoder, decoder

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
    def frozen_outputs(self, batch: dict) -> tuple[AudioFeatures, Tensor, Tensor]:
        """(AudioMAE features of the targets, codec codes long [B, G, T], code lengths long [B]).

        Read from the feature cache when every row of the batch is a cached clean clip (same id,
        same number of samples), else computed by the frozen audio encoder and codec.
        """
        rows = self._cached_rows(batch)
        if rows is not None:
            return self._stack_cached(rows, batch["target"].device)
        return self.compute_frozen(batch["target"].float(), batch["lengths"].long())

    @torch.no_grad()
    def compute_frozen(self, wave: Tensor, lengths: Tensor) -> tuple[AudioFeatures, Tensor, Tensor]:
        """wave float [B, T] at the audio encoder's rate -> (features, codes long [B, G, T'], code lengths [B]).

        Always in float32, whatever ``train.precision``: trained in bf16 on features the frozen
        encoders had computed in bf16, the decoder validated 0.6 points of token accuracy below its
        fp32 twin (benchmarks/train_throughput/precision_mini_hsm_tss_decoder.md); with a feature
        cache these are computed once, so float32 costs nothing per step.
        """
        with torch.autocast(device_type=wave.device.type, enabled=False):
            return self._compute_frozen(wave.float(), lengths)

    def _compute_frozen(self, wave: Tensor, lengths: Tensor) -> tuple[AudioFeatures, Tensor, Tensor]:
        features = self.audio_encoder.encode_audio(wave, lengths)
        return (features, *self.target_codes(wave, lengths))

    def target_codes(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """wave float [B, T] at the audio encoder's rate -> (codec codes long [B, G, T'], code lengths long [B]);
        the codec's input is resampled to its own rate."""
        codec = self.decoder.codec
        rate_in, rate_out = int(self.audio_encoder.sample_rate), int(codec.sample_rate)
        codec_lengths = lengths
        if rate_in != rate_out:
            wave = AF.resample(wave, rate_in, rate_out)
            codec_lengths = torch.div(lengths * rate_out + rate_in - 1, rate_in, rounding_mode="floor")
        frames = codec.encode(wave, codec_lengths)
        return frames.codes.long(), frames.lengths.long()

    def targets(
        self, batch: dict, frozen: Optional[tuple[AudioFeatures, Tensor, Tensor]] = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> (prefix [B, P, prefix_in], prefix_valid bool [B, P], codes long [B, G, T], steps long [B]).

        ``frozen``: the batch's ``frozen_outputs``, if already computed."""
        features, codes, code_lengths = frozen if frozen is not None else self.frozen_outputs(batch)
        with torch.no_grad():
            prefix, valid = self.decoder.prefix_tokens(features)
        covered = self.decoder.acoustic_steps(features).to(codes.device)
        steps = torch.minimum(code_lengths.to(codes.device), covered).clamp(1, codes.shape[-1])
        codes = codes[..., : int(steps.max())]
        if codes.shape[-1] > self.decoder.lm.max_steps:
            raise SepkitError(
                f"{self.recipe.source}: targets of {codes.shape[-1]} codec frames, but model.decoder has positions for "
                f"{self.decoder.lm.max_steps} (max_seconds={self.decoder.config.max_seconds}); set data.crop_seconds "
                "to at most max_seconds or raise max_seconds"
            )
        return prefix, valid, codes, steps

    # --- cached frozen features: AudioMAE tokens and codec codes of clean clips --------------------
    def _store_meta(self, manifest: Path) -> dict:
        from sepkit.data.manifest import read_clips, resolve_path
        from sepkit.train.feature_cache import component_fingerprint, source_stamp

        clips = read_clips(manifest)
        files = [resolve_path(c.path, manifest.parent) for c in clips]
        audio = component_fingerprint(self.audio_encoder, self.recipe.section("audio_encoder"), "-")
        codec = component_fingerprint(self.decoder.codec, self.decoder.config.codec, "-")
        extra = {
            "what": "codec-ar targets of clean clips: audio_encoder frames and codec codes",
            "audio_encoder": audio["fingerprint"],
            "codec": codec["fingerprint"],
            "source": source_stamp(manifest, files),
        }
        return component_fingerprint(nn.Identity(), {}, "fp32", extra)  # compute_frozen runs in float32

    def cache_features(self, manifest: Path, data: Any, device: torch.device, progress: bool = True) -> dict:
        """AudioMAE tokens and codec codes of every clip of ``manifest`` (first ``seconds`` of each).

        ``data``: the recipe's DataConfig; the clips are cut as its ``protocol: clean`` split does.
        """
        from tqdm import tqdm

        from sepkit.data.dataset import CLEAN_PROTOCOL, CleanClipDataset, collate_mixtures
        from sepkit.data.manifest import ClipCache, read_clips
        from sepkit.train.feature_cache import FeatureStore, is_mixture_manifest

        manifest = Path(manifest).resolve()
        if is_mixture_manifest(manifest):
            return {"not cached": f"{manifest.name} is a mixture manifest: its targets are encoded on the fly"}
        seconds = None
        for split in (data.train, data.val):
            if split is not None and split.protocol == CLEAN_PROTOCOL and split.seconds is not None:
                seconds = split.seconds
        clips = read_clips(manifest)
        cache = ClipCache(self.sample_rate, base_dir=manifest.parent, capacity=0)
        dataset = CleanClipDataset(clips, cache, seconds=seconds)
        store = FeatureStore.at(manifest, "codec-ar", self._store_meta(manifest))
        entries = store.load()
        todo = [i for i, clip in enumerate(clips) if clip.id not in entries]
        self.eval()
        size = max(1, int(self.train_cfg.batch_size))
        for start in tqdm(range(0, len(todo), size), desc="cache clips", unit="batch", disable=not progress):
            batch = collate_mixtures([dataset[i] for i in todo[start : start + size]])
            wave, lengths = batch["target"].to(device), batch["lengths"].to(device)
            features, codes, code_lengths = self.compute_frozen(wave, lengths)
            for row, clip_id in enumerate(batch["id"]):
                entries[clip_id] = cache_entry(row, lengths, features, codes, code_lengths)
        store.save(entries)
        return {
            "codec-ar": {"store": str(store.folder), "clips": len(entries), "computed": len(todo), "seconds": seconds},
            "not cached": "validation mixtures' targets (a mixture manifest is encoded on the fly)",
        }

    def use_feature_cache(self, manifests: list[Path]) -> list[str]:
        from sepkit.train.feature_cache import FeatureStore, is_mixture_manifest

        found, lines = {}, []
        for manifest in manifests:
            if is_mixture_manifest(manifest):  # targets of mixtures are mixed, not cached
                continue
            store = FeatureStore.at(manifest, "codec-ar", self._store_meta(manifest))
            entries = store.load()
            if entries:
                found.update(entries)
                lines.append(f"feature cache: codec-ar targets of {len(entries)} clips from {store.folder}")
        self._cached = found
        if not lines:
            lines.append("feature cache: none for codec-ar (clean clips: protocol clean + sepkit data cache)")
        return lines

    def cache_keys(self, batch: dict) -> list[str]:
        """The feature-cache key of each row: its clip id."""
        return list(batch["id"])

    def _cached_rows(self, batch: dict) -> Optional[list[dict]]:
        cached = self._cached
        if not cached or "id" not in batch:
            return None
        rows = []
        for key, n in zip(self.cache_keys(batch), batch["lengths"].tolist()):
            entry = cached.get(key)
            if entry is None or int(entry["samples"]) != int(n):
                return None
            rows.append(entry)
        return rows

    def _stack_cached(self, rows: list[dict], device: torch.device) -> tuple[AudioFeatures, Tensor, Tensor]:
        tokens = max(r["frames"].shape[0] for r in rows)
        frames = torch.stack([_pad_first(r["frames"], tokens) for r in rows]).to(device)
        width = max(r["codes"].shape[-1] for r in rows)
        codes = torch.stack([F.pad(r["codes"].long(), (0, width - r["codes"].shape[-1])) for r in rows]).to(device)
        features = AudioFeatures(
            frames=frames,
            lengths=torch.stack([r["frame_length"] for r in rows]).to(device),
            frame_rate=float(self.audio_encoder.frame_rate),
        )
        code_lengths = torch.tensor([r["codes"].shape[-1] for r in rows], device=device)
        return features, codes, code_lengths

    def token_losses(
        self, batch: dict, frozen: Optional[tuple[AudioFeatures, Tensor, Tensor]] = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """-> (cross-entropy float [B, G, T], correct float [B, G, T], valid-step mask float [B, 1, T])."""
        prefix, valid, codes, steps = self.targets(batch, frozen)
        if self.training and self.config.condition_dropout > 0:
            keep = torch.rand(prefix.shape[0], device=prefix.device) >= self.config.condition_dropout
            prefix = prefix * keep[:, None, None].to(prefix.dtype)
        inputs = self.corrupted_inputs(codes) if self.training and self.config.code_dropout > 0 else codes
        logits = self.decoder.lm(prefix, valid, inputs).float()  # [B, G, T, K]: step t reads inputs[..., :t]
        ce = F.cross_entropy(
            logits.permute(0, 3, 1, 2), codes, reduction="none", label_smoothing=self.config.label_smoothing
        )
        correct = (logits.argmax(-1) == codes).float()
        return ce, correct, step_mask(steps, codes.shape[-1])

    def corrupted_inputs(self, codes: Tensor) -> Tensor:
        """codes long [B, G, T] -> the same with each step's codes (all groups together) replaced by uniformly
        random codes with probability ``code_dropout`` (teacher-forced inputs only; the loss keeps ``codes``)."""
        b, g, t = codes.shape
        replace = torch.rand(b, 1, t, device=codes.device) < self.config.code_dropout
        noise = torch.randint_like(codes, self.decoder.lm.codebook_size)
        return torch.where(replace, noise, codes)

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        ce, correct, mask = self.token_losses(batch)
        count = (mask.sum() * ce.shape[1]).clamp_min(1)
        return {"loss": (ce * mask).sum() / count, "accuracy": ((correct * mask).sum() / count).detach()}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        frozen = self.frozen_outputs(batch)  # once: the free-running scores read the same features and codes
        ce, correct, mask = self.token_losses(batch, frozen)
        count = (mask.sum((1, 2)) * ce.shape[1]).clamp_min(1)
        out = {"loss": (ce * mask).sum((1, 2)) / count, "accuracy": (correct * mask).sum((1, 2)) / count}
        if self.config.free_running_val:
            out |= self.free_running_scores(batch, frozen)
        return out

    @torch.no_grad()
    def free_running_scores(self, batch: dict, frozen: tuple[AudioFeatures, Tensor, Tensor]) -> dict[str, Tensor]:
        """Per row float [B]: the decoder's free-running output (as at inference) against the target.

        ``frozen``: the batch's ``frozen_outputs``. ``free_lsd`` and ``free_psnr`` score each row's valid samples
        at the batch rate; ``free_accuracy`` is the fraction of the target's codes (valid steps, all groups) the
        generation reproduced.
        """
        features = frozen[0]
        _, _, codes, steps = self.targets(batch, frozen)
        target, lengths = batch["target"].float(), batch["lengths"].long()
        generated = self.decoder.generate_codes(features)
        n = min(generated.shape[-1], codes.shape[-1])
        valid = step_mask(steps, n)
        equal = (generated[..., :n].to(codes.device) == codes[..., :n]).float()
        accuracy = (equal * valid).sum((1, 2)) / (valid.sum((1, 2)) * codes.shape[1]).clamp_min(1)
        wave = self.decoder.codec.decode(generated).float()
        rate_in, rate_out = int(self.decoder.sample_rate), int(self.sample_rate)
        if rate_in != rate_out:
            wave = AF.resample(wave, rate_in, rate_out)
        lsd, psnr = [], []
        for row in range(target.shape[0]):
            length = int(lengths[row])
            estimate = F.pad(wave[row, :length], (0, max(0, length - wave.shape[-1])))[None]
            reference = target[row : row + 1, :length]
            lsd.append(self._metrics["free_lsd"].score(estimate, reference, self.sample_rate).reshape(()))
            psnr.append(self._metrics["free_psnr"].score(estimate, reference, self.sample_rate).reshape(()))
        device = target.device
        return {
            "free_lsd": torch.stack(lsd).float().to(device),
            "free_psnr": torch.stack(psnr).float().to(device),
            "free_accuracy": accuracy.to(device),
        }

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


def cache_entry(row: int, lengths: Tensor, features: AudioFeatures, codes: Tensor, code_lengths: Tensor) -> dict:
    """One feature-cache entry (what ``_stack_cached`` reads back), on the CPU: row ``row``'s sample count, its
    features (frames [N, C], frame count) and its valid codec codes (int32 [G, T'])."""
    return {
        "samples": lengths[row].cpu().clone(),
        "frames": features.frames[row].float().cpu().clone(),
        "frame_length": features.lengths[row].cpu().clone(),
        "codes": codes[row, :, : int(code_lengths[row])].to(torch.int32).cpu().clone(),
    }


def step_mask(steps: Tensor, length: int) -> Tensor:
    """steps long [B] -> float [B, 1, length]: 1 for each row's first ``steps`` acoustic steps."""
    return (torch.arange(length, device=steps.device)[None] < steps[:, None]).float()[:, None]


def _pad_first(x: Tensor, size: int) -> Tensor:
    """``x`` zero-padded along its first axis to ``size``."""
    if x.shape[0] == size:
        return x
    return torch.cat([x, x.new_zeros(size - x.shape[0], *x.shape[1:])])
