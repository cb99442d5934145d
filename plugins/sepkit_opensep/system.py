"""The ``tagger`` training system: multi-label tagging of mixtures for the offline ``tagger-captioner``.

Recipe (``recipes/mini/opensep_tagger.yaml``)::

    model: {}                                   # the tagger is all in train.system
    train:
      system: {name: tagger, tags: [violin, rain, ...], channels: [32, 64, 128], max_sources: 4}
    data:
      train: {clips: ../../data/mini/train.jsonl, length: 4000, seconds: 2.0}
      val:   {clips: ../../data/mini/val.jsonl, length: 300, seconds: 2.0}

Each example mixes 1..``max_sources`` clips of different tags (``tagger_data.TagMixtureDataset``);
the loss is binary cross-entropy of ``SourceTagger`` logits against the multi-hot tags. Validation
metrics per example: ``loss``, ``f1`` (tags with probability >= ``threshold`` against the true
tags) and ``exact`` (1 if that set is exactly right). Checkpoints hold the ``SourceTagger`` state
(no prefix); the recipe stored with them carries the architecture and the tag list, which is
how ``tagger-captioner`` rebuilds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.config import positive, probability
from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.system import System

from .tagger import SourceTagger, TaggerConfig


@dataclass
class TaggerSystemConfig(TaggerConfig):
    max_sources: int = positive(4)  # sources per training mixture: uniform in 1..max_sources
    level_db: list[float] = field(default_factory=lambda: [-10.0, 10.0])  # level of each other source vs. the first
    threshold: float = probability(0.5)  # validation: a tag is predicted when its probability reaches this


def tagger_config(config: Any) -> TaggerConfig:
    """The ``TaggerConfig`` part of a system config (or of a plain dict such as a stored recipe's)."""
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    defaults = TaggerConfig()
    return TaggerConfig(
        tags=list(get("tags", defaults.tags) or []),
        sample_rate=int(get("sample_rate", defaults.sample_rate)),
        n_fft=int(get("n_fft", defaults.n_fft)),
        hop_length=int(get("hop_length", defaults.hop_length)),
        n_mels=int(get("n_mels", defaults.n_mels)),
        channels=list(get("channels", defaults.channels)),
    )


class TaggerSystem(System):
    """Trains a ``SourceTagger`` on tagged mixtures; see the module docstring."""

    Config = TaggerSystemConfig
    validation_metrics = ("loss", "f1", "exact")

    def __init__(self, config: TaggerSystemConfig, recipe: Any, train: Any, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)
        if not config.tags:
            raise SepkitError(
                f"{recipe.source}: train.system.tags is empty; list the tag vocabulary (e.g. sepkit-mini's 37 class "
                "names) so that checkpoints carry it"
            )
        if len(config.level_db) != 2 or config.max_sources < 1:
            raise SepkitError(f"{recipe.source}: train.system needs level_db: [low, high] and max_sources >= 1")
        self.tagger = SourceTagger(tagger_config(config))

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def build_dataset(self, split: str, data: Any, base_dir: Optional[Path], seed: int):
        from .tagger_data import TagMixtureDataset, read_clip_manifest

        section = getattr(data, split)
        if section is None:
            return None
        if section.clips is None or section.length is None:
            raise SepkitError(f"{self.recipe.source}: data.{split} of the tagger needs 'clips' and 'length'")
        path = Path(section.clips)
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        clips = read_clip_manifest(path)
        splits = {c.get("split") for c in clips}
        mine = [c for c in clips if c.get("split") == split] if len(splits) > 1 else clips
        seconds = section.seconds if section.seconds is not None else 2.0
        return TagMixtureDataset(
            mine, path.parent, list(self.config.tags), self.sample_rate, section.length, seconds,
            seed if split == "train" else seed + 1, self.config.max_sources, tuple(self.config.level_db),
            data.cache_clips,
        )  # fmt: skip

    @staticmethod
    def collate(items: list) -> dict:
        from .tagger_data import collate_tagged

        return collate_tagged(items)

    def _loss(self, batch: dict) -> tuple[Tensor, Tensor]:
        logits = self.tagger(batch["mixture"], batch["lengths"])
        loss = F.binary_cross_entropy_with_logits(logits, batch["labels"], reduction="none").mean(-1)
        return logits, loss

    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        return {"loss": self._loss(batch)[1].mean()}

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        logits, loss = self._loss(batch)
        predicted = torch.sigmoid(logits) >= self.config.threshold
        truth = batch["labels"] > 0.5
        hits = (predicted & truth).sum(-1).float()
        f1 = 2 * hits / (predicted.sum(-1) + truth.sum(-1)).float().clamp_min(1)
        return {"loss": loss, "f1": f1, "exact": (predicted == truth).all(-1).float()}

    def checkpoint_state(self) -> dict[str, Tensor]:
        return self.tagger.state_dict()

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        load_state_dict_checked(self.tagger, state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        entry = self.registry.get("system", "tagger")
        return {entry.provider: entry.version}
