"""Manifests: JSONL files describing clips and mixtures, the contract between corpus builders,
importers, mixing protocols, training and evaluation.

A **clip manifest** has one ``ClipRecord`` per line (one audio file with its tags
and captions). A **mixture manifest** has one ``MixtureRecord`` per line: which
clips are mixed, with which gains and offsets, and which instructions it comes
with and what each instruction's target is. A mixture manifest is frozen: the
same record always renders to the same samples (``render_mixture``).

Paths in a manifest are relative to the manifest's folder unless absolute.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np

from sepkit.errors import SepkitError


@dataclass
class ClipRecord:
    """One audio clip. ``tags``: normalised class labels; ``captions``: free-text descriptions."""

    id: str
    path: str
    seconds: float
    sample_rate: int
    tags: list[str]
    captions: list[str]
    split: str  # "train" | "val" | "test"
    provenance: dict[str, Any] = field(default_factory=dict)  # how the clip was made or where it came from


@dataclass
class SourceRef:
    """One source placed in a mixture.

    ``start``: seconds into the clip where the excerpt starts; ``offset``: seconds into the
    mixture where it is placed; ``gain``: linear factor applied before the mixture ``scale``.
    """

    clip_id: str
    path: str
    gain: float
    offset: float = 0.0
    start: float = 0.0
    tags: list[str] = field(default_factory=list)


@dataclass
class InstructionRef:
    """An instruction that comes with a mixture; its target is the sum of the sources ``target``."""

    task: str  # "extract" | "remove"
    text: str  # the instruction as a user would type it, e.g. "remove the dog barking"
    description: str  # the sound described, e.g. "dog barking"
    target: list[int]  # indices into MixtureRecord.sources


@dataclass
class MixtureRecord:
    """A frozen mixture: sources, gains, offsets, instructions and targets.

    ``scale``: applied to every source after its gain (set < 1 when the mixture would clip;
    the SNR is kept). ``snr_db``: the protocol's drawn level of the first source against the rest.
    """

    id: str
    protocol: str
    split: str
    seconds: float
    sample_rate: int
    sources: list[SourceRef]
    instructions: list[InstructionRef]
    snr_db: Optional[float] = None
    scale: float = 1.0
    seed: int = 0


def _from_dict(cls, data: dict, where: str):
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise SepkitError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise SepkitError(f"{where}: {exc}") from None


def clip_from_dict(data: dict, where: str = "clip") -> ClipRecord:
    return _from_dict(ClipRecord, data, where)


def mixture_from_dict(data: dict, where: str = "mixture") -> MixtureRecord:
    record = _from_dict(MixtureRecord, data, where)
    record.sources = [_from_dict(SourceRef, s, f"{where}.sources") for s in record.sources]
    record.instructions = [_from_dict(InstructionRef, i, f"{where}.instructions") for i in record.instructions]
    return record


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write dataclass records as JSONL atomically (sorted keys: same records, same bytes). Returns the count."""
    from sepkit.atomic import atomic_path

    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(asdict(record), sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    path = Path(path)
    if not path.is_file():
        raise SepkitError(f"manifest {path} not found")
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise SepkitError(f"{path}:{number}: not valid JSON ({exc.msg}); fix or rebuild the manifest") from None


def read_clips(path: str | os.PathLike) -> list[ClipRecord]:
    """Read a clip manifest; raises SepkitError if it is empty or malformed."""
    clips = [clip_from_dict(d, f"{path}:{n}") for n, d in iter_jsonl(path)]
    if not clips:
        raise SepkitError(f"manifest {path} is empty; build or import a corpus first (sepkit data mini --out DIR)")
    return clips


def read_mixtures(path: str | os.PathLike) -> list[MixtureRecord]:
    """Read a mixture manifest; raises SepkitError if it is empty or malformed."""
    mixtures = [mixture_from_dict(d, f"{path}:{n}") for n, d in iter_jsonl(path)]
    if not mixtures:
        raise SepkitError(f"mixture manifest {path} is empty; write one with sepkit data mix")
    return mixtures


def resolve_path(path: str, manifest_dir: Optional[Path]) -> Path:
    p = Path(path)
    return p if p.is_absolute() or manifest_dir is None else manifest_dir / p


class ClipCache:
    """Loads clips as mono float32 at one sample rate, keeping the most recent ones in memory."""

    def __init__(self, sample_rate: int, base_dir: Optional[Path] = None, capacity: int = 256) -> None:
        self.sample_rate = sample_rate
        self.base_dir = base_dir
        self.capacity = capacity
        self._cache: dict[str, np.ndarray] = {}

    def source_path(self, path: str, path_base: Optional[Path] = None) -> str:
        """How a mixture refers to clip ``path``: relative to ``path_base`` if given, else absolute."""
        resolved = os.path.abspath(resolve_path(path, self.base_dir))
        if path_base is None:
            return Path(resolved).as_posix()
        return Path(os.path.relpath(resolved, os.path.abspath(path_base))).as_posix()

    def read(self, path: str) -> tuple[np.ndarray, int]:
        """The clip at ``path``: float32 [channels, samples] and its rate. Other clip stores override this."""
        from sepkit.audio import read_audio

        return read_audio(resolve_path(path, self.base_dir))

    def load(self, path: str) -> np.ndarray:
        """float32 [samples] mono at ``sample_rate``."""
        if path in self._cache:
            return self._cache[path]
        wave, sr = self.read(path)
        mono = wave.mean(axis=0)
        if sr != self.sample_rate:
            import torch
            import torchaudio.functional as AF

            mono = AF.resample(torch.from_numpy(mono), sr, self.sample_rate).numpy()
        if len(self._cache) >= self.capacity:
            self._cache.pop(next(iter(self._cache)))
        self._cache[path] = mono.astype(np.float32)
        return self._cache[path]


def place_source(clip: np.ndarray, ref: SourceRef, num_samples: int, sample_rate: int) -> np.ndarray:
    """The source's excerpt placed in a silent [num_samples] track, times its gain."""
    track = np.zeros(num_samples, dtype=np.float32)
    start = int(round(ref.start * sample_rate))
    offset = int(round(ref.offset * sample_rate))
    excerpt = clip[start : start + max(0, num_samples - offset)]
    track[offset : offset + excerpt.size] = excerpt * ref.gain
    return track


def render_mixture(record: MixtureRecord, cache: ClipCache) -> tuple[np.ndarray, np.ndarray]:
    """-> (mixture float32 [samples], sources float32 [num_sources, samples]) at the cache's sample rate.

    Gains, offsets and ``scale`` are applied; the mixture is the sum of the sources.
    """
    sr = cache.sample_rate
    n = int(round(record.seconds * sr))
    sources = np.stack([place_source(cache.load(s.path), s, n, sr) for s in record.sources]) * record.scale
    return sources.sum(axis=0), sources.astype(np.float32)


def instruction_target_text(record: MixtureRecord, index: int) -> str:
    """A description of the target of ``record.instructions[index]`` (for text-audio metrics such as CLAP score).

    Extraction: the instruction's own description. Removal: the description of an extraction
    instruction of the same record with the same target (the hsm_tss protocol pairs them), else the
    target sources' tags joined with " and ".
    """
    instruction = record.instructions[index]
    if instruction.task == "extract":
        return instruction.description
    for other in record.instructions:
        if other.task == "extract" and sorted(other.target) == sorted(instruction.target):
            return other.description
    tags = [tag for i in instruction.target for tag in record.sources[i].tags[:1]]
    return " and ".join(tags) if tags else instruction.description


def instruction_target(record: MixtureRecord, sources: np.ndarray, index: int) -> np.ndarray:
    """The target of ``record.instructions[index]``: the sum of its ``target`` sources, float32 [samples]."""
    targets = record.instructions[index].target
    if not targets:
        return np.zeros(sources.shape[-1], dtype=np.float32)
    return sources[targets].sum(axis=0)
