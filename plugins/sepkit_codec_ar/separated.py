"""The ``codec-ar-separated`` training system (*ours*): codec-ar fine-tuned on the separation stages' estimates.

The ``codec-ar`` system trains H3 as the paper does, on the clean target's own AudioMAE tokens S_tgt. At
inference H3 reads what the separation stages predict, S_hat, which is never that clean: on the mini chain
the oracle ladder (``benchmarks/hsm_ladder``) loses most of its quality between rung 2 (codec-ar on S_tgt) and
rung 3 (on the local stage's S_hat). This system continues training the decoder on the inputs it will get,
as neural vocoders are fine-tuned on a TTS model's predicted spectrograms: mixtures drawn by the recipe's
protocol, the frozen encoders and separator of a whole HSM-TSS recipe predicting S_hat, the target's codec
codes as the labels. The recipe is a separation recipe with a trainable decoder::

    model:
      text_encoder:  {name: qaudio, part: text, freeze: true, ...}
      audio_encoder: {name: qaudio, part: audio, freeze: true, ...}
      separator:     {name: hsm-local, checkpoint: separator.ckpt, ...}   # frozen here, whatever its keys say
      decoder:       {name: codec-ar, checkpoint: codec_ar.ckpt, ...}     # trained
    train:
      system: {name: codec-ar-separated, code_dropout: 0.3, free_running_val: true}
    data:
      train: {clips: train.jsonl, protocol: hsm_tss}                       # mixtures, extract and remove

One step (the frozen part without gradients, in float32 as inference runs it):

    query  = text_encoder(description) (+ task tokens)
    S_hat  = separator.separate(audio_encoder.encode_audio(mixture), query, task)   # [B, N, C]
    codes  = codec.encode(resample(target, codec rate))                             # long [B, G, T]
    loss   = the codec-ar cross-entropy of codes given prefix(S_hat) (and code_dropout), as ``codec-ar``

Validation is ``codec-ar``'s on the same inputs: with ``free_running_val: true`` its ``free_lsd`` /
``free_psnr`` score the whole chain's output on the validation mixtures. Checkpoints store only
``decoder.*``, so the file is a drop-in ``checkpoint:`` for the decoder of the recipe it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sepkit.assembly import build_components, check_compatible
from sepkit.config import non_negative
from sepkit.errors import SepkitError
from sepkit.instructions import TASKS
from sepkit.interfaces import AudioFeatures, encode_descriptions
from sepkit.task_tokens import append_task_tokens
from sepkit.train.feature_cache import CachedTextEncoder

from .system import CodecARSystem, CodecARSystemConfig, cache_entry

FROZEN_KINDS = ("text_encoder", "audio_encoder", "separator")


def example_key(mixture_id: str, task: int, description: str) -> str:
    """A cached example's key: one mixture is asked for with several instructions (task index, description)."""
    return f"{mixture_id}\t{int(task)}\t{description}"


@dataclass
class SeparatedCodecARConfig(CodecARSystemConfig):
    cache_text: int = non_negative(4096)  # distinct descriptions whose embeddings are kept in memory (0: none)


class SeparatedCodecARSystem(CodecARSystem):
    """Trains ``model.decoder`` (codec-ar) on ``model.separator``'s estimates of the batch targets (module docs)."""

    Config = SeparatedCodecARConfig

    def __init__(self, config: SeparatedCodecARConfig, recipe: Any, train: Any, registry: Any) -> None:
        super().__init__(config, recipe, train, registry)
        for module in (self.text_encoder, self.separator):
            module.requires_grad_(False).eval()
        encode = self.text_encoder.encode_text
        self.text_memo = CachedTextEncoder(encode, config.cache_text) if config.cache_text > 0 else None
        self._names |= {kind: recipe.section(kind).get("name") for kind in ("text_encoder", "separator")}

    def build_models(self, audio_section: Any, decoder_section: Any) -> tuple[nn.Module, nn.Module]:
        """Every component of the recipe, as a separation pipeline builds them (upstream sizes handed down)."""
        for kind in FROZEN_KINDS:
            if self.recipe.section(kind) is None:
                raise SepkitError(
                    f"{self.recipe.source}: train.system codec-ar-separated needs model.{kind}: the separation "
                    "stages whose estimates the decoder learns from (a whole HSM-TSS recipe, e.g. mini/hsm_tss)"
                )
        built = build_components(self.recipe, self.registry, (*FROZEN_KINDS, "decoder"))
        try:
            check_compatible(built)
        except SepkitError as exc:
            raise SepkitError(f"{self.recipe.source}: {exc}") from None
        self.text_encoder, self.separator = built["text_encoder"], built["separator"]
        return built["audio_encoder"], built["decoder"]

    def train(self, mode: bool = True) -> SeparatedCodecARSystem:
        """Only the decoder trains: the encoders and the separator stay in eval mode (no dropout)."""
        super().train(mode)
        self.text_encoder.eval()
        self.separator.eval()
        return self

    # --- the frozen part: S_hat of the mixture and the target's codes ------------------------------
    def frozen_outputs(self, batch: dict) -> tuple[AudioFeatures, Tensor, Tensor]:
        """(the separator's estimate S_hat, the target's codec codes long [B, G, T], code lengths long [B]).

        Read from the feature cache when every row of the batch is a cached example (same mixture id, task and
        description, same number of samples), else computed by the frozen chain and codec."""
        rows = self._cached_rows(batch)
        if rows is not None:
            return self._stack_cached(rows, batch["mixture"].device)
        return self.compute_separated(
            batch["mixture"].float(),
            batch["target"].float(),
            batch["lengths"].long(),
            list(batch["description"]),
            batch["task"].long(),
        )

    @torch.no_grad()
    def compute_separated(
        self, mixture: Tensor, target: Tensor, lengths: Tensor, descriptions: list[str], tasks: Tensor
    ) -> tuple[AudioFeatures, Tensor, Tensor]:
        """mixture, target float [B, T] at the audio encoder's rate; tasks long [B] (0 extract, 1 remove).

        Always float32 with the separator in eval mode, as ``sepkit separate`` runs the chain by default.
        """
        remove = TASKS.index("remove")
        if bool((tasks == remove).any()) and "remove" not in self.separator.tasks:
            raise SepkitError(
                f"{self.recipe.source}: the batch has removal examples but model.separator only extracts; the "
                "decoder of such a chain never sees a removal estimate: draw extraction mixtures only"
            )
        with torch.autocast(device_type=mixture.device.type, enabled=False):
            encode = self.text_memo if self.text_memo is not None else self.text_encoder.encode_text
            query = encode_descriptions(encode, descriptions)
            if self.separator.task_tokens:
                query = append_task_tokens(query, tasks, self.text_encoder.task_token_embeddings())
            features = self.audio_encoder.encode_audio(mixture, lengths)
            estimate = self.separator.separate(features, query, tasks)
            return (estimate, *self.target_codes(target, lengths))

    # --- cached estimates: frozen mixtures (a mixture manifest) give the same S_hat every epoch -------------
    def cache_keys(self, batch: dict) -> list[str]:
        """Each row's ``example_key``."""
        return [example_key(i, t, d) for i, t, d in zip(batch["id"], batch["task"].tolist(), batch["description"])]

    def _store_meta(self, manifest: Path) -> dict:
        from sepkit.data.manifest import read_mixtures, resolve_path
        from sepkit.train.feature_cache import component_fingerprint, source_stamp

        mixtures = read_mixtures(manifest)
        files = sorted({resolve_path(s.path, manifest.parent) for m in mixtures for s in m.sources})
        kinds = {kind: (getattr(self, kind), self.recipe.section(kind)) for kind in FROZEN_KINDS}
        kinds["codec"] = (self.decoder.codec, self.decoder.config.codec)
        extra = {
            "what": "codec-ar-separated: the separator's estimate S_hat of every instruction of every mixture "
            "(whole mixtures) and the target's codec codes",
            **{kind: component_fingerprint(m, section, "-")["fingerprint"] for kind, (m, section) in kinds.items()},
            "source": source_stamp(manifest, files),
        }
        return component_fingerprint(nn.Identity(), {}, "fp32", extra)  # compute_separated runs in float32

    def cache_features(self, manifest: Path, data: Any, device: torch.device, progress: bool = True) -> dict:
        """S_hat and the target's codes for every (mixture, instruction) of a frozen mixture manifest
        (``sepkit data mix``), whole mixtures; a clip manifest draws new mixtures every epoch: nothing to cache."""
        from tqdm import tqdm

        from sepkit.data.dataset import MixtureDataset, collate_mixtures
        from sepkit.data.manifest import ClipCache, read_mixtures
        from sepkit.train.feature_cache import FeatureStore, is_mixture_manifest

        manifest = Path(manifest).resolve()
        if not is_mixture_manifest(manifest):
            return {
                "not cached": f"{manifest.name} is a clip manifest: its mixtures are drawn anew every epoch; write "
                "frozen training mixtures with 'sepkit data mix' and train on those to cache their estimates"
            }
        cache = ClipCache(self.sample_rate, base_dir=manifest.parent, capacity=0)
        dataset = MixtureDataset(read_mixtures(manifest), cache, instruction="all")
        store = FeatureStore.at(manifest, "codec-ar-separated", self._store_meta(manifest))
        entries = store.load()
        self.eval()
        size, todo = max(1, int(self.train_cfg.batch_size)), []
        for index in range(len(dataset)):
            record, k = dataset.mixtures[dataset.items[index][0]], dataset.items[index][1]
            instruction = record.instructions[k]
            if example_key(record.id, TASKS.index(instruction.task), instruction.description) not in entries:
                todo.append(index)
        for start in tqdm(range(0, len(todo), size), desc="cache estimates", unit="batch", disable=not progress):
            batch = collate_mixtures([dataset[i] for i in todo[start : start + size]])
            batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            estimate, codes, code_lengths = self.frozen_outputs(batch)
            for row, key in enumerate(self.cache_keys(batch)):
                entries[key] = cache_entry(row, batch["lengths"], estimate, codes, code_lengths)
        store.save(entries)
        return {"codec-ar-separated": {"store": str(store.folder), "examples": len(entries), "computed": len(todo)}}

    def use_feature_cache(self, manifests: list[Path]) -> list[str]:
        from sepkit.train.feature_cache import FeatureStore, is_mixture_manifest

        train = (self.recipe.to_container().get("data") or {}).get("train") or {}
        if train.get("augment"):
            self._cached = {}
            return ["feature cache: not used by codec-ar-separated (data.train.augment changes a cached key's audio)"]
        found, lines = {}, []
        for manifest in manifests:
            if not is_mixture_manifest(manifest):
                continue
            entries = FeatureStore.at(manifest, "codec-ar-separated", self._store_meta(manifest)).load()
            if entries:
                found.update(entries)
                lines.append(f"feature cache: codec-ar-separated estimates of {len(entries)} examples, {manifest.name}")
        self._cached = found
        return lines or ["feature cache: none for codec-ar-separated (frozen mixtures + sepkit data cache write one)"]
