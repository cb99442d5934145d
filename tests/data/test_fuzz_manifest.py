"""Property-based tests of the manifest readers: whatever the file holds, records of the right types or a SepkitError.

Valid clip and mixture records with one field (top-level, of a source or of an instruction)
replaced by a random JSON value, removed, or joined by an unknown one; random lines (JSON
arrays, numbers, strings, any text, any bytes); valid lines with bytes overwritten; and
random files. ``read_clips`` / ``read_mixtures`` either return records whose every field has
its annotated type (finite numbers, in-range instruction targets) or raise ``SepkitError`` with
a one-line message; never another exception.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sepkit.data.manifest import ClipRecord, InstructionRef, MixtureRecord, SourceRef, read_clips, read_mixtures  # noqa: E402
from sepkit.errors import SepkitError  # noqa: E402

CLIP = {
    "id": "c1", "path": "audio/c1.wav", "seconds": 4.0, "sample_rate": 16000, "tags": ["violin"],
    "captions": ["a violin plays"], "split": "test", "provenance": {"corpus": "mini"},
}  # fmt: skip
SOURCE = {"clip_id": "c1", "path": "audio/c1.wav", "gain": 0.5, "offset": 0.0, "start": 0.25, "tags": ["violin"]}
INSTRUCTION = {"task": "extract", "text": "extract the violin", "description": "violin", "target": [0]}
MIXTURE = {
    "id": "m1", "protocol": "hsm_tss", "split": "test", "seconds": 4.0, "sample_rate": 16000,
    "sources": [SOURCE, {**SOURCE, "clip_id": "c2", "tags": ["rain"]}],
    "instructions": [INSTRUCTION, {**INSTRUCTION, "task": "remove", "target": [0, 1]}],
    "snr_db": 3.0, "scale": 1.0, "seed": 7,
}  # fmt: skip
DELETE = object()  # "remove the field" in place of a value
READERS = {"clips": (read_clips, CLIP), "mixtures": (read_mixtures, MIXTURE)}

# Text includes lone surrogates now and then (written as \udxxx escapes, which JSON allows).
TEXT = st.one_of(st.text(max_size=12), st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2))
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-(10**400), 10**400), st.floats(), TEXT,
)  # fmt: skip
JSON = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12
)
VALUES = st.one_of(JSON, st.just(DELETE))


# --- the contract -------------------------------------------------------------------------------
def conforms(value: Any, tp: Any) -> bool:
    """Whether ``value`` has the annotated type ``tp`` (numbers finite, bools not taken for numbers)."""
    if tp is Any:
        return True
    origin = get_origin(tp)
    if origin is Union:
        (inner,) = [a for a in get_args(tp) if a is not type(None)]
        return value is None or conforms(value, inner)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, get_args(tp)[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if is_dataclass(tp):
        hints = get_type_hints(tp)
        return isinstance(value, tp) and all(conforms(getattr(value, f.name), hints[f.name]) for f in fields(tp))
    if isinstance(value, bool):
        return tp is bool
    if tp is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, tp)


def assert_sound(record: Any) -> None:
    """An accepted record has every field of its type, positive lengths and rates, and in-range targets."""
    assert conforms(record, type(record)), record
    if isinstance(record, (ClipRecord, MixtureRecord)):
        assert record.seconds > 0 and record.sample_rate > 0
    if isinstance(record, MixtureRecord):
        assert record.sources and record.scale >= 0 and record.seed >= 0
        assert all(s.offset >= 0 and s.start >= 0 for s in record.sources)
        assert all(0 <= t < len(record.sources) for i in record.instructions for t in i.target)


def read(reader, data: bytes) -> list | None:
    """``reader`` of a temporary manifest holding ``data``: the records, or None after a clean SepkitError."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.jsonl"
        path.write_bytes(data)
        try:
            records = reader(path)
        except SepkitError as exc:
            message = str(exc)
            assert message and len(message.splitlines()) == 1, message
            return None
    for record in records:
        assert_sound(record)
    return records


def line(record: Any) -> bytes:
    """One JSONL line (non-ASCII and lone surrogates as escapes; NaN and Infinity as Python writes them)."""
    return json.dumps(record).encode() + b"\n"


def replaced(record: dict, name: str, value: Any) -> dict:
    """A copy of ``record`` with field ``name`` set to ``value`` (or removed, for DELETE)."""
    copy = {k: v for k, v in record.items() if k != name}
    if value is not DELETE:
        copy[name] = value
    return copy


def names_of(cls) -> st.SearchStrategy[str]:
    """A field name of ``cls`` or an unknown one."""
    return st.sampled_from([f.name for f in fields(cls)] + ["extra"])


# --- properties ---------------------------------------------------------------------------------
@given(name=names_of(ClipRecord), value=VALUES)
def test_a_clip_with_one_field_replaced(name, value):
    records = read(read_clips, line(CLIP) + line(replaced(CLIP, name, value)))
    if records is not None and value is not DELETE and name != "extra":  # accepted as written
        assert json.dumps(getattr(records[1], name)) == json.dumps(value)


@given(name=names_of(MixtureRecord), value=VALUES)
def test_a_mixture_with_one_field_replaced(name, value):
    read(read_mixtures, line(MIXTURE) + line(replaced(MIXTURE, name, value)))


@given(index=st.integers(0, 1), name=names_of(SourceRef), value=VALUES)
def test_a_mixture_with_one_source_field_replaced(index, name, value):
    sources = list(MIXTURE["sources"])
    sources[index] = replaced(sources[index], name, value)
    read(read_mixtures, line({**MIXTURE, "sources": sources}))


@given(index=st.integers(0, 1), name=names_of(InstructionRef), value=VALUES)
def test_a_mixture_with_one_instruction_field_replaced(index, name, value):
    instructions = list(MIXTURE["instructions"])
    instructions[index] = replaced(instructions[index], name, value)
    read(read_mixtures, line({**MIXTURE, "instructions": instructions}))


@given(key=st.sampled_from(["sources", "instructions"]), index=st.integers(0, 2), value=JSON)
def test_a_mixture_with_one_entry_replaced(key, index, value):
    entries = list(MIXTURE[key])
    entries[min(index, len(entries) - 1) :] = [value]
    read(read_mixtures, line({**MIXTURE, key: entries}))


RANDOM_LINES = st.one_of(
    st.lists(JSON, max_size=4).map(json.dumps),
    st.one_of(st.integers(), st.floats(), TEXT, st.none(), st.booleans()).map(json.dumps),
    st.text(max_size=40),
).map(str.encode) | st.binary(max_size=60)


@pytest.mark.parametrize("kind", READERS)
@given(extra=RANDOM_LINES)
def test_a_random_line_after_a_valid_one(kind, extra):
    reader, record = READERS[kind]
    records = read(reader, line(record) + extra + b"\n")
    assert records is None or len(records) == 1  # a random line is only accepted if blank


@pytest.mark.parametrize("kind", READERS)
@given(data=st.data())
def test_a_valid_line_with_bytes_overwritten(kind, data):
    reader, record = READERS[kind]
    raw = bytearray(line(record))
    for _ in range(data.draw(st.integers(1, 4), label="count")):
        raw[data.draw(st.integers(0, len(raw) - 1), label="at")] = data.draw(st.integers(0, 255), label="byte")
    read(reader, bytes(raw))


@pytest.mark.parametrize("kind", READERS)
@given(raw=st.binary(max_size=300))
def test_a_file_of_random_bytes(kind, raw):
    read(READERS[kind][0], raw)
