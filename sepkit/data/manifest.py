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
import math
import os
import reprlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

import numpy as np

from sepkit.errors import SepkitError

FIX = "fix or rebuild the manifest"  # the default advice after a malformed record
MAX_DEPTH = 32  # nesting levels allowed inside free-form (Any) values such as ``provenance``


def _rule(predicate: Callable[[Any], bool], problem: str) -> dict:
    """Field metadata: a check beyond the field's type, and what to say when it fails."""
    return {"rule": (predicate, problem)}


POSITIVE = _rule(lambda v: v > 0, "must be positive")
NON_NEGATIVE = _rule(lambda v: v >= 0, "must not be negative")
SOME_SOURCE = _rule(lambda v: len(v) > 0, "must hold at least one source")


@dataclass
class ClipRecord:
    """One audio clip. ``tags``: normalised class labels; ``captions``: free-text descriptions."""

    id: str
    path: str
    seconds: float = field(metadata=POSITIVE)
    sample_rate: int = field(metadata=POSITIVE)
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
    offset: float = field(default=0.0, metadata=NON_NEGATIVE)
    start: float = field(default=0.0, metadata=NON_NEGATIVE)
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
    seconds: float = field(metadata=POSITIVE)
    sample_rate: int = field(metadata=POSITIVE)
    sources: list[SourceRef] = field(metadata=SOME_SOURCE)
    instructions: list[InstructionRef]
    snr_db: Optional[float] = None
    scale: float = field(default=1.0, metadata=NON_NEGATIVE)
    seed: int = field(default=0, metadata=NON_NEGATIVE)


# --- checking records against their types ----------------------------------------------------
class _Invalid(Exception):
    """A value that does not fit its record. ``path``: where it is (["sources", 1, "gain"]), filled in as the
    error passes up through lists and records; ``record``: the problem is about a whole (nested) record."""

    def __init__(self, problem: str, record: bool = False) -> None:
        super().__init__(problem)
        self.problem, self.record, self.path = problem, record, []

    def __str__(self) -> str:
        if not self.path:
            return self.problem
        field_path = _field_path(self.path)
        return f"field '{field_path}': {self.problem}" if self.record else f"field '{field_path}' {self.problem}"


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlist = _SHORT.maxdict = 4
_SHORT.maxlevel = 2


def _show(value: Any) -> str:
    """A short, one-line form of a JSON value for a message: 'x', 5, [1, 2], null, true."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return _SHORT.repr(value)


def _kind(value: Any) -> str:
    """What a JSON value is, for a message: 'an array', 'a number (5)', 'null'."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return f"a number ({_show(value)})"
    if isinstance(value, str):
        return f"a string ({_show(value)})"
    return "an array" if isinstance(value, list) else "an object"


def _key(name: str) -> str:
    """A JSON key as it appears in a message: as it is if it is a plain name, else quoted."""
    return name if name.isidentifier() else _show(name)


def _field_path(path: list) -> str:
    """["sources", 1, "gain"] -> "sources[1].gain"; keys that are not plain names are quoted in brackets."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier():
            text += f".{part}" if text else part
        else:
            text += f"[{_show(part)}]"
    return text


def _names(names: list[str], most: int = 5) -> str:
    """'a, b, c' for up to ``most`` names, then 'and N more'."""
    shown = ", ".join(_key(n) for n in names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def _is_text(value: str) -> bool:
    """Whether ``value`` is valid Unicode (JSON escapes can make lone surrogates, which cannot be written)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_str(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"must be a string, got {_show(value)}")
    if not _is_text(value):
        raise _Invalid("is not valid Unicode text (a lone surrogate escape such as \\ud800)")
    return value


def _check_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"must be an integer, got {_show(value)}")
    return value


def _check_float(value: Any) -> float:
    """A finite number; integers are numbers too and are kept as they are (records hash their values)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Invalid(f"must be a number, got {_show(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:
        raise _Invalid(f"is too large a number, got {_show(value)}") from None
    if not finite:
        raise _Invalid(f"must be a finite number, got {_show(value)}")
    return value


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"must be true or false, got {_show(value)}")
    return value


def _check_free(value: Any) -> Any:
    """An ``Any`` value: any JSON, but its text must be valid Unicode and it must not nest too deeply."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Invalid(f"is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(item, str) and not _is_text(item):
            raise _Invalid("holds text that is not valid Unicode (a lone surrogate escape)")
        if isinstance(item, dict):
            stack.extend((part, depth + 1) for pair in item.items() for part in pair)
        elif isinstance(item, list):
            stack.extend((part, depth + 1) for part in item)
    return value


_SCALARS = {str: _check_str, int: _check_int, float: _check_float, bool: _check_bool}
Check = Callable[[Any], Any]  # returns the value checked (nested records built) or raises _Invalid


def _object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise _Invalid(f"must be an object, got {_show(value)}")
    return value


def _optional(inner: Check) -> Check:
    """Checks Optional[X]: null, or a value that ``inner`` accepts."""
    return lambda value: None if value is None else inner(value)


def _list_of(item: Check) -> Check:
    """Checks list[X]: a JSON array whose every item ``item`` accepts."""

    def check(value: Any) -> list:
        if not isinstance(value, list):
            raise _Invalid(f"must be a list, got {_show(value)}")
        checked = []
        for index, part in enumerate(value):
            try:
                checked.append(item(part))
            except _Invalid as exc:
                exc.path.insert(0, index)
                raise
        return checked

    return check


def _dict_of(item: Check) -> Check:
    """Checks dict[str, X]: a JSON object whose every value ``item`` accepts."""

    def check(value: Any) -> dict:
        checked = {}
        for key, part in _object(value).items():
            try:
                checked[key] = item(part)
            except _Invalid as exc:
                exc.path.insert(0, key)
                raise
        return checked

    return check


@cache
def _checker(tp: Any) -> Check:
    """The check for values of the annotation ``tp`` (str, int, float, bool, Any, Optional, list, dict, records)."""
    if tp is Any:
        return _check_free
    origin, args = get_origin(tp), get_args(tp)
    if origin is Union:  # Optional[X]
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _optional(_checker(inner))
    if origin is list:
        return _list_of(_checker(args[0]))
    if origin is dict:
        return _dict_of(_checker(args[1]))
    if is_dataclass(tp):
        return lambda value: _build(tp, _object(value))
    return _SCALARS[tp]


@cache
def _plan(cls) -> tuple[tuple, frozenset, tuple]:
    """How to check a record class: ((name, check, rule) per field, field names, required names)."""
    hints = get_type_hints(cls)
    steps = tuple((f.name, _checker(hints[f.name]), f.metadata.get("rule")) for f in fields(cls))
    required = tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)
    return steps, frozenset(f.name for f in fields(cls)), required


def _check_names(cls, data: dict, known: frozenset, required: tuple) -> None:
    """No unknown fields and every required field present."""
    if not known.issuperset(data):
        unknown = sorted(set(data) - known)
        names = ", ".join(f.name for f in fields(cls))
        raise _Invalid(f"unknown field(s) {_names(unknown)} for {cls.__name__} (its fields: {names})", record=True)
    missing = [name for name in required if name not in data]
    if missing:
        raise _Invalid(f"missing field(s) {', '.join(repr(m) for m in missing)} for {cls.__name__}", record=True)


def _build(cls, data: dict):
    """A ``cls`` record from ``data``, each field checked against its type and its metadata rule."""
    steps, known, required = _plan(cls)
    _check_names(cls, data, known, required)
    values = {}
    for name, check, rule in steps:
        if name not in data:
            continue
        try:
            value = check(data[name])
            if rule is not None and not rule[0](value):
                raise _Invalid(f"{rule[1]}, got {_show(value)}")
        except _Invalid as exc:
            exc.path.insert(0, name)
            raise
        values[name] = value
    return cls(**values)


def _check_targets(record: MixtureRecord) -> None:
    """Every instruction target is the index of one of the mixture's sources."""
    count = len(record.sources)
    for i, instruction in enumerate(record.instructions):
        for j, index in enumerate(instruction.target):
            if not 0 <= index < count:
                exc = _Invalid(
                    f"is {index} but the mixture has {count} source{'s' if count != 1 else ''} "
                    f"(indices 0 to {count - 1})"
                )
                exc.path = ["instructions", i, "target", j]
                raise exc


def _from_dict(cls, data: Any, where: str, fix: str = FIX, check: Optional[Callable[[Any], None]] = None):
    """A ``cls`` record from a parsed JSON value; SepkitError "<where>: <field and problem>; <fix>" if it misfits."""
    try:
        if not isinstance(data, dict):
            raise _Invalid(f"a record must be a JSON object, got {_kind(data)}", record=True)
        record = _build(cls, data)
        if check is not None:
            check(record)
    except _Invalid as exc:
        raise SepkitError(f"{where}: {exc}; {fix}") from None
    return record


def clip_from_dict(data: Any, where: str = "clip", fix: str = FIX) -> ClipRecord:
    """A ClipRecord from a parsed JSON object; SepkitError naming ``where``, the field and ``fix`` if malformed."""
    return _from_dict(ClipRecord, data, where, fix)


def mixture_from_dict(data: Any, where: str = "mixture", fix: str = FIX) -> MixtureRecord:
    """A MixtureRecord (sources and instructions included) from a parsed JSON object; SepkitError if malformed."""
    return _from_dict(MixtureRecord, data, where, fix, check=_check_targets)


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Write dataclass records as JSONL atomically (sorted keys: same records, same bytes). Returns the count."""
    from sepkit.atomic import atomic_path

    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(asdict(record), sort_keys=True, ensure_ascii=False) + "\n")
            count += 1
    return count


def _check_utf8(line: str, path: Path, number: int) -> None:
    """SepkitError naming file:line if ``line`` (read with errors="surrogateescape") had bytes that are not UTF-8."""
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:  # an undecodable byte b was read as the character U+DC00 + b
        byte = ord(line[exc.start]) - 0xDC00
        raise SepkitError(
            f"{path}:{number}: byte 0x{byte:02x} at column {exc.start + 1} is not valid UTF-8 "
            f"(manifests are UTF-8 JSONL); {FIX}"
        ) from None


def _parse(text: str, path: Path, number: int) -> dict:
    """The JSON object on line ``number``; SepkitError naming file:line if it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SepkitError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); {FIX}") from None
    except ValueError:  # an integer beyond Python's digit limit
        raise SepkitError(f"{path}:{number}: not valid JSON (a number has too many digits); {FIX}") from None
    except RecursionError:
        raise SepkitError(f"{path}:{number}: not valid JSON (nested too deeply); {FIX}") from None
    if not isinstance(value, dict):
        raise SepkitError(
            f"{path}:{number}: a manifest line must be a JSON object (one record), got {_kind(value)}; {FIX}"
        )
    return value


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) for each non-blank line of a JSONL file.

    Raises SepkitError naming file:line for a line that is not UTF-8, not JSON or not a JSON object.
    """
    path = Path(path)
    if not path.is_file():
        raise SepkitError(f"manifest {path} not found")
    try:
        with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:  # a byte order mark is allowed
            for number, line in enumerate(f, 1):
                _check_utf8(line, path, number)
                if line.strip():
                    yield number, _parse(line, path, number)
    except OSError as exc:
        raise SepkitError(f"manifest {path} cannot be read ({exc.strerror or exc}); check its permissions") from None


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
        mono = mono.astype(np.float32)
        if self.capacity <= 0:  # data.cache_clips: 0 keeps nothing
            return mono
        if len(self._cache) >= self.capacity:
            self._cache.pop(next(iter(self._cache)))
        self._cache[path] = mono
        return mono


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
