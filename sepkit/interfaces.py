"""The abstract component roles a separation system is assembled from.

Every role is a ``torch.nn.Module`` with a nested ``Config`` dataclass (its recipe
keys) and a constructor ``__init__(self, config)``. Components work on **mono
batches**: ``wave`` is ``float32 [batch, samples]`` at the component's own
``sample_rate``, with a ``lengths`` tensor ``long [batch]`` giving the valid
samples of each row (rows are zero-padded to the longest). The pipeline folds
channels into the batch, resamples, and restores both afterwards; components
never resample.

Roles, and what they exchange (the abstract methods below, argument names as
in their signatures)::

    TextEncoder.encode_text(texts: list[str])                   -> TextEmbedding
    AudioEncoder.encode_audio(wave, lengths)                    -> AudioFeatures
    Separator.separate(mixture: AudioFeatures, query: TextEmbedding, tasks) -> AudioFeatures
    Decoder.decode(features: AudioFeatures, num_samples=None)   -> wave
    Codec.encode(wave, lengths) -> CodecFrames;  Codec.decode(codes) -> wave
    InstructionParser.parse(text: str)                          -> list[Instruction]
    Metric.score(estimate, reference, sample_rate, mixture=None) -> per-row scores

``tasks`` is ``long [batch]`` (indices into ``TASKS``); ``num_samples`` trims or
zero-pads the decoded wave to that length; ``codes`` is ``CodecFrames.codes``
(``long [batch, codebooks, frames]``); a metric with ``needs_text`` also takes
``texts=[...]``, one description of the target per row. ``InstructionParser``
is a plain class (not a module) built as ``__init__(self, config=None)``.
``TextEncoder.task_token_embeddings(tasks=TASKS)`` is optional (encoders with a
vocabulary override it).

A component may implement two roles (CLAP and Q-Audio are both text and audio
encoders): inherit from both classes.

Optional, on any role: ``oracles(components) -> list[Oracle]`` declares what the
system would output if a quantity it predicts were exact (``sepkit.oracles``);
``components`` are the pipeline's, by role. ``SeparationPipeline.oracles()`` asks
every component and ``sepkit benchmark`` scores each oracle as a row.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn

from sepkit.instructions import TASKS, Instruction, InstructionParser

__all__ = [
    "TASKS",
    "AudioEncoder",
    "AudioFeatures",
    "Codec",
    "CodecFrames",
    "Component",
    "Decoder",
    "Instruction",
    "InstructionParser",
    "Metric",
    "Oracle",
    "Separator",
    "TextEmbedding",
    "TextEncoder",
    "encode_descriptions",
]


@dataclass
class TextEmbedding:
    """Token-level and pooled embeddings of a batch of texts.

    tokens: float [batch, tokens, embed_dim], zero where ``mask`` is False.
    mask:   bool  [batch, tokens], True for real tokens (padding is False).
    pooled: float [batch, embed_dim], one vector per text.
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def to(self, device: torch.device | str) -> TextEmbedding:
        return TextEmbedding(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))

    def rows(self, index: Tensor) -> TextEmbedding:
        """The rows ``index`` (long [B']) of every field, in that order (repeats allowed)."""
        return TextEmbedding(self.tokens[index], self.mask[index], self.pooled[index])


def encode_descriptions(
    encode_text: Callable[[list[str]], TextEmbedding], descriptions: Sequence[str]
) -> TextEmbedding:
    """One row per description, in the order given, from one ``encode_text`` call on the distinct descriptions
    (a batch repeats a caption for several mixtures; each distinct text is encoded once)."""
    unique = sorted(set(descriptions))
    text = encode_text(unique)
    row_of = {d: i for i, d in enumerate(unique)}
    return text.rows(torch.tensor([row_of[d] for d in descriptions], device=text.pooled.device))


@dataclass
class AudioFeatures:
    """A frame sequence describing a batch of audio.

    frames:     [batch, frames, dim] (real or complex; a patch grid may add axes
                after ``frames``: [batch, frames, patches, dim]).
    lengths:    long [batch], valid frames per row.
    frame_rate: frames per second of audio.
    pooled:     optional float [batch, dim'] clip-level embedding.
    """

    frames: Tensor
    lengths: Tensor
    frame_rate: float
    pooled: Optional[Tensor] = None


@dataclass
class CodecFrames:
    """Discrete codes (and, where the codec has them, continuous latents).

    codes:   long [batch, num_codebooks, frames], values in [0, codebook_size).
    lengths: long [batch], valid frames per row.
    latents: optional float [batch, frames, latent_dim] before quantisation.
    """

    codes: Tensor
    lengths: Tensor
    latents: Optional[Tensor] = None


@dataclass
class Oracle:
    """An output a system could give if one quantity it predicts were exact: a ceiling for its scores.

    name:        what it is, e.g. "Oracle IRM".
    setting:     a few words naming what decides it, e.g. "stft n_fft 512, hop 160": ``sepkit benchmark``
                 labels the row "Oracle IRM [stft n_fft 512, hop 160]" (never by the declaring systems'
                 names: an oracle row is not the system's result) and lists the declaring systems beside it.
    config:      JSON-ready settings that decide the output, without weight file paths; two oracles with
                 equal ``name``, ``config`` and weights of ``modules`` give the same output.
    sample_rate: Hz of the waves ``output`` takes and returns.
    output:      (mixture [B, T], target [B, T], lengths long [B]) -> estimate float [B, T], rows zero-padded
                 past their ``lengths``; called under ``torch.inference_mode``.
    modules:     the modules whose weights decide the output (their state is hashed, not their file paths).
    description: one sentence for the result notes.
    """

    name: str
    config: dict[str, Any]
    sample_rate: int
    output: Callable[[Tensor, Tensor, Tensor], Tensor]
    modules: tuple[nn.Module, ...] = ()
    description: str = ""
    setting: str = ""


class Component(nn.Module):
    """Base of every role: holds the validated config.

    Subclasses define ``class Config`` as a dataclass whose fields are the recipe
    keys, and call ``super().__init__(config)``.
    """

    @dataclass
    class Config:
        pass

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config


class TextEncoder(Component, ABC):
    """Encodes text queries.

    ``embed_dim``: width D of ``tokens`` and ``pooled``.
    """

    embed_dim: int

    @abstractmethod
    def encode_text(self, texts: list[str]) -> TextEmbedding:
        """texts: B strings -> TextEmbedding(tokens [B, N, D], mask [B, N], pooled [B, D])."""

    def task_token_embeddings(self, tasks: tuple[str, ...] = TASKS) -> dict[str, Tensor]:
        """{task word: float [L, D]}: the pretrained vocabulary embeddings of each task word's L pieces.

        HSM-TSS conditions its separators on "extract"/"remove" as token embeddings of the text
        encoder's own vocabulary (``sepkit.task_tokens``). Encoders with a vocabulary override this.
        """
        raise NotImplementedError(
            f"text encoder {type(self).__name__} has no task token embeddings (a vocabulary embedding table); "
            "pick a text encoder that has one (flan-t5, minilm, qaudio) or a separator without task_tokens"
        )


class AudioEncoder(Component, ABC):
    """Turns waveforms into frame features.

    ``sample_rate``: Hz the input wave must have.
    ``output_dim``:  width of ``AudioFeatures.frames`` (last axis).
    ``frame_rate``:  frames per second produced.
    ``representation``: a name for what the frames are (e.g. ``"complex_stft"``),
        checked against what a separator consumes.
    ``min_samples``: the shortest wave ``encode_audio`` accepts (e.g. ``n_fft // 2 + 1``
        for centred STFT frames with reflection padding). The pipeline zero-pads shorter
        inputs to this length and trims the output back, so users never see the limit.
    """

    sample_rate: int
    output_dim: int
    frame_rate: float
    representation: str
    min_samples: int = 1

    @abstractmethod
    def encode_audio(self, wave: Tensor, lengths: Tensor) -> AudioFeatures:
        """wave: float [B, T] at ``sample_rate``; lengths: long [B] -> AudioFeatures [B, F, output_dim]."""


class Separator(Component, ABC):
    """Maps the mixture's representation and a query to the target's representation.

    ``consumes`` / ``produces``: representation names (see ``AudioEncoder``).
    ``input_dim`` / ``output_dim``: frame widths consumed and produced.
    ``query_dim``: width of the text embedding it is conditioned on.
    ``tasks``: the instruction tasks it handles itself. A separator that only
        extracts leaves "remove" to the pipeline, which subtracts the extracted
        source from the mixture.
    ``task_tokens``: if True, ``query`` arrives with the task word's vocabulary
        embeddings appended after the caption tokens (``sepkit.task_tokens``).
    """

    consumes: str
    produces: str
    input_dim: int
    output_dim: int
    query_dim: int
    tasks: tuple[str, ...] = ("extract",)
    task_tokens: bool = False  # True: the pipeline appends the task word's token embeddings to ``query``
    min_samples: int = 1  # shortest mixture (at the pipeline's rate) a separator that reads the wave accepts

    @abstractmethod
    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        """mixture: [B, F, input_dim]; query: [B, N, query_dim]; tasks: long [B] (index into ``TASKS``).

        Returns the target's AudioFeatures [B, F', output_dim].
        """


class Decoder(Component, ABC):
    """Turns a representation back into a waveform.

    ``consumes``: representation name; ``input_dim``: frame width;
    ``frame_rate``: frames per second it expects; ``sample_rate``: Hz of its output.
    """

    consumes: str
    input_dim: int
    frame_rate: float
    sample_rate: int

    @abstractmethod
    def decode(self, features: AudioFeatures, num_samples: Optional[int] = None) -> Tensor:
        """features: [B, F, input_dim] -> wave float [B, T] at ``sample_rate``.

        ``num_samples``: if given, the output is trimmed or zero-padded to it.
        """


class Codec(Component, ABC):
    """A neural or classic audio codec.

    ``sample_rate`` (Hz), ``frame_rate`` (code frames per second),
    ``num_codebooks`` (G), ``codebook_size`` (codes per codebook).
    """

    sample_rate: int
    frame_rate: float
    num_codebooks: int
    codebook_size: int

    @abstractmethod
    def encode(self, wave: Tensor, lengths: Tensor) -> CodecFrames:
        """wave: float [B, T] at ``sample_rate`` -> CodecFrames(codes long [B, G, frames])."""

    @abstractmethod
    def decode(self, codes: Tensor) -> Tensor:
        """codes: long [B, G, frames] -> wave float [B, T] at ``sample_rate``."""


class Metric(Component, ABC):
    """Scores estimates against references, one number per row.

    ``higher_is_better``: direction (SDR: True, LSD: False). ``needs_mixture``: the
    metric is an improvement over the mixture (SDRi) and needs ``mixture``. ``needs_text``:
    the metric compares audio with text (CLAP score) and ``score`` takes ``texts`` too.
    Each metric's docstring names the reference implementation it follows.
    """

    higher_is_better: bool = True
    needs_mixture: bool = False
    needs_text: bool = False  # True: ``score`` also takes ``texts=[...]``, one description of the target per row

    @abstractmethod
    def score(self, estimate: Tensor, reference: Tensor, sample_rate: int, mixture: Optional[Tensor] = None) -> Tensor:
        """estimate, reference (, mixture): float [B, T] at ``sample_rate`` -> float64 [B]."""
