"""Finding the sources of a mixture in text: the ``captioner`` and ``source_parser`` kinds.

OpenSep (Mahmud et al. 2024, arXiv 2409.19270) finds the sources of a mixture in text:
an audio captioner turns the mixture into a caption ("textual inversion"), and an LLM
parses the caption into one detailed description per source, each then a separation query::

    Captioner.caption(wave [B, T] at sample_rate, lengths [B])  -> B captions
    SourceParser.parse(caption)                                 -> list[ParsedSource]

Both are ``sepkit.interfaces.Component`` modules (a nested ``Config`` dataclass, built from a
recipe section by the registry; both are core kinds, any plugin may register one).

A recipe that can enumerate names the two components in its ``eval:`` section::

    eval:
      captioner: {name: tagger-captioner, checkpoint: opensep_tagger.ckpt}
      source_parser: {name: table-parser, table: opensep_properties.yml}

Relative ``checkpoint`` / ``table`` / ``model_dir`` paths that exist beside the recipe are read
from there. ``build_source_finder(recipe, registry).find(wave, sr)`` returns the caption and the
sources found (name and query description); ``sepkit separate --all`` separates each of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError
from sepkit.interfaces import Component

KINDS = ("captioner", "source_parser")
PATH_KEYS = ("checkpoint", "table", "model_dir")


@dataclass(frozen=True)
class ParsedSource:
    """One source found in a caption: ``name`` ("dog barking") and the ``description`` used as its query.

    ``description`` carries the detailed audio properties ("a dog barking: short, loud, sharp barks ...").
    """

    name: str
    description: str


class Captioner(Component, ABC):
    """Describes audio in one sentence.

    ``sample_rate``: Hz the input wave must have (the caller resamples).
    """

    sample_rate: int

    @abstractmethod
    def caption(self, wave: Tensor, lengths: Tensor) -> list[str]:
        """wave: float [B, T] at ``sample_rate``; lengths: long [B] -> B captions."""


class SourceParser(Component, ABC):
    """Splits a caption into its sound sources, each with a detailed description of its audio properties."""

    @abstractmethod
    def parse(self, caption: str) -> list[ParsedSource]:
        """'a man talks while a dog barks' -> [ParsedSource('man speaking', ...), ParsedSource('dog barking', ...)]."""


@dataclass
class SourceReport:
    """What was found in one input: the ``caption`` and its ``sources`` (name and query description)."""

    caption: str
    sources: list[ParsedSource] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "caption": self.caption,
            "sources": [{"name": s.name, "description": s.description} for s in self.sources],
        }


def source_sections(recipe: Any) -> Optional[dict[str, dict]]:
    """{"captioner": section, "source_parser": section} as plain dicts, or None if the recipe names neither."""
    from omegaconf import OmegaConf

    config = recipe.config
    found: dict[str, Any] = {}
    for top in ("model", "eval"):
        part = config.get(top)
        if part is None or not OmegaConf.is_dict(part):
            continue
        for kind in KINDS:
            if kind not in found and part.get(kind) is not None:
                found[kind] = OmegaConf.to_container(part[kind], resolve=True)
    if not found:
        return None
    missing = [k for k in KINDS if k not in found]
    if missing:
        raise SepkitError(
            f"{recipe.source}: enumerating sources needs both eval.captioner and eval.source_parser; "
            f"'eval.{missing[0]}' is missing"
        )
    return {kind: _resolve_paths(found[kind], recipe.base_dir) for kind in KINDS}


def can_enumerate(recipe: Any) -> bool:
    """True if the recipe names a captioner and a source parser."""
    return source_sections(recipe) is not None


def _resolve_paths(section: Any, base_dir: Optional[Path]) -> Any:
    if not isinstance(section, dict):
        return section
    out = dict(section)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and base_dir is not None and not Path(value).is_absolute():
            candidate = Path(base_dir) / value
            if candidate.exists():
                out[key] = str(candidate.resolve())
    return out


class SourceFinder:
    """captioner + source parser: ``find(wave [channels, T] or [T], sample_rate)`` -> SourceReport."""

    def __init__(self, captioner: Captioner, parser: SourceParser) -> None:
        self.captioner = captioner
        self.parser = parser

    def find(self, wave: Tensor, sample_rate: int) -> SourceReport:
        import torchaudio.functional as AF

        mono = torch.as_tensor(wave, dtype=torch.float32)
        mono = mono.mean(0) if mono.dim() == 2 else mono
        if mono.dim() != 1 or mono.numel() == 0:
            raise SepkitError(f"expected audio [channels, samples] or [samples], got shape {tuple(wave.shape)}")
        rate = self.captioner.sample_rate
        if int(sample_rate) != rate:
            mono = AF.resample(mono, int(sample_rate), rate)
        device = next(self.captioner.parameters(), torch.empty(0)).device
        lengths = torch.tensor([mono.numel()], dtype=torch.long, device=device)
        caption = self.captioner.caption(mono[None].to(device), lengths)[0]
        return SourceReport(caption, self.parser.parse(caption))


def build_source_finder(recipe: Any, registry: Any) -> SourceFinder:
    """Build the recipe's captioner and source parser from ``registry``; SepkitError if it names none."""
    sections = source_sections(recipe)
    if sections is None:
        raise SepkitError(
            f"{recipe.source} cannot enumerate sources: it names no captioner and source parser; add "
            "eval.captioner and eval.source_parser (e.g. recipes/mini/opensep.yaml) or give queries with -q"
        )
    built = {}
    for kind in KINDS:
        try:
            built[kind] = registry.build(kind, sections[kind], where=f"eval.{kind}")
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
    built["captioner"].eval()
    return SourceFinder(built["captioner"], built["source_parser"])


__all__ = [
    "Captioner",
    "ParsedSource",
    "SourceFinder",
    "SourceParser",
    "SourceReport",
    "build_source_finder",
    "can_enumerate",
    "source_sections",
]
