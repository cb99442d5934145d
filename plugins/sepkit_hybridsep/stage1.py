"""The ``hybrid-sep-stage1`` training system: Hybrid-Sep's first stage (sec. 2.1), FE + AET regress the target's
audio embedding.

"The target audio embedding is constrained to the corresponding audio embedding extracted from the target audio
using a T-CLAP audio encoder and L1 loss. [...] only parameters in the FE and audio embedding transformer require
training." The recipe's pipeline is the stage-2 one (``waveform`` -> ``hybrid-sep`` -> ``waveform``, frozen text
encoder); each step runs its stage 1 only::

    e_hat = separator.predict_embedding(audio_encoder(mixture), text_encoder(description))   [B, embed_dim]
            (FE(mixture) + AET(text): the embedding ``separate`` conditions the ASM on; the ASM does not run)
    e_tgt = normalise(target_encoder(target wave))            frozen, no gradients             [B, width]
    loss  = mean over the batch of L1(e_hat, e_tgt) (mean |.| over the width), or 1 - cosine (``loss: cosine``)

``target_encoder`` is a registry ``audio_encoder`` section (T-CLAP's audio encoder in the paper; the mini recipe
uses the mini Q-Audio), built frozen from its own ``checkpoint`` key. ``embedding`` picks its output:
``contrastive`` (default) is ``embed_audio(wave, lengths)``, the embedding trained against text (Q-Audio: the ITC
embedding, ``audio_proj`` of the global feature G, unit norm, ``itc_dim`` wide; CLAP: the clip embedding, 512);
``pooled`` is ``encode_audio(...).pooled`` (Q-Audio: G itself, ``hidden`` wide, not normalised). The AET ends in
an L2 normalisation, so the target is L2-normalised too (a no-op for ``contrastive``). The target is read at the
pipeline's sample rate (resampled if the encoder's differs). Rows whose task is "remove" regress the embedding of
mixture - target (the described source), as ``hybrid-sep-act`` trains them.

``model.separator.embed_dim`` must equal the target embedding's width (probed once at build time on 1 s of
noise). Only FE and AET train (``parameters_for``); the rest of the separator is frozen and kept as initialised,
so the checkpoint (the pipeline's state, without the target encoder) has every key the stage-2 recipe needs:
``sepkit train mini/hybrid_sep ... train.system.stage1=frozen --init-from <stage-1 best.ckpt>``.

Validation per example: ``loss``; ``cosine`` (of e_hat and e_tgt); ``cosine_shuffled`` (of e_hat and the next
row's e_tgt, the batch rolled by one: a query-specific prediction scores well below ``cosine``); and
``cosine_targets`` (of e_tgt and the next row's e_tgt: what a prediction that ignores the query would score at
best, the reference for both). A batch of one row is compared with itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import non_negative, require
from sepkit.errors import SepkitError
from sepkit.interfaces import TASKS, TextEmbedding, encode_descriptions
from sepkit.train.config import TrainConfig
from sepkit.train.system import SeparationSystem, length_mask

EMBEDDINGS = ("contrastive", "pooled")
LOSSES = ("l1", "cosine")
PROBE_SECONDS = 1.0


@dataclass
class Stage1Config:
    # the frozen audio encoder whose embedding of the clean target is regressed: {name: ..., <its keys>}
    target_encoder: dict = field(default_factory=dict)
    embedding: str = "contrastive"  # contrastive (embed_audio) | pooled (encode_audio(...).pooled)
    loss: str = "l1"  # l1 (the paper's) | cosine (1 - cosine similarity)
    cache_text: int = non_negative(4096)  # frozen text encoder: descriptions whose embedding is kept

    def __post_init__(self) -> None:
        require(
            isinstance(self.target_encoder.get("name"), str),
            "target_encoder",
            "needs an audio_encoder section {name: <registered audio_encoder>, <its keys>} (the paper's T-CLAP)",
        )
        require(self.embedding in EMBEDDINGS, "embedding", f"must be one of {', '.join(EMBEDDINGS)}")
        require(self.loss in LOSSES, "loss", f"must be one of {', '.join(LOSSES)}")


class HybridSepStage1System(SeparationSystem):
    """Hybrid-Sep stage 1: FE + AET of a ``hybrid-sep`` pipeline regress a frozen encoder's target embedding."""

    Config = Stage1Config
    validation_metrics = ("loss", "cosine", "cosine_shuffled", "cosine_targets")
    find_unused_parameters = False  # FE and AET are the only trainable parameters and both run every step

    def __init__(self, config: Stage1Config, recipe: Any, train: TrainConfig, registry: Any = None) -> None:
        super().__init__(config, recipe, train, registry)
        from .separator import HybridSepSeparator

        sep = self.pipeline.separator
        if not isinstance(sep, HybridSepSeparator):
            raise SepkitError(
                f"{recipe.source}: train.system hybrid-sep-stage1 needs model.separator: {{name: hybrid-sep}}"
            )
        if sep.config.stages != 2:
            raise SepkitError(
                f"{recipe.source}: hybrid-sep-stage1 trains the FE and AET, which model.separator.stages: "
                f"{sep.config.stages} does not build; set model.separator.stages: 2"
            )
        if "text_encoder" not in self.frozen and any(p.requires_grad for p in self.pipeline.text_encoder.parameters()):
            raise SepkitError(
                f"{recipe.source}: hybrid-sep-stage1 trains the FE and AET only (the paper freezes the text "
                "encoder); set model.text_encoder.freeze: true"
            )
        self.target_encoder = self.registry.build_frozen(
            "audio_encoder", dict(config.target_encoder), where="train.system.target_encoder"
        )
        if config.embedding == "contrastive" and not callable(getattr(self.target_encoder, "embed_audio", None)):
            raise SepkitError(
                f"{recipe.source}: train.system.target_encoder {config.target_encoder['name']!r} has no contrastive "
                "embedding (embed_audio); set train.system.embedding: pooled or pick a CLAP-style encoder"
            )
        width = self._probe_width()
        if width != sep.embed_dim:
            raise SepkitError(
                f"{recipe.source}: model.separator.embed_dim is {sep.embed_dim} but the target embedding "
                f"(train.system.target_encoder {config.target_encoder['name']!r}, embedding: {config.embedding}) "
                f"is {width}-d; set model.separator.embed_dim={width}"
            )
        for name, module in sep.named_children():
            if name not in ("fe", "aet"):
                module.requires_grad_(False)  # ASM, CD, D, BEATs: not used in stage 1, kept as initialised

    @property
    def separator(self):
        return self.pipeline.separator

    def train(self, mode: bool = True) -> HybridSepStage1System:
        """The frozen target encoder stays in eval mode."""
        super().train(mode)
        if "target_encoder" in self._modules:
            self.target_encoder.eval()
        return self

    def parameters_for(self, optimizer: str) -> list:
        """FE and AET, nothing else."""
        sep = self.separator
        return [p for module in (sep.fe, sep.aet) for p in module.parameters() if p.requires_grad]

    # --- the two embeddings -------------------------------------------------------------------
    def _queries(self, descriptions: list[str]) -> TextEmbedding:
        """One text encoder pass per distinct description (cached when the text encoder is frozen)."""
        return encode_descriptions(self.pipeline.text_encoder.encode_text, descriptions)

    def predicted_embedding(self, batch: dict) -> Tensor:
        """e_hat float [B, embed_dim]: FE(mixture) + AET(text), as the separator computes it before its ASM."""
        p = self.pipeline
        mixture = batch["mixture"].float()
        if mixture.shape[-1] < p.min_samples:  # as the pipeline pads a short pass
            mixture = F.pad(mixture, (0, p.min_samples - mixture.shape[-1]))
        features = p.audio_encoder.encode_audio(mixture, batch["lengths"])
        query = self._queries(list(batch["description"]))
        return self.separator.predict_embedding(features, query).float()

    def target_embedding(self, batch: dict) -> Tensor:
        """e_tgt float [B, width], unit norm: the frozen encoder's embedding of what the description names."""
        remove = (batch["task"] == TASKS.index("remove"))[:, None]
        mixture, target = batch["mixture"].float(), batch["target"].float()
        wave = torch.where(remove, mixture - target, target)  # "remove" rows: the removed source
        lengths = batch["lengths"]
        return self._embed(wave * length_mask(lengths, wave.shape[-1]), lengths)

    @torch.no_grad()
    def _embed(self, wave: Tensor, lengths: Tensor) -> Tensor:
        encoder, rate = self.target_encoder, self.pipeline.sample_rate
        if encoder.sample_rate != rate:
            import torchaudio.functional as AF

            wave = AF.resample(wave, rate, encoder.sample_rate)
            lengths = torch.div(lengths * encoder.sample_rate, rate, rounding_mode="floor")
        if wave.shape[-1] < encoder.min_samples:
            wave = F.pad(wave, (0, encoder.min_samples - wave.shape[-1]))
        lengths = lengths.clamp(1, wave.shape[-1])
        if self.config.embedding == "contrastive":
            embedding = encoder.embed_audio(wave, lengths)
        else:
            embedding = encoder.encode_audio(wave, lengths).pooled
            if embedding is None:
                raise SepkitError(
                    f"{self.recipe.source}: train.system.target_encoder {self.config.target_encoder['name']!r} "
                    "gives no pooled embedding; set train.system.embedding: contrastive or pick another encoder"
                )
        return F.normalize(embedding.detach().float(), dim=-1)

    def _probe_width(self) -> int:
        """Width of the target embedding, from one pass over 1 s of quiet noise."""
        n = max(1, round(PROBE_SECONDS * self.pipeline.sample_rate))
        wave = 0.01 * torch.randn(1, n, generator=torch.Generator().manual_seed(0))
        return int(self._embed(wave, torch.tensor([n])).shape[-1])

    def _loss(self, predicted: Tensor, target: Tensor) -> Tensor:
        """float [B]: mean |e_hat - e_tgt| over the width (l1), or 1 - cosine."""
        if self.config.loss == "cosine":
            return 1 - F.cosine_similarity(predicted, target, dim=-1)
        return (predicted - target).abs().mean(-1)

    # --- steps ----------------------------------------------------------------------------------
    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        target = self.target_embedding(batch)
        predicted = self.predicted_embedding(batch)
        loss = self._loss(predicted, target).mean()
        with torch.no_grad():
            cosine = F.cosine_similarity(predicted, target, dim=-1).mean()
        return {"loss": loss, "cosine": cosine}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        target = self.target_embedding(batch)
        predicted = self.predicted_embedding(batch)
        other = target.roll(1, dims=0)  # the next row's target
        return {
            "loss": self._loss(predicted, target),
            "cosine": F.cosine_similarity(predicted, target, dim=-1),
            "cosine_shuffled": F.cosine_similarity(predicted, other, dim=-1),
            "cosine_targets": F.cosine_similarity(target, other, dim=-1),
        }
