"""Malformed manifests are user errors: SepkitError naming file:line, the field, the problem and the fix.

Each case here exited 1 (an internal error) or gave an unhelpful message before manifests were
validated field by field against the record types (issue 13, item 5). The last tests run the CLI:
``sepkit data mix``, ``data shard``, ``evaluate`` and ``benchmark`` exit 2 with one line on stderr.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sepkit.data.manifest import (
    ClipRecord,
    MixtureRecord,
    clip_from_dict,
    iter_jsonl,
    mixture_from_dict,
    read_clips,
    read_mixtures,
)
from sepkit.errors import SepkitError

CLIP = {
    "id": "c1",
    "path": "audio/c1.wav",
    "seconds": 4.0,
    "sample_rate": 16000,
    "tags": ["violin"],
    "captions": ["a violin plays"],
    "split": "test",
    "provenance": {"corpus": "mini", "n": [1, {"x": None}]},
}
SOURCE = {"clip_id": "c1", "path": "audio/c1.wav", "gain": 0.5, "offset": 0.0, "start": 0.25, "tags": ["violin"]}
MIXTURE = {
    "id": "m1",
    "protocol": "hsm_tss",
    "split": "test",
    "seconds": 4.0,
    "sample_rate": 16000,
    "sources": [SOURCE, {**SOURCE, "clip_id": "c2", "path": "audio/c2.wav", "tags": ["rain"]}],
    "instructions": [
        {"task": "extract", "text": "extract the violin", "description": "violin", "target": [0]},
        {"task": "remove", "text": "remove the rain", "description": "rain", "target": [1]},
    ],
    "snr_db": 3.0,
    "scale": 1.0,
    "seed": 7,
}


def write_lines(path: Path, *lines) -> Path:
    """Write JSONL: dicts are dumped as JSON, str lines are written as they are, bytes as raw bytes."""
    data = b""
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        data += (line.encode("utf-8") if isinstance(line, str) else line) + b"\n"
    path.write_bytes(data)
    return path


def error_of(reader, path: Path) -> str:
    """The message of the SepkitError ``reader(path)`` raises; it must be one line."""
    with pytest.raises(SepkitError) as info:
        reader(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    return message


def with_field(record: dict, name: str, value) -> dict:
    """A copy of ``record`` with ``name`` set to ``value``."""
    return {**record, name: value}


# --- valid manifests still read ---------------------------------------------------------------
def test_valid_records_read_with_their_values(tmp_path):
    clip = with_field(CLIP, "seconds", 4)  # an integer where a float is expected is a number too
    path = write_lines(tmp_path / "clips.jsonl", CLIP, "", "   ", clip)
    clips = read_clips(path)
    assert [c.seconds for c in clips] == [4.0, 4] and clips[0] == ClipRecord(**CLIP)
    mixtures = read_mixtures(write_lines(tmp_path / "mix.jsonl", MIXTURE, with_field(MIXTURE, "snr_db", None)))
    assert mixtures[0].sources[1].clip_id == "c2" and mixtures[0].instructions[1].target == [1]
    assert mixtures[1].snr_db is None and isinstance(mixtures[0], MixtureRecord)


def test_defaults_may_be_left_out(tmp_path):
    clip = {k: v for k, v in CLIP.items() if k != "provenance"}
    mixture = {k: v for k, v in MIXTURE.items() if k not in ("snr_db", "scale", "seed")}
    mixture["sources"] = [{"clip_id": "c1", "path": "a.wav", "gain": 1}]
    mixture["instructions"] = [MIXTURE["instructions"][0]]
    assert read_clips(write_lines(tmp_path / "c.jsonl", clip))[0].provenance == {}
    record = read_mixtures(write_lines(tmp_path / "m.jsonl", mixture))[0]
    assert (record.scale, record.seed, record.sources[0].offset, record.sources[0].tags) == (1.0, 0, 0.0, [])


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(CLIP).encode() + b"\n")
    assert read_clips(path)[0].id == "c1"


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_windows_and_old_mac_line_ends(tmp_path, newline):
    path = tmp_path / "clips.jsonl"
    path.write_bytes(newline.join(json.dumps(c).encode() for c in (CLIP, with_field(CLIP, "id", "c2"))) + newline)
    assert [c.id for c in read_clips(path)] == ["c1", "c2"]


# --- lines that are not one JSON object ----------------------------------------------------------
@pytest.mark.parametrize(
    "line, shown",
    [("[1, 2, 3]", "an array"), ("5", "a number"), ('"x"', "a string"), ("null", "null"), ("true", "true"),
     ("NaN", "a number")],
)  # fmt: skip
@pytest.mark.parametrize("reader", [read_clips, read_mixtures])
def test_a_line_that_is_not_an_object(tmp_path, reader, line, shown):
    first = CLIP if reader is read_clips else MIXTURE
    path = write_lines(tmp_path / "bad.jsonl", first, line)
    message = error_of(reader, path)
    assert message.startswith(f"{path}:2: ") and "must be a JSON object" in message and shown in message
    assert message.endswith("fix or rebuild the manifest")


def test_invalid_utf8_names_the_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", CLIP, b'{"id": "\xff"}')
    message = error_of(read_clips, path)
    assert message.startswith(f"{path}:2: byte 0xff at column 9 is not valid UTF-8"), message


def test_invalid_json_names_the_line(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", CLIP, CLIP, '{"id": ')
    assert error_of(read_clips, path).startswith(f"{path}:3: not valid JSON")


@pytest.mark.parametrize("line", ["[" * 100_000, '{"a":' * 100_000])
def test_too_deeply_nested_json(tmp_path, line):
    path = write_lines(tmp_path / "bad.jsonl", line)
    assert error_of(read_clips, path).startswith(f"{path}:1: ")


def test_a_number_with_too_many_digits(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", '{"sample_rate": 1' + "0" * 5000 + "}")
    assert error_of(read_clips, path).startswith(f"{path}:1: ")


def test_a_folder_is_not_a_manifest(tmp_path):
    assert "not found" in error_of(read_clips, tmp_path)


# --- fields of a clip ------------------------------------------------------------------------
CLIP_CASES = {
    "sample_rate-string": ("sample_rate", "x", "must be an integer, got 'x'"),
    "sample_rate-bool": ("sample_rate", True, "must be an integer, got true"),
    "sample_rate-float": ("sample_rate", 16000.5, "must be an integer"),
    "sample_rate-negative": ("sample_rate", -16000, "must be positive"),
    "sample_rate-zero": ("sample_rate", 0, "must be positive"),
    "seconds-string": ("seconds", "4", "must be a number, got '4'"),
    "seconds-bool": ("seconds", False, "must be a number, got false"),
    "seconds-negative": ("seconds", -1.0, "must be positive"),
    "seconds-huge-int": ("seconds", 10**400, "too large"),
    "tags-int": ("tags", 5, "must be a list, got 5"),
    "tags-string": ("tags", "violin", "must be a list"),
    "tags-item": ("tags[1]", ["violin", 3], "must be a string, got 3"),
    "captions-object": ("captions", {"a": 1}, "must be a list"),
    "id-int": ("id", 5, "must be a string, got 5"),
    "path-null": ("path", None, "must be a string, got null"),
    "split-list": ("split", ["test"], "must be a string"),
    "provenance-list": ("provenance", [1], "must be an object, got [1]"),
    "provenance-deep": ("provenance.a", {"a": json.loads("[" * 100 + "]" * 100)}, "nested too deeply"),
}


@pytest.mark.parametrize("name, value, problem", CLIP_CASES.values(), ids=CLIP_CASES.keys())
def test_a_clip_field_of_the_wrong_type(tmp_path, name, value, problem):
    field = name.split("[")[0].split(".")[0]
    path = write_lines(tmp_path / "clips.jsonl", CLIP, CLIP, with_field(CLIP, field, value))
    message = error_of(read_clips, path)
    assert message.startswith(f"{path}:3: field '{name}' "), message
    assert problem in message and message.endswith("; fix or rebuild the manifest"), message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers(tmp_path, value):
    line = json.dumps(CLIP).replace('"seconds": 4.0', f'"seconds": {value}')
    path = write_lines(tmp_path / "clips.jsonl", line)
    message = error_of(read_clips, path)
    assert message.startswith(f"{path}:1: field 'seconds' must be a finite number"), message


def test_a_lone_surrogate_is_not_text(tmp_path):
    line = json.dumps(CLIP).replace('"c1"', '"c\\ud800"', 1)
    path = write_lines(tmp_path / "clips.jsonl", line)
    assert error_of(read_clips, path).startswith(f"{path}:1: field 'id' ")


def test_a_missing_field_is_named(tmp_path):
    path = write_lines(tmp_path / "clips.jsonl", CLIP, {k: v for k, v in CLIP.items() if k not in ("tags", "split")})
    message = error_of(read_clips, path)
    assert message.startswith(f"{path}:2: ") and "missing" in message and "'tags'" in message and "'split'" in message
    assert message.endswith("; fix or rebuild the manifest"), message


def test_an_unknown_field_is_named(tmp_path):
    path = write_lines(tmp_path / "clips.jsonl", with_field(CLIP, "colour", "red"))
    message = error_of(read_clips, path)
    assert message.startswith(f"{path}:1: unknown field(s) colour for ClipRecord"), message
    assert message.endswith("fix or rebuild the manifest")


def test_a_mixture_manifest_is_not_a_clip_manifest(tmp_path):
    message = error_of(read_clips, write_lines(tmp_path / "mix.jsonl", MIXTURE))
    assert "unknown field(s)" in message and "instructions" in message


def test_dict_readers_use_where_and_fix():
    with pytest.raises(SepkitError, match=r"^shard-0\.tar#k: field 'seconds' .*; rewrite it$"):
        clip_from_dict(with_field(CLIP, "seconds", "x"), where="shard-0.tar#k", fix="rewrite it")
    with pytest.raises(SepkitError, match=r"^mixture: .*JSON object, got an array"):
        mixture_from_dict([1, 2])


def test_iter_jsonl_yields_objects_only(tmp_path):
    path = write_lines(tmp_path / "x.jsonl", {"a": 1}, "[1]")
    with pytest.raises(SepkitError, match=r":2: .*must be a JSON object"):
        list(iter_jsonl(path))


def write_shard(folder: Path, record: bytes) -> Path:
    """A one-clip shard whose JSON member is ``record`` (the audio member's bytes do not matter here)."""
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / "shard-000000.tar", "w") as tar:
        for name, data in (("000000-c1.json", record), ("000000-c1.wav", b"RIFF")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return folder


@pytest.mark.parametrize(
    "record, problem",
    [(b"[1, 2]", "JSON object, got an array"), (json.dumps(with_field(CLIP, "tags", 5)).encode(), "field 'tags'"),
     (b'{"id": "\xff"}', "not readable")],
)  # fmt: skip
def test_shard_records_are_checked_too(tmp_path, record, problem):
    from sepkit.data.shard_index import ShardIndex

    folder = write_shard(tmp_path / "shards", record)
    with pytest.raises(SepkitError, match="rewrite") as info:
        ShardIndex(folder)
    assert problem in str(info.value) and "\n" not in str(info.value)


# --- fields of a mixture -----------------------------------------------------------------------
def sources_with(index: int, name: str, value) -> list:
    sources = [dict(s) for s in MIXTURE["sources"]]
    sources[index][name] = value
    return sources


def instructions_with(index: int, name: str, value) -> list:
    instructions = [dict(i) for i in MIXTURE["instructions"]]
    instructions[index][name] = value
    return instructions


MIXTURE_CASES = {
    "sources-string": ("sources", "a", "sources", "must be a list, got 'a'"),
    "sources-empty": ("sources", [], "sources", "at least one"),
    "source-not-object": ("sources", [SOURCE, 5], "sources[1]", "must be an object, got 5"),
    "source-gain-string": ("sources", sources_with(1, "gain", "x"), "sources[1].gain", "must be a number, got 'x'"),
    "source-offset-negative": ("sources", sources_with(0, "offset", -0.5), "sources[0].offset", "negative"),
    "source-start-bool": ("sources", sources_with(0, "start", True), "sources[0].start", "must be a number"),
    "source-tags-string": ("sources", sources_with(0, "tags", "rain"), "sources[0].tags", "must be a list"),
    "source-missing": ("sources", [SOURCE, {"clip_id": "c2", "path": "p"}], "sources[1]", "'gain'"),
    "source-unknown": ("sources", sources_with(0, "level", 1), "sources[0]", "unknown field(s) level"),
    "instructions-object": ("instructions", {"task": "extract"}, "instructions", "must be a list"),
    "instruction-null": ("instructions", [None], "instructions[0]", "must be an object, got null"),
    "target-string": ("instructions", instructions_with(0, "target", "0"), "instructions[0].target", "a list"),
    "target-item-string": ("instructions", instructions_with(1, "target", ["1"]), "instructions[1].target[0]",
                           "must be an integer, got '1'"),
    "target-item-bool": ("instructions", instructions_with(1, "target", [True]), "instructions[1].target[0]",
                         "must be an integer, got true"),
    "target-out-of-range": ("instructions", instructions_with(0, "target", [0, 2]), "instructions[0].target[1]",
                            "2 sources"),
    "target-negative": ("instructions", instructions_with(0, "target", [-1]), "instructions[0].target[0]",
                        "2 sources"),
    "task-int": ("instructions", instructions_with(0, "task", 1), "instructions[0].task", "must be a string"),
    "snr-string": ("snr_db", "x", "snr_db", "must be a number, got 'x'"),
    "scale-negative": ("scale", -1.0, "scale", "negative"),
    "seed-float": ("seed", 1.5, "seed", "must be an integer, got 1.5"),
    "seed-negative": ("seed", -3, "seed", "negative"),
    "sample_rate-string": ("sample_rate", "16k", "sample_rate", "must be an integer, got '16k'"),
    "seconds-zero": ("seconds", 0, "seconds", "must be positive"),
}  # fmt: skip


@pytest.mark.parametrize("field, value, name, problem", MIXTURE_CASES.values(), ids=MIXTURE_CASES.keys())
def test_a_mixture_field_of_the_wrong_type(tmp_path, field, value, name, problem):
    path = write_lines(tmp_path / "mix.jsonl", MIXTURE, with_field(MIXTURE, field, value))
    message = error_of(read_mixtures, path)
    assert message.startswith(f"{path}:2: "), message
    assert f"field '{name}'" in message or f"field(s) in '{name}'" in message or f"in '{name}'" in message, message
    assert problem in message and message.endswith("fix or rebuild the manifest"), message


@pytest.mark.parametrize("value", ["NaN", "Infinity"])
def test_non_finite_mixture_numbers(tmp_path, value):
    line = (
        json.dumps(MIXTURE).replace('"gain": 0.5', f'"gain": {value}', 1).replace('"snr_db": 3.0', f'"snr_db": {value}')
    )
    message = error_of(read_mixtures, write_lines(tmp_path / "mix.jsonl", line))
    assert "field 'sources[0].gain' must be a finite number" in message, message


# --- through the command line -------------------------------------------------------------------
BAD_LINES = {"json-array": "[1, 2, 3]", "invalid-utf8": b'{"id": "\xff"}', "wrong-type": with_field(CLIP, "tags", 5)}


def assert_one_line_exit_2(proc, *needles: str) -> None:
    """Exit 2, one line on stderr starting with 'sepkit: error:' and holding every needle."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sepkit: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.mark.parametrize("bad", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_cli_data_mix_exits_2_and_writes_nothing(tmp_path, sepkit_cli, bad):
    manifest = write_lines(tmp_path / "bad.jsonl", CLIP, CLIP, bad)
    out = tmp_path / "out"
    out.mkdir()
    proc = sepkit_cli("data", "mix", "--manifest", manifest, "--protocol", "hsm_tss", "--pairs", 3, "--out", out)
    assert_one_line_exit_2(proc, f"{manifest}:3: ", "fix or rebuild the manifest")
    assert list(out.iterdir()) == []


def test_cli_data_shard_exits_2(tmp_path, sepkit_cli, write_wav):
    write_wav(tmp_path / CLIP["path"])  # the audio is there: only the record is wrong
    manifest = write_lines(tmp_path / "bad.jsonl", with_field(CLIP, "sample_rate", "x"))
    proc = sepkit_cli("data", "shard", "--manifest", manifest, "--out", tmp_path / "shards")
    assert_one_line_exit_2(proc, f"{manifest}:1: field 'sample_rate' must be an integer, got 'x'")
    assert not (tmp_path / "shards").exists()


def test_cli_evaluate_exits_2(tmp_path, sepkit_cli, tiny_recipe):
    manifest = write_lines(tmp_path / "bad.jsonl", CLIP, b'{"id": "\xfe\xff"}')
    proc = sepkit_cli("evaluate", tiny_recipe, "--manifest", manifest, "--no-progress", "--device", "cpu")
    assert_one_line_exit_2(proc, f"{manifest}:2: ", "UTF-8")


def test_cli_benchmark_testset_exits_2(tmp_path, sepkit_cli, tiny_recipe):
    testset = write_lines(tmp_path / "mix.jsonl", MIXTURE, with_field(MIXTURE, "sources", [SOURCE, "a"]))
    out = tmp_path / "bench"
    proc = sepkit_cli("benchmark", tiny_recipe, "--testset", testset, "--out", out, "--no-progress", "--device", "cpu")
    assert_one_line_exit_2(proc, f"{testset}:2: field 'sources[1]' must be an object, got 'a'")
