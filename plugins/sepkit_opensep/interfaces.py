"""The two component kinds OpenSep adds: ``captioner`` and ``source_parser``.

OpenSep (Mahmud et al. 2024, arXiv 2409.19270) finds the sources of a mixture in text:
an audio captioner turns the mixture into a caption ("textual inversion"), and an LLM
parses the caption into one detailed description per source, each then a separation query::

    Captioner.caption(wave [B, T] at sample_rate, lengths [B])  -> B captions
    SourceParser.parse(caption)                                 -> list[ParsedSource]

Both are ``sepkit.interfaces.Component`` modules (a nested ``Config`` dataclass, built from a
recipe section by the registry); the plugin registers the kinds with ``registry.add_kind``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor

from sepkit.interfaces import Component


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


__all__ = ["Captioner", "ParsedSource", "SourceParser"]
