"""``TaggerCaptioner`` (``tagger-captioner``): an OFFLINE STAND-IN for OpenSep's audio captioner.

OpenSep captions the mixture with a pretrained audio-captioning model (ms-CLAP). Offline, with
no such model, this captioner runs a ``SourceTagger`` trained on sepkit-mini by the ``tagger``
system (``recipes/mini/opensep_tagger.yaml``) and writes the tags whose probability reaches
``threshold`` (at most ``max_sources``, most probable first; the top ``min_sources`` always)
into a template: "a mixture of violin and rain". It only knows the training corpus's tags.

    wave float [B, T] at the tagger's sample_rate (16 kHz for sepkit-mini), lengths long [B] -> B captions
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import non_negative, positive, probability
from sepkit.errors import SepkitError
from sepkit.hub import local_file
from sepkit.source_finding import Captioner

from .tagger import SourceTagger


def join_names(names: list[str]) -> str:
    """["a"] -> "a"; ["a", "b"] -> "a and b"; ["a", "b", "c"] -> "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def pick_tags(
    probabilities: Tensor, tags: list[str], threshold: float, max_sources: int, min_sources: int
) -> list[str]:
    """Tags of one row (probabilities float [K]) at or over ``threshold``, most probable first, clipped to
    ``max_sources`` and padded with the next most probable up to ``min_sources``."""
    order = torch.argsort(probabilities, descending=True, stable=True).tolist()
    chosen = [i for i in order if float(probabilities[i]) >= threshold][:max_sources]
    for i in order:
        if len(chosen) >= min_sources:
            break
        if i not in chosen:
            chosen.append(i)
    return [tags[i] for i in chosen]


class TaggerCaptioner(Captioner):
    """Captions from a trained sepkit-mini tagger; see the module docstring."""

    @dataclass
    class Config:
        checkpoint: Optional[str] = None  # a `tagger` run's checkpoint (its stored recipe gives tags and sizes)
        threshold: float = probability(0.5)
        max_sources: int = positive(4)
        # tags always named, even under the threshold (0: "" when nothing reaches it)
        min_sources: int = non_negative(1)
        template: str = "a mixture of {sources}"
        # Without a checkpoint (tests, untrained use) the tagger is built from these:
        tags: list[str] = field(default_factory=list)
        sample_rate: int = positive(16000)
        n_fft: int = positive(512)
        hop_length: int = positive(160)
        n_mels: int = positive(64)
        channels: list[int] = positive(default_factory=lambda: [32, 64, 128])

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from .system import tagger_config

        if "{sources}" not in config.template:
            raise SepkitError(f"tagger-captioner: template {config.template!r} needs a '{{sources}}' placeholder")
        if config.checkpoint is None:
            if not config.tags:
                raise SepkitError(
                    "tagger-captioner needs 'checkpoint' (train one: sepkit train mini/opensep_tagger) "
                    "or, for an untrained tagger, 'tags'"
                )
            self.tagger = SourceTagger(tagger_config(config))
        else:
            self.tagger = self._load(config.checkpoint)
        self.tagger.eval()
        self.tags = self.tagger.tags
        self.sample_rate = self.tagger.config.sample_rate

    @staticmethod
    def _load(path: str) -> SourceTagger:
        """The tagger of a `tagger` run's checkpoint (a path or an ``hf://OWNER/REPO/FILE`` reference)."""
        from pathlib import Path

        from sepkit.checkpoint import load_checkpoint, load_state_dict_checked

        from .system import tagger_config

        path = local_file(path, "tagger-captioner checkpoint")
        if not Path(path).is_file():
            raise SepkitError(
                f"tagger-captioner: checkpoint {path} not found; train the tagger first "
                "(sepkit train mini/opensep_tagger --out runs/mini-opensep-tagger) or fix 'checkpoint'"
            )
        payload = load_checkpoint(path)
        system = ((payload.get("recipe") or {}).get("train") or {}).get("system")
        if not isinstance(system, dict) or system.get("name") != "tagger":
            raise SepkitError(f"tagger-captioner: {path} is not a checkpoint of a 'tagger' training run")
        tagger = SourceTagger(tagger_config(system))
        load_state_dict_checked(tagger, payload["state_dict"], f"checkpoint {path}")
        return tagger

    def probabilities(self, wave: Tensor, lengths: Tensor) -> Tensor:
        """wave [B, T] at ``sample_rate`` -> per-tag probabilities float [B, K]."""
        with torch.no_grad():
            return torch.sigmoid(self.tagger(wave, lengths))

    def caption(self, wave: Tensor, lengths: Tensor) -> list[str]:
        c = self.config
        out = []
        for row in self.probabilities(wave, lengths):
            names = pick_tags(row, self.tags, c.threshold, c.max_sources, c.min_sources)
            out.append(c.template.format(sources=join_names(names)) if names else "")
        return out
