"""CLAP scores: text-audio (``clap_score``) and audio-audio (``clap_score_a``) cosine similarity.

``clap_score`` (CLAPScore as in the HSM-TSS paper, eq. in sec. IV-B, after Huang et al.'s
audio-text relevance score): cos(E_text(query), E_audio(estimate)) per example, from a CLAP-style
model's joint embeddings; ``clap_score_a``: cos(E_audio(reference), E_audio(estimate)). Higher is
better; both lie in [-1, 1].

The encoder is any registered component with ``embed_text(texts) -> [B, D]`` and
``embed_audio(wave, lengths) -> [B, D]`` (``clap-laion``, ``clap-hf``, ``qaudio``), named by the
metric's ``encoder`` section and built as an audio encoder. The HSM-TSS paper measures with
MSCLAP (Microsoft CLAP), which has no plugin here; LAION-CLAP is the default, so scores are
comparable between systems scored here, not with the paper's absolute values. An encoder without
trained weights is refused unless ``allow_random_weights`` (tests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import Metric
from sepkit.registry import Registry

from .kl import to_rate


def _default_encoder() -> dict[str, Any]:
    return {"name": "clap-laion"}


@dataclass
class ClapScoreConfig:
    encoder: dict = field(default_factory=_default_encoder)  # a CLAP-style audio+text encoder section
    checkpoint: Optional[str] = None  # put into the encoder section (e.g. a LAION-CLAP .pt)
    allow_random_weights: bool = False  # tests only: score with an untrained encoder


class _ClapMetric(Metric):
    Config = ClapScoreConfig
    higher_is_better = True
    metric_name = ""

    def __init__(self, config: ClapScoreConfig, registry: Registry) -> None:
        """``registry`` builds the CLAP-style ``encoder`` sub-section."""
        super().__init__(config)

        section = dict(config.encoder or {})
        if not isinstance(section.get("name"), str):
            raise SepkitError(
                f"metric {self.metric_name}: 'encoder' must be a section naming a CLAP-style encoder, got {section!r}"
            )
        if config.checkpoint:
            section["checkpoint"] = config.checkpoint
        if not section.get("checkpoint") and not section.get("model_dir") and not config.allow_random_weights:
            raise SepkitError(
                f"metric {self.metric_name} needs trained CLAP weights; sepkit never downloads them. Set the metric's "
                f"'checkpoint' to a LAION-CLAP .pt file (e.g. 630k-audioset-best.pt) and, for clap-laion, "
                f"encoder.text_model_dir to a local roberta-base directory"
            )
        self.encoder = registry.build_frozen("audio_encoder", section, where=f"metric {self.metric_name}.encoder")
        for method in ("embed_audio",) + (("embed_text",) if self.needs_text else ()):
            if not callable(getattr(self.encoder, method, None)):
                raise SepkitError(
                    f"metric {self.metric_name}: encoder {section['name']!r} has no {method}(); "
                    "use a CLAP-style encoder (clap-laion, clap-hf, qaudio)"
                )

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()
        return self

    def audio_embeddings(self, wave: Tensor, sample_rate: int) -> Tensor:
        """[B, T] at ``sample_rate`` -> unit-norm float32 [B, D] at the encoder's rate."""
        device = next(self.encoder.parameters(), torch.empty(0)).device
        wave = to_rate(wave, sample_rate, self.encoder.sample_rate).to(device)
        lengths = torch.full((wave.shape[0],), wave.shape[-1], dtype=torch.long, device=device)
        return F.normalize(self.encoder.embed_audio(wave, lengths).float(), dim=-1)


class ClapScore(_ClapMetric):
    """cos(CLAP text embedding of the query, CLAP audio embedding of the estimate) per row."""

    needs_text = True
    metric_name = "clap_score"

    def score(self, estimate, reference, sample_rate, mixture=None, texts: Optional[list[str]] = None):
        if texts is None or len(texts) != estimate.shape[0]:
            raise SepkitError("metric clap_score needs the query text of every row (texts=[...]; CLI: --text)")
        with torch.no_grad():
            audio = self.audio_embeddings(estimate, sample_rate)
            text = F.normalize(self.encoder.embed_text(list(texts)).float(), dim=-1).to(audio.device)
            return (audio * text).sum(-1).double().cpu()


class ClapScoreA(_ClapMetric):
    """cos(CLAP audio embedding of the reference, CLAP audio embedding of the estimate) per row."""

    metric_name = "clap_score_a"

    def score(self, estimate, reference, sample_rate, mixture=None):
        with torch.no_grad():
            est = self.audio_embeddings(estimate, sample_rate)
            ref = self.audio_embeddings(reference, sample_rate)
            return (est * ref).sum(-1).double().cpu()
