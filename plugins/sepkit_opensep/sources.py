"""Enumerate a mixture's sources the OpenSep way: caption it, then parse the caption into sources.

A recipe that can enumerate names the two components in its ``eval:`` section (the core recipe
validation allows only the separation kinds under ``model:``; sections under ``model.captioner``
/ ``model.source_parser`` are read too, should the core ever allow them)::

    eval:
      captioner: {name: tagger-captioner, checkpoint: opensep_tagger.ckpt}
      source_parser: {name: table-parser, table: opensep_properties.yml}

Relative ``checkpoint`` / ``table`` / ``model_dir`` paths that exist beside the recipe are read
from there. ``enumerate_sources(recipe, wave, sr)`` returns the query of each source found;
``SourceFinder.find`` also returns the caption and the source names (for ``sepkit separate --all``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError

from .interfaces import Captioner, ParsedSource, SourceParser

KINDS = ("captioner", "source_parser")
PATH_KEYS = ("checkpoint", "table", "model_dir")


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


def build_source_finder(recipe: Any, registry: Any = None) -> SourceFinder:
    """Build the recipe's captioner and source parser; SepkitError if it names none."""
    from sepkit.plugins import get_registry

    sections = source_sections(recipe)
    if sections is None:
        raise SepkitError(
            f"{recipe.source} cannot enumerate sources: it names no captioner and source parser; add "
            "eval.captioner and eval.source_parser (e.g. recipes/mini/opensep.yaml) or give queries with -q"
        )
    registry = registry or get_registry()
    built = {}
    for kind in KINDS:
        try:
            built[kind] = registry.build(kind, sections[kind], where=f"eval.{kind}")
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
    built["captioner"].eval()
    return SourceFinder(built["captioner"], built["source_parser"])


def enumerate_sources(recipe: Any, wave: Tensor, sr: int) -> list[str]:
    """The separation query (detailed description) of every source found in ``wave`` ([channels, T] at ``sr``)."""
    return [s.description for s in build_source_finder(recipe).find(wave, sr).sources]
