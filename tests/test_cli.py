"""The ``sepkit`` command line, run as a subprocess with the tiny recipe.

Calls that build a model take a few seconds each (transformers import, MiniLM
load); bad-input cases that fail before the model loads are quick.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import sepkit

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny/stft_mask"
QUERY = "extract the violin"


# --- helpers -----------------------------------------------------------------------


def soundinfo(path):
    import soundfile

    return soundfile.info(str(path))


def error_lines(stderr: str) -> list[str]:
    """stderr lines other than sepkit's notes (e.g. the 'untrained weights' note)."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("sepkit: note:")]


def assert_clean_error(proc: subprocess.CompletedProcess, *keywords: str) -> None:
    """Exit 2, one 'sepkit: error:' line naming ``keywords``, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("sepkit: error:"), proc.stderr
    for word in keywords:
        assert word in lines[0], (word, lines[0])


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")) if folder.exists() else []


def copy_tiny_recipe(folder: Path, mutate=None) -> Path:
    """Copy the tiny recipe (and the base it extends, keeping the layout) into ``folder``;
    ``mutate(dict)`` edits the tiny recipe's mapping. Returns the copy's path."""
    import yaml

    shutil.copy(REPO / "recipes" / "stft_mask.yaml", folder / "stft_mask.yaml")
    (folder / "tiny").mkdir(exist_ok=True)
    data = yaml.safe_load((REPO / "recipes" / "tiny" / "stft_mask.yaml").read_text())
    assert data["extends"] == "../stft_mask.yaml"
    if mutate is not None:
        mutate(data)
    target = folder / "tiny" / "stft_mask.yaml"
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, write_wav):
    import numpy as np
    import soundfile

    d = tmp_path_factory.mktemp("inputs")
    ns = SimpleNamespace(dir=d)
    ns.mono = write_wav(d / "mono.wav", 1.0, 16000, 1)
    ns.stereo = write_wav(d / "stereo.wav", 0.75, 44100, 2, subtype="PCM_16", seed=1)
    ns.flac = write_wav(d / "clip.flac", 0.6, 22050, 1, subtype="PCM_16", seed=2)
    ns.empty = d / "empty.wav"
    ns.empty.write_bytes(b"")
    ns.nan = d / "nan.wav"
    soundfile.write(str(ns.nan), np.full(1600, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    ns.inf = d / "inf.wav"
    wave = 0.1 * np.random.default_rng(3).standard_normal(1600).astype(np.float32)
    wave[800] = np.inf
    soundfile.write(str(ns.inf), wave, 16000, subtype="FLOAT")
    ns.text = d / "notes.wav"
    ns.text.write_text("this is not audio\n")
    ns.missing = d / "missing.wav"
    ns.random_ckpt = d / "random.ckpt"
    ns.random_ckpt.write_bytes(np.random.default_rng(4).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return ns


BUILD_MISMATCHED_CHECKPOINT = """
import sys, torch
from sepkit.recipe import load_recipe
from sepkit.pipeline import SeparationPipeline
good, bad = sys.argv[1], sys.argv[2]
pipeline = SeparationPipeline.from_recipe(load_recipe(sys.argv[3]))
pipeline.save(good)
payload = torch.load(good, map_location="cpu", weights_only=True)
state = payload["state_dict"]
dropped = sorted(state)[0]
del state[dropped]
state["separator.bogus_extra.weight"] = torch.zeros(3)
torch.save(payload, bad)
print(dropped)
"""


@pytest.fixture(scope="module")
def mismatched_checkpoint(tmp_path_factory, tiny_recipe):
    """(path, dropped key, added key): a tiny-recipe checkpoint with one key removed and one bogus key added."""
    d = tmp_path_factory.mktemp("ckpt")
    good, bad = d / "good.ckpt", d / "bad.ckpt"
    proc = subprocess.run(
        [sys.executable, "-c", BUILD_MISMATCHED_CHECKPOINT, str(good), str(bad), str(tiny_recipe)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return bad, proc.stdout.strip().splitlines()[-1], "separator.bogus_extra.weight"


# --- top-level parser ----------------------------------------------------------------


def test_help_lists_commands(sepkit_cli):
    proc = sepkit_cli("--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("separate", "plugins", "recipe", "check-plugin"):
        assert command in proc.stdout


def test_no_command_exits_2(sepkit_cli):
    proc = sepkit_cli()
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "separate" in proc.stdout + proc.stderr  # shows the usage


def test_version(sepkit_cli):
    proc = sepkit_cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"sepkit {sepkit.__version__}"


# --- sepkit plugins ---------------------------------------------------------------


EXPECTED_COMPONENTS = {
    ("text_encoder", "minilm"): "sepkit",
    ("audio_encoder", "stft"): "sepkit",
    ("separator", "mask-net"): "sepkit",
    ("decoder", "istft"): "sepkit",
    ("codec", "mulaw"): "sepkit",
    ("instruction_parser", "rules"): "sepkit",
    ("text_encoder", "hashed-ngrams"): "sepkit-example-plugin",
}


def test_plugins_json(sepkit_cli):
    proc = sepkit_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert isinstance(entries, list) and entries
    for entry in entries:
        assert set(entry) == {"kind", "name", "target", "provider", "version", "summary"}, entry
        assert ":" in entry["target"]
    providers = {(e["kind"], e["name"]): e["provider"] for e in entries}
    for key, provider in EXPECTED_COMPONENTS.items():
        assert providers.get(key) == provider, (key, providers)
    assert "PluginWarning" not in proc.stderr


def test_plugins_kind_filter(sepkit_cli):
    proc = sepkit_cli("plugins", "--kind", "separator", "--json")
    assert proc.returncode == 0, proc.stderr
    entries = json.loads(proc.stdout)
    assert entries and {e["kind"] for e in entries} == {"separator"}
    assert "mask-net" in {e["name"] for e in entries}


def test_plugins_table(sepkit_cli):
    proc = sepkit_cli("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "mask-net" in proc.stdout and "sepkit-example-plugin" in proc.stdout


def test_plugins_unknown_kind(sepkit_cli):
    proc = sepkit_cli("plugins", "--kind", "bogus-kind")
    assert_clean_error(proc, "bogus-kind", "text_encoder", "separator", "decoder", "instruction_parser")


CHECK_NO_TORCH = """
import sys
sys.argv = ["sepkit", *sys.argv[1:]]
from sepkit.cli import main
try:
    code = main()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("torch", "torchaudio", "transformers") if m in sys.modules)
print("RESULT", code, ",".join(heavy) or "-", file=sys.stderr)
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"], ["plugins", "--kind", "codec"]])
def test_light_commands_do_not_import_torch(argv):
    proc = subprocess.run(
        [sys.executable, "-c", CHECK_NO_TORCH, *argv], capture_output=True, text=True, timeout=120
    )
    result = [line for line in proc.stderr.splitlines() if line.startswith("RESULT")]
    assert result, proc.stderr
    _, code, heavy = result[-1].split()
    assert code in ("0", "None"), proc.stderr
    assert heavy == "-", f"'sepkit {' '.join(argv)}' imported {heavy}"


# --- sepkit separate: happy paths ---------------------------------------------------------


@pytest.fixture(scope="module")
def mono_run(sepkit_cli, inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("mono") / "out.wav"
    proc = sepkit_cli("separate", inputs.mono, "--query", QUERY, "--recipe", TINY, "-o", out, umask=0o022)
    return proc, out


def test_separate_mono(mono_run, inputs):
    proc, out = mono_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(out)]
    got, want = soundinfo(out), soundinfo(inputs.mono)
    assert (got.samplerate, got.channels, got.frames) == (16000, 1, want.frames)
    assert [p.name for p in out.parent.iterdir()] == ["out.wav"]  # no temp file left beside it


def test_separate_output_respects_umask(mono_run):
    proc, out = mono_run
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o644


def test_separate_stereo_44k_pcm16(sepkit_cli, inputs, tmp_path):
    out = tmp_path / "stereo_out.wav"
    proc = sepkit_cli("separate", inputs.stereo, "-q", QUERY, "--recipe", TINY, "-o", out)
    assert proc.returncode == 0, proc.stderr
    got, want = soundinfo(out), soundinfo(inputs.stereo)
    assert (got.samplerate, got.channels, got.frames) == (44100, 2, want.frames)
    assert got.subtype == "PCM_16"


def test_separate_several_queries(sepkit_cli, inputs, tmp_path):
    out = tmp_path / "many"
    proc = sepkit_cli(
        "separate", inputs.mono, "-q", "extract the violin", "-q", "remove the drums", "--recipe", TINY, "-o", out
    )
    assert proc.returncode == 0, proc.stderr
    expected = [out / "mono.extract-the-violin.wav", out / "mono.remove-the-drums.wav"]
    assert files_under(out) == expected
    assert sorted(proc.stdout.split()) == sorted(map(str, expected))
    want = soundinfo(inputs.mono)
    for path in expected:
        got = soundinfo(path)
        assert (got.samplerate, got.channels, got.frames) == (want.samplerate, want.channels, want.frames)


def test_separate_queries_with_same_slug_do_not_overwrite(sepkit_cli, inputs, tmp_path):
    out = tmp_path / "many"
    proc = sepkit_cli(
        "separate", inputs.mono, "-q", "extract the violin", "-q", "Extract the violin!", "--recipe", TINY, "-o", out
    )
    if proc.returncode == 2:  # refusing is fine too, if it says why
        assert_clean_error(proc, "extract-the-violin")
    else:
        assert proc.returncode == 0, proc.stderr
        assert len(set(proc.stdout.split())) == 2
        assert len(files_under(out)) == 2


def test_separate_folder_with_bad_file_writes_nothing(sepkit_cli, write_wav, tmp_path):
    src = tmp_path / "src"
    write_wav(src / "a.wav", 0.5, 16000, 1)
    (src / "b.wav").write_bytes(b"")
    out = tmp_path / "out"
    proc = sepkit_cli("separate", src, "-q", QUERY, "--recipe", TINY, "--batch-size", "1", "-o", out)
    assert_clean_error(proc, "b.wav", "empty")
    assert files_under(out) == []


def test_separate_folder_mirrors_layout(sepkit_cli, write_wav, tmp_path):
    src = tmp_path / "src"
    a = write_wav(src / "a.wav", 0.5, 16000, 1, seed=5)
    b = write_wav(src / "sub" / "b.wav", 0.4, 22050, 2, seed=6)
    (src / "readme.txt").write_text("not audio, ignored\n")
    out = tmp_path / "out"
    proc = sepkit_cli("separate", src, "-q", QUERY, "--recipe", TINY, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert files_under(out) == [out / "a.wav", out / "sub", out / "sub" / "b.wav"]
    for source, result in ((a, out / "a.wav"), (b, out / "sub" / "b.wav")):
        got, want = soundinfo(result), soundinfo(source)
        assert (got.samplerate, got.channels, got.frames) == (want.samplerate, want.channels, want.frames)


def test_separate_flac(sepkit_cli, inputs, tmp_path):
    out = tmp_path / "clip_out.flac"
    proc = sepkit_cli("separate", inputs.flac, "-q", QUERY, "--recipe", str(REPO / "recipes/tiny/stft_mask.yaml"),
                      "-o", out)
    assert proc.returncode == 0, proc.stderr
    got, want = soundinfo(out), soundinfo(inputs.flac)
    assert got.format == "FLAC"
    assert (got.samplerate, got.channels, got.frames) == (22050, 1, want.frames)


# --- sepkit separate: bad inputs ------------------------------------------------------------


def _recipe_case(mutate):
    def make(ns, tmp_path):
        return copy_tiny_recipe(tmp_path, mutate)

    return make


def _malformed_yaml(ns, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nmodel: [\n  text_encoder: {\n")
    return path


def _set(*keys_and_value):
    *keys, last, value = keys_and_value

    def mutate(data):
        node = data
        for key in keys:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


# id -> (input attribute, queries, recipe (name or factory), extra args, keywords in the error)
BAD_CASES = {
    "empty-file": ("empty", [QUERY], TINY, [], ["empty", "empty.wav"]),
    "all-nan": ("nan", [QUERY], TINY, [], ["NaN", "nan.wav"]),
    "one-inf": ("inf", [QUERY], TINY, [], ["infinite", "inf.wav"]),
    "text-as-wav": ("text", [QUERY], TINY, [], ["not readable audio", "notes.wav"]),
    "missing-file": ("missing", [QUERY], TINY, [], ["does not exist", "missing.wav"]),
    "empty-query": ("mono", [""], TINY, [], ["empty"]),
    "whitespace-query": ("mono", ["   "], TINY, [], ["empty"]),
    "unparseable-query": ("mono", ["!!!"], TINY, [], ["'!!!'", "no sound"]),
    "unknown-recipe": ("mono", [QUERY], "tiny/no-such-recipe", [], ["tiny/no-such-recipe", "not found"]),
    "misspelled-component-key": (
        "mono", [QUERY], _recipe_case(_set("model", "separator", "hiden", 3)), [], ["model.separator.hiden", "hidden"]
    ),
    "unknown-top-level-key": ("mono", [QUERY], _recipe_case(_set("bogus_top", 1)), [], ["bogus_top", "top-level"]),
    "unknown-component": (
        "mono", [QUERY], _recipe_case(_set("model", "separator", "name", "no-such-net")), [],
        ["no-such-net", "installed", "mask-net"],
    ),
    "malformed-yaml": ("mono", [QUERY], _malformed_yaml, [], ["broken.yaml", "not valid YAML"]),
    "unknown-output-suffix": ("mono", [QUERY], TINY, ["-o", "{out}/result.xyz"], [".xyz", "unknown audio format"]),
    "ckpt-missing": ("mono", [QUERY], TINY, ["--ckpt", "{tmp}/nope.ckpt"], ["nope.ckpt", "not found"]),
    "ckpt-random-bytes": ("mono", [QUERY], TINY, ["--ckpt", "{random_ckpt}"], ["random.ckpt", "could not be read"]),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_separate_bad_input(case, sepkit_cli, inputs, tmp_path):
    attr, queries, recipe, extra, keywords = BAD_CASES[case]
    out = tmp_path / "out"
    if callable(recipe):
        recipe = recipe(inputs, tmp_path)
    fill = {"out": out, "tmp": tmp_path, "random_ckpt": inputs.random_ckpt}
    extra = [arg.format(**fill) for arg in extra]
    if "-o" not in extra:
        extra += ["-o", str(out / "result.wav")]
    query_args = [a for q in queries for a in ("--query", q)]
    proc = sepkit_cli("separate", getattr(inputs, attr), *query_args, "--recipe", recipe, *extra)
    assert_clean_error(proc, *keywords)
    assert files_under(out) == [], "a failed run left files behind"
    assert proc.stdout == ""


def test_separate_checkpoint_key_mismatch(sepkit_cli, inputs, mismatched_checkpoint, tmp_path):
    ckpt, dropped, added = mismatched_checkpoint
    out = tmp_path / "out"
    proc = sepkit_cli("separate", inputs.mono, "-q", QUERY, "--recipe", TINY, "--ckpt", ckpt, "-o", out / "r.wav")
    assert_clean_error(proc, "missing", "unexpected", dropped, added)
    assert files_under(out) == []


@pytest.mark.parametrize("where", ["before-command", "after-command"])
def test_debug_shows_traceback(where, sepkit_cli, inputs, tmp_path):
    args = ["separate", inputs.missing, "-q", QUERY, "-o", tmp_path / "x.wav"]
    args = ["--debug", *args] if where == "before-command" else [*args, "--debug"]
    proc = sepkit_cli(*args)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr
    assert "does not exist" in proc.stderr


# --- sepkit recipe show -------------------------------------------------------------


def test_recipe_show_resolved_with_override(sepkit_cli, tiny_recipe):
    import yaml

    proc = sepkit_cli("recipe", "show", tiny_recipe, "model.separator.hidden=7", "--resolved")
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)
    separator = shown["model"]["separator"]
    assert separator["name"] == "mask-net"
    assert separator["hidden"] == 7
    assert "kernel_size" in separator  # a Config default the recipe does not set
    assert shown["model"]["decoder"]["n_fft"] == shown["model"]["audio_encoder"]["n_fft"] == 256
    assert "extends" not in shown


def test_recipe_show_plain(sepkit_cli):
    import yaml

    proc = sepkit_cli("recipe", "show", TINY)
    assert proc.returncode == 0, proc.stderr
    shown = yaml.safe_load(proc.stdout)
    assert shown["model"]["separator"] == {"name": "mask-net", "hidden": 32, "layers": 2}


def test_recipe_show_two_level_extends(sepkit_cli, tmp_path):
    shutil.copy(REPO / "recipes" / "stft_mask.yaml", tmp_path / "c.yaml")
    (tmp_path / "b.yaml").write_text("extends: c.yaml\nname: b\n")
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    proc = sepkit_cli("recipe", "show", tmp_path / "a.yaml")
    assert_clean_error(proc, "one level of extends", "b.yaml")


def test_recipe_show_bad_override(sepkit_cli):
    proc = sepkit_cli("recipe", "show", TINY, "model.separator.hidden=7", "model.separator.hiden=3", "--resolved")
    assert_clean_error(proc, "model.separator.hiden")
