"""KL divergence of AudioSet class distributions from the PANNs CNN14 tagger.

Reference: the PANNs CNN14 tagger (Kong et al. 2020; official ``Cnn14_16k_mAP=0.438.pth``,
16 kHz, via the ``panns-cnn14`` encoder plugin). Both clips are tagged (inputs are resampled
to the tagger's rate), a softmax over the 527 pre-sigmoid logits gives class distributions
``p_ref`` and ``p_est``, and per clip::

    KL(ref || est) = sum_c p_ref[c] * (log p_ref[c] - log p_est[c])

(log-softmax in float64). Lower is better; a test set reports the mean over clips.

KL is only meaningful with the official weights, so building it without a checkpoint is an
error; ``allow_random_weights: true`` lifts that for tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import Metric
from sepkit.registry import Registry

PANNS = "panns-cnn14"
PANNS_16K_FILE = "Cnn14_16k_mAP=0.438.pth"
PANNS_URL = "https://zenodo.org/record/3987831"


def build_metric_encoder(
    registry: Registry, metric: str, section: dict, checkpoint: Optional[str], allow_random_weights: bool, purpose: str
):
    """Build the audio encoder section of a metric from ``registry`` (eval mode, frozen).

    ``checkpoint`` (the metric's own key) is put into the section. A ``panns-cnn14`` encoder
    without a checkpoint is refused unless ``allow_random_weights``.
    """
    section = dict(section or {})
    if not isinstance(section.get("name"), str):
        raise SepkitError(f"metric {metric}: 'encoder' must be an audio encoder section with a 'name', got {section!r}")
    if checkpoint:
        section["checkpoint"] = checkpoint
    if section["name"] == PANNS and not section.get("checkpoint") and not allow_random_weights:
        raise SepkitError(
            f"metric {metric} needs the official PANNs CNN14 weights ({PANNS_16K_FILE}, from {PANNS_URL}) for "
            f"{purpose}; sepkit never downloads weights. Download the file and set the metric's config key "
            f"'checkpoint' to its path (in a recipe: {{name: {metric}, checkpoint: /path/to/{PANNS_16K_FILE}}})"
        )
    return registry.build_frozen("audio_encoder", section, where=f"metric {metric}.encoder")


def to_rate(wave: Tensor, sample_rate: int, target_rate: int) -> Tensor:
    """[B, T] float at ``sample_rate`` -> float32 at ``target_rate`` (torchaudio's sinc resampling)."""
    wave = wave.float()
    if sample_rate == target_rate:
        return wave
    import torchaudio.functional as AF

    return AF.resample(wave, sample_rate, target_rate)


def _default_encoder() -> dict[str, Any]:
    return {"name": PANNS}


@dataclass
class KLConfig:
    encoder: dict[str, Any] = field(default_factory=_default_encoder)  # the tagger (needs a logits() method)
    checkpoint: Optional[str] = None  # path to Cnn14_16k_mAP=0.438.pth (put into the encoder section)
    allow_random_weights: bool = False  # tests only: accept an untrained tagger


class KL(Metric):
    """KL(reference || estimate) of softmax(PANNs CNN14 logits) per clip; lower is better."""

    Config = KLConfig
    higher_is_better = False

    def __init__(self, config: KLConfig, registry: Registry) -> None:
        """``registry`` builds the ``encoder`` sub-section."""
        super().__init__(config)
        self.encoder = build_metric_encoder(
            registry,
            "kl", config.encoder, config.checkpoint, config.allow_random_weights, "its AudioSet class distributions"
        )
        if not callable(getattr(self.encoder, "logits", None)):
            raise SepkitError(
                f"metric kl: audio encoder {config.encoder.get('name')!r} has no logits(wave) method; "
                f"KL needs a tagger such as {PANNS}"
            )

    def train(self, mode: bool = True):
        super().train(mode)
        self.encoder.eval()  # the tagger is always evaluated in eval mode
        return self

    def log_probabilities(self, wave: Tensor, sample_rate: int) -> Tensor:
        """[B, T] -> float64 [B, classes]: log-softmax of the tagger's logits."""
        device = next(self.encoder.buffers(), torch.empty(0)).device
        wave = to_rate(wave, sample_rate, self.encoder.sample_rate).to(device)
        return torch.log_softmax(self.encoder.logits(wave).double(), dim=-1)

    def score(self, estimate, reference, sample_rate, mixture=None):
        with torch.no_grad():
            log_ref = self.log_probabilities(reference, sample_rate)
            log_est = self.log_probabilities(estimate, sample_rate)
        return (log_ref.exp() * (log_ref - log_est)).sum(-1).cpu()
