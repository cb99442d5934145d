"""AFSim: similarity of estimate and reference in an audio foundation model's embedding space.

The metric is named so that recipes and result tables can refer to it, but it cannot run
here: it needs the embeddings of a large pretrained audio foundation model, and no sepkit
plugin provides that encoder with its weights offline (sepkit never downloads weights at run
time). Building ``afsim`` therefore raises a ``SepkitError`` that says what is missing; it
never falls back to another encoder, which would report numbers under a wrong name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sepkit.errors import SepkitError
from sepkit.interfaces import Metric

MESSAGE = (
    "AFSim needs an audio-foundation-model embedding plugin that is not available offline here "
    "(no installed sepkit plugin registers that foundation model's audio encoder with its pretrained weights, "
    "and sepkit never downloads weights at run time). To compute it, install a plugin that registers the "
    "foundation-model audio encoder together with a local copy of its weights; until then, report the other "
    "metrics (e.g. fad or kl with the PANNs checkpoint) and leave AFSim out"
)


@dataclass
class AFSimConfig:
    pass


class AFSim(Metric):
    """Audio-foundation-model embedding similarity; unavailable offline (building it raises)."""

    Config = AFSimConfig

    def __init__(self, config: AFSimConfig) -> None:
        super().__init__(config)
        raise SepkitError(MESSAGE)

    def score(self, estimate, reference, sample_rate, mixture=None):  # pragma: no cover - never built
        raise SepkitError(MESSAGE)
