"""The ``hsm`` training system: HSM-TSS's separation stages through ``sepkit train`` (sec. III-C/D, IV-C).

The recipe names the frozen encoders and the separator as for inference::

    model:
      text_encoder:  {name: flan-t5, ...}              # or qaudio (part: text), minilm
      audio_encoder: {name: qaudio, part: audio, ...}  # frames = AudioMAE tokens S, pooled = Q-Audio G
      separator:     {name: hsm-local, global_stage: {name: hsm-global}}   # no global_stage: Ours_local
    train:
      system: {name: hsm, stage: local}                # global | local | joint

One step, with the frozen encoders run once per batch on the mixture and on the target
(G = ``pooled``, S = ``frames``) and the query = caption tokens + task tokens::

    global: loss = L_global(G_hat, G_tgt)                    lambda1 (1 - cos) + lambda2 L1, the local stage frozen
    local:  loss = L1(S_hat | G_tgt, S_tgt) over valid tokens   the global stage frozen; Ours_local: no G
    joint:  loss = 0.1 L_global + 1.0 L1(S_hat | G, S_tgt)   G = G_tgt with probability p_gt = 0.1 per
                                                              example, else G_hat (gradients reach H1)

Validation (per example): ``loss`` (the stage's loss, G_hat always in joint), ``global_cosine``
(cos(G_hat, G_tgt), when there is a global stage) and ``local_l1`` (L1 of the inference path:
S_hat conditioned on G_hat, or on nothing for Ours_local; not in stage global).

Checkpoints are pipeline checkpoints: the separator's weights under ``separator.*`` (plus any
encoder the recipe stores, i.e. one without ``freeze: true``), so ``sepkit separate --recipe R
--ckpt best.ckpt`` loads them, ``hsm-local``'s ``checkpoint:`` key reads them, and
``--init-from`` chains the stages: a global run, then a local run, then a joint run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from sepkit.assembly import build_components, check_compatible, component_state, plugin_versions, stored_kinds
from sepkit.config import non_negative, probability
from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding, encode_descriptions
from sepkit.registry import Registry
from sepkit.task_tokens import append_task_tokens
from sepkit.train.feature_cache import CachedTextEncoder
from sepkit.train.system import System, cache_frozen_texts, use_text_cache

from .global_stage import GlobalSeparator
from .local_stage import LocalSeparator
from .losses import global_cosine, global_loss, local_l1, switch_global

STAGES = ("global", "local", "joint")
ENCODERS = ("text_encoder", "audio_encoder")
BUILT_KINDS = (*ENCODERS, "separator")  # a pipeline's first three components; the decoder is trained apart


@dataclass
class HSMConfig:
    stage: str = "local"  # global | local | joint
    lambda_cos: float = non_negative(1.0)  # lambda1: weight of 1 - cos(G_hat, G_tgt) in L_global
    lambda_l1: float = non_negative(1.0)  # lambda2: weight of mean |G_hat - G_tgt| in L_global
    global_weight: float = non_negative(0.1)  # joint: weight of L_global
    local_weight: float = non_negative(1.0)  # joint: weight of L_local
    p_gt: float = probability(0.1)  # joint: probability (per example) of conditioning H2 on G_tgt instead of G_hat
    cache_text: int = non_negative(4096)  # with a text cache (sepkit data cache): misses kept in memory (0: no caching)


class Encoded(NamedTuple):
    """The frozen encoders' view of one batch."""

    query: TextEmbedding  # tokens [B, M, C_t]: caption tokens + task tokens
    mixture: AudioFeatures  # frames S_mix [B, N, C_s], pooled G_mix [B, C_g]
    target: AudioFeatures  # frames S_tgt [B, N, C_s], pooled G_tgt [B, C_g]


class HSMSystem(System):
    """Trains ``hsm-local`` (and its ``global_stage``) or ``hsm-global`` over frozen encoders (module docstring)."""

    Config = HSMConfig
    find_unused_parameters = True  # joint: rows conditioned on G_tgt leave H1 to L_global alone

    def __init__(self, config: HSMConfig, recipe: Any, train: Any, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)
        where = f"{recipe.source}: train.system (hsm)"
        if config.stage not in STAGES:
            raise SepkitError(f"{where}: stage must be one of {', '.join(STAGES)}, got {config.stage!r}")
        if not 0.0 <= config.p_gt <= 1.0:
            raise SepkitError(f"{where}: p_gt is a probability in [0, 1], got {config.p_gt}")
        built = build_components(recipe, self.registry, BUILT_KINDS)  # as SeparationPipeline.from_recipe
        text, audio, separator = (built[kind] for kind in BUILT_KINDS)
        self._check_components(built, where)
        self.text_encoder, self.audio_encoder, self.separator = text, audio, separator
        for module in (text, audio):
            module.requires_grad_(False)
        # used once use_feature_cache has preloaded a store; until then texts are encoded per batch, as before
        self.text_cache = CachedTextEncoder(text.encode_text, config.cache_text) if config.cache_text > 0 else None
        self._check_stage(where)
        self._freeze_untrained_stage()
        self.stored = stored_kinds(recipe)  # the pipeline's layout: a pipeline built from this recipe loads it
        if "separator" not in self.stored:
            raise SepkitError(f"{recipe.source}: model.separator is trained by hsm; drop its freeze / in_checkpoint")
        if "decoder" in self.stored:
            raise SepkitError(
                f"{recipe.source}: model.decoder would be stored in pipeline checkpoints, but the hsm system does "
                "not build or train it; set 'freeze: true' on model.decoder (it loads its own checkpoint) or "
                "'in_checkpoint: false'"
            )
        metrics = ["loss"]
        if self.global_stage is not None:
            metrics.append("global_cosine")
        if config.stage != "global":
            metrics.append("local_l1")
        self.validation_metrics = tuple(metrics)

    # --- building ---------------------------------------------------------------------------
    @staticmethod
    def _check_components(built: dict[str, nn.Module], where: str) -> None:
        separator = built["separator"]
        if not isinstance(separator, (LocalSeparator, GlobalSeparator)):
            raise SepkitError(
                f"{where}: trains the separators hsm-local (with or without global_stage) or hsm-global; "
                f"model.separator is {type(separator).__name__}"
            )
        try:
            check_compatible(built)
        except SepkitError as exc:
            raise SepkitError(f"{where}: {exc}") from None

    @property
    def global_stage(self) -> Optional[GlobalSeparator]:
        """H1: the separator itself (hsm-global), its ``global_stage`` (hsm-local), or None (Ours_local)."""
        if isinstance(self.separator, GlobalSeparator):
            return self.separator
        return self.separator.global_stage

    @property
    def local_stage(self) -> Optional[LocalSeparator]:
        return self.separator if isinstance(self.separator, LocalSeparator) else None

    def _check_stage(self, where: str) -> None:
        stage = self.config.stage
        if stage in ("global", "joint") and self.global_stage is None:
            raise SepkitError(
                f"{where}: stage {stage} trains the global stage, but model.separator has none; "
                "add 'global_stage: {name: hsm-global}' to the hsm-local section"
            )
        if stage in ("local", "joint") and self.local_stage is None:
            raise SepkitError(f"{where}: stage {stage} trains the local stage; name hsm-local as model.separator")

    def _freeze_untrained_stage(self) -> None:
        """global: only H1 trains; local: only H2 trains; joint: both."""
        if self.config.stage == "global" and self.local_stage is not None:
            for p in self.local_stage.local_parameters():
                p.requires_grad_(False)
        if self.config.stage == "local" and self.global_stage is not None:
            self.global_stage.requires_grad_(False)

    def train(self, mode: bool = True) -> HSMSystem:
        """The frozen encoders (and a frozen global stage) stay in eval mode."""
        super().train(mode)
        self.text_encoder.eval()
        self.audio_encoder.eval()
        if self.config.stage == "local" and self.global_stage is not None:
            self.global_stage.eval()
        return self

    @property
    def sample_rate(self) -> int:
        return self.audio_encoder.sample_rate

    # --- the frozen encoders ------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, batch: dict) -> Encoded:
        """Query (caption + task tokens), mixture and target features of a batch, without gradients."""
        descriptions = list(batch["description"])
        cached = self.text_cache is not None and bool(self.text_cache.preloaded)  # a store from sepkit data cache
        query = encode_descriptions(self.text_cache if cached else self.text_encoder.encode_text, descriptions)
        if self.separator.task_tokens:
            query = append_task_tokens(query, batch["task"], self.text_encoder.task_token_embeddings())
        lengths = batch["lengths"]
        mixture, target = self._encode_pair(batch["mixture"], batch["target"], lengths)
        for name, features in (("mixture", mixture), ("target", target)):
            if self.global_stage is not None and features.pooled is None:
                raise SepkitError(
                    f"{self.recipe.source}: model.audio_encoder gives no pooled global feature for the {name}; "
                    "the global stage needs one (use qaudio, part: audio)"
                )
        return Encoded(query, mixture, target)

    def _encode_pair(self, mixture: Tensor, target: Tensor, lengths: Tensor) -> tuple[AudioFeatures, AudioFeatures]:
        """The frozen audio encoder over mixtures and targets [B, T] in one batch of 2B rows.

        Every row is encoded on its own (the encoder's output for a row does not depend on the
        batch), so this is two ``encode_audio`` calls in one: about 1.05x faster per local-stage step
        on the 2-core CPU (0.29 -> 0.28 s).
        """
        both = self.audio_encoder.encode_audio(torch.cat((mixture, target)), torch.cat((lengths, lengths)))
        b = mixture.shape[0]

        def half(rows: slice) -> AudioFeatures:
            pooled = None if both.pooled is None else both.pooled[rows]
            return AudioFeatures(both.frames[rows], both.lengths[rows], both.frame_rate, pooled)

        return half(slice(0, b)), half(slice(b, 2 * b))

    # --- cached frozen features: the text side (mixtures are drawn anew every epoch) ----------------
    def cache_features(self, manifest, data, device, progress: bool = True) -> dict:
        return cache_frozen_texts(self, self.text_encoder, self.text_cache, manifest, device, progress)

    def use_feature_cache(self, manifests) -> list[str]:
        return use_text_cache(self, self.text_encoder, self.text_cache, manifests)

    # --- losses -------------------------------------------------------------------------------
    def _global(self, enc: Encoded) -> tuple[Tensor, Tensor]:
        """(G_hat [B, C_g], L_global float [B])."""
        stage = self.global_stage
        g_hat = stage.predict(stage.mixture_global(enc.mixture), enc.query)
        g_tgt = enc.target.pooled
        return g_hat, global_loss(g_hat, g_tgt, self.config.lambda_cos, self.config.lambda_l1)

    def _local(self, enc: Encoded, g: Optional[Tensor]) -> Tensor:
        """L_local float [B]: L1 between H2's output given ``g`` and S_tgt over the valid tokens."""
        s_hat = self.local_stage.separate_with_global(enc.mixture, enc.query, g).frames
        return local_l1(s_hat, enc.target.frames, enc.mixture.lengths)

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        enc = self.encode(batch)
        stage = self.config.stage
        if stage == "global":
            _, l_global = self._global(enc)
            return {"loss": l_global.mean()}
        if stage == "local":
            g = enc.target.pooled if self.global_stage is not None else None
            return {"loss": self._local(enc, g).mean()}
        g_hat, l_global = self._global(enc)
        g, use_gt = switch_global(enc.target.pooled, g_hat, self.config.p_gt)
        l_local = self._local(enc, g)
        loss = self.config.global_weight * l_global.mean() + self.config.local_weight * l_local.mean()
        return {
            "loss": loss,
            "global": l_global.mean().detach(),
            "local": l_local.mean().detach(),
            "gt_fraction": use_gt.float().mean(),
        }

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        enc = self.encode(batch)
        stage, out = self.config.stage, {}
        g_hat = l_global = None
        if self.global_stage is not None:
            g_hat, l_global = self._global(enc)
            out["global_cosine"] = global_cosine(g_hat, enc.target.pooled)
        if stage != "global":
            out["local_l1"] = self._local(enc, g_hat)  # the inference path: G_hat, or nothing (Ours_local)
        if stage == "global":
            out["loss"] = l_global
        elif stage == "local":
            teacher = enc.target.pooled if g_hat is not None else None
            out["loss"] = self._local(enc, teacher) if teacher is not None else out["local_l1"]
        else:
            out["loss"] = self.config.global_weight * l_global + self.config.local_weight * out["local_l1"]
        return out

    # --- checkpoints: the pipeline's layout ------------------------------------------------------
    def _stored_modules(self) -> nn.ModuleDict:
        return nn.ModuleDict({kind: getattr(self, kind) for kind in self.stored})

    def checkpoint_state(self) -> dict[str, Tensor]:
        """``separator.*`` (and ``text_encoder.*`` / ``audio_encoder.*`` if the recipe stores them)."""
        return component_state({kind: getattr(self, kind) for kind in self.stored}, self.stored)

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        load_state_dict_checked(self._stored_modules(), state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        return plugin_versions(self.recipe, self.registry)

    def init_from(self, path: str) -> None:
        """Start from a sepkit checkpoint (an earlier stage's run): its ``separator.*`` keys, strictly.

        Encoder weights in the file are loaded too when this recipe stores that encoder; the rest
        (frozen encoders) come from their own sources.
        """
        from sepkit.checkpoint import load_checkpoint, load_state_dict_checked

        state = load_checkpoint(path)["state_dict"]
        kinds = [k for k in self.stored if k == "separator" or any(key.startswith(f"{k}.") for key in state)]
        chosen = {key: value for key, value in state.items() if key.split(".", 1)[0] in kinds}
        modules = nn.ModuleDict({kind: getattr(self, kind) for kind in kinds})
        load_state_dict_checked(modules, chosen, f"checkpoint {path}")
