"""sepkit-mini with extra General MIDI soundfonts (``sepkit data mini --soundfont``) and the mini-unseen test set.

No Debian soundfont is needed: ``other_gm`` is TimGM6mb.sf2 with another name and one byte of its INFO
name changed (so another sha256, the same presets and samples, hence the same audio). Tests that need a
real second soundfont look for one (``SEPKIT_TEST_SOUNDFONT`` or Debian's install paths) and skip otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sepkit.data.manifest import read_clips, read_mixtures
from sepkit.data.mini import build, instruments
from sepkit.data.testsets import OPL3_FM, TESTSETS, build_testset, check_soundfont, format_table
from sepkit.errors import SepkitError

# The corpus without --soundfont, as it was before extra soundfonts existed (computed on the code before
# the change): plan_corpus(7, 3, 0.5) as sorted JSON, and render_clip of three of its instrument clips.
PLAN_SHA256 = "c8e8c24e268bc087c1dea0867fa9cf902c9aadcccc3dd7895bce9bab7670a5ea"
RENDER_SHA256 = {
    "violin-train-0000": "d719ee411a99da96d6a7db841d78ed12398c6b27ed3210d5e89a23c9b46e6bfd",
    "piano-test-0000": "8b3fe21b0ada044a0d322c3bd72999a956fade3d0a8e37a78211c6aed7bd62c7",
    "drum-kit-val-0000": "fa2b57d78b5e794ddb66da6b7bab4efd7d3ac7414bedfb086c223a436a828bd6",
}
LICENCES_SHA256 = "157b3112a4248cfc1c281d05655e2051c8894ceee0b0ff23f56cffd053db3bf1"
REAL_SOUNDFONTS = (
    os.environ.get("SEPKIT_TEST_SOUNDFONT", ""),
    "/usr/share/sounds/sf2/sf_GMbank.sf2",
    "/tmp/sf/usr/share/sounds/sf2/sf_GMbank.sf2",
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def other_gm(tmp_path_factory) -> Path:
    """TimGM6mb.sf2's bytes with its INFO name 'TimGM6mb' -> 'TimGM6mc', saved as OtherGM.sf2."""
    data = instruments.soundfont_path().read_bytes()
    at = data.index(b"TimGM6mb", data.index(b"INAM"))
    path = tmp_path_factory.mktemp("sf") / "OtherGM.sf2"
    path.write_bytes(data[:at] + b"TimGM6mc" + data[at + 8 :])
    return path


# --- the corpus without --soundfont is what it was ------------------------------------------------
def test_the_default_corpus_is_byte_identical_to_before():
    jobs = build.plan_corpus(7, 3, 0.5)
    assert _sha(json.dumps(jobs, sort_keys=True).encode()) == PLAN_SHA256
    by_id = {job["id"]: job for job in jobs}
    for clip_id, digest in RENDER_SHA256.items():
        assert _sha(build.render_clip(by_id[clip_id]).tobytes()) == digest, clip_id
    assert _sha(build._licences_text().encode()) == LICENCES_SHA256
    assert all("soundfont_sha256" not in job["provenance"] and "soundfont_path" not in job for job in jobs)


# --- checking a --soundfont -------------------------------------------------------------------------
def test_open_soundfont_describes_the_file(other_gm):
    font = instruments.open_soundfont(other_gm)
    assert font.name == "OtherGM.sf2" and font.sha256 == _sha(other_gm.read_bytes())
    assert font.sha256 != instruments.default_soundfont().sha256
    assert font.info["INAM"] == "TimGM6mc" and instruments.default_soundfont().info["INAM"] == "TimGM6mb"
    assert instruments.general_midi_fallbacks(font) == {}  # TimGM6mb has every preset sepkit-mini plays


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda d, sf: d / "missing.sf2", ["no such file"]),
        (lambda d, sf: _write(d / "notes.sf2", b"RIFF\0\0\0\0WAVEfmt "), ["not an SF2 soundfont"]),
        (lambda d, sf: _write(d / "FluidR3_GM.sf2", sf.read_bytes()), ["FluidR3-derived", "unseen"]),
        (lambda d, sf: _write(d / "MuseScore_General.sf2", sf.read_bytes()), ["FluidR3-derived"]),
    ],
    ids=["missing", "not-sf2", "fluidr3", "musescore-general"],
)
def test_open_soundfont_refuses_with_the_fix(tmp_path, other_gm, make, words):
    with pytest.raises(SepkitError) as info:
        instruments.open_soundfont(make(tmp_path, other_gm))
    for word in words:
        assert word in str(info.value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_held_out_soundfont_and_repeats_are_refused(other_gm, tmp_path, monkeypatch):
    default = instruments.soundfont_path()
    with pytest.raises(SepkitError, match="same bytes as TimGM6mb.sf2 \\(the default"):
        build.open_soundfonts([_write(tmp_path / "Again.sf2", default.read_bytes())])
    with pytest.raises(SepkitError, match="give each soundfont once"):
        build.open_soundfonts([other_gm, _write(tmp_path / "Twice.sf2", other_gm.read_bytes())])
    digest = _sha(other_gm.read_bytes())
    monkeypatch.setitem(instruments.HELD_OUT_SOUNDFONTS, digest, ("OtherGM.sf2", "some-package", "mini-unseen"))
    with pytest.raises(SepkitError, match="held out for the test set mini-unseen"):
        build.open_soundfonts([other_gm])
    assert instruments.HELD_OUT_SOUNDFONTS[OPL3_FM.sha256][2] == "mini-unseen"  # the set's soundfont is refused


def test_a_missing_preset_falls_back_to_the_instruments_first_voice(other_gm, monkeypatch):
    font = instruments.open_soundfont(other_gm)
    names = dict(instruments._preset_names(str(font.path)))
    lacking = {k: v for k, v in names.items() if k not in {(128, 8), (128, 16), (128, 32), (0, 65)}}
    real = instruments._preset_names
    monkeypatch.setattr(
        instruments, "_preset_names", lambda path=None: lacking if path == str(font.path) else real(path)
    )
    fallbacks = instruments.general_midi_fallbacks(font)
    assert set(fallbacks) == {"drum kit", "saxophone"}
    assert "8, 16, 32 missing" in fallbacks["drum kit"] and "program 0 instead" in fallbacks["drum kit"]
    params = {**instruments.plan("drum kit", np.random.default_rng(0)), "program": 16}
    moved = instruments.with_soundfont("drum kit", params, font)
    assert (moved["program"], moved["program_fallback_from"], moved["preset"]) == (0, 16, names[(128, 0)])
    kept = instruments.with_soundfont("drum kit", {**params, "program": 0}, font)
    assert kept["program"] == 0 and "program_fallback_from" not in kept
    no_violin = {k: v for k, v in lacking.items() if k != (0, 40)}
    monkeypatch.setattr(instruments, "_preset_names", lambda path=None: no_violin)
    with pytest.raises(SepkitError, match="no preset for violin.*not a General MIDI soundfont"):
        instruments.general_midi_fallbacks(font)


# --- planning and rendering with an extra soundfont -------------------------------------------------
def test_each_instrument_clip_draws_its_soundfont_and_keeps_its_plan(other_gm):
    font = instruments.open_soundfont(other_gm)
    default_jobs = build.plan_corpus(7, 10, 0.5)
    jobs = build.plan_corpus(7, 10, 0.5, [font])
    assert [j["id"] for j in jobs] == [j["id"] for j in default_jobs]
    drawn = {"TimGM6mb.sf2": 0, "OtherGM.sf2": 0}
    for job, before in zip(jobs, default_jobs):
        prov = dict(job["provenance"])
        if job["family"] != "instrument":
            assert job == before
            continue
        drawn[prov["soundfont"]] += 1
        sha = prov.pop("soundfont_sha256")
        assert sha == (font.sha256 if prov["soundfont"] == "OtherGM.sf2" else instruments.default_soundfont().sha256)
        assert Path(job["soundfont_path"]).name == prov["soundfont"]
        assert {**prov, "soundfont": "TimGM6mb.sf2"} == before["provenance"]  # same melody, tempo, level, preset
    assert min(drawn.values()) > 0.35 * sum(drawn.values())  # 210 clips, each soundfont drawn about half the time
    assert build.plan_corpus(7, 10, 0.5, [font]) == jobs


def test_render_needs_the_soundfont_the_clip_names(other_gm):
    font = instruments.open_soundfont(other_gm)
    params = instruments.with_soundfont("violin", instruments.plan("violin", np.random.default_rng(3)), font)
    with pytest.raises(SepkitError, match="planned for soundfont OtherGM.sf2"):
        instruments.render("violin", params, 0.5)
    wave = instruments.render("violin", params, 0.5, 16000, str(font.path))
    same = instruments.render("violin", {**params, "soundfont": "TimGM6mb.sf2"}, 0.5, 16000)
    assert np.array_equal(wave, same)  # the same samples under another name: the same audio


def test_build_records_soundfonts_by_name_and_sha_never_by_path(other_gm, tmp_path):
    out = tmp_path / "corpus"
    summary = build.build_mini(out, seed=7, clips_per_class=2, seconds=0.5, workers=0, progress=False,
                               soundfonts=[other_gm])  # fmt: skip
    clips = [c for split in ("train", "test") for c in read_clips(out / f"{split}.jsonl")]  # n = 2: no val
    instrument = [c for c in clips if c.provenance["family"] == "instrument"]
    assert {c.provenance["soundfont"] for c in instrument} == {"TimGM6mb.sf2", "OtherGM.sf2"}
    assert all(len(c.provenance["soundfont_sha256"]) == 64 for c in instrument)
    text = "".join((out / f"{split}.jsonl").read_text() for split in build.SPLITS)
    assert str(tmp_path) not in text and str(instruments.soundfont_path().parent) not in text
    counts = {s["name"]: s["instrument_clips"] for s in summary["soundfonts"]}
    assert sum(counts.values()) == len(instrument) and set(counts) == {"TimGM6mb.sf2", "OtherGM.sf2"}
    licences = (out / "LICENSES.md").read_text()
    assert "TimGM6mb.sf2" in licences and "OtherGM.sf2" in licences and _sha(other_gm.read_bytes()) in licences
    assert "not known to sepkit" in licences
    stamp = json.loads((out / build.STAMP).read_text())
    assert stamp["soundfonts"] == [{"name": "OtherGM.sf2", "sha256": _sha(other_gm.read_bytes())}]


def test_cli_soundfont_errors_exit_2(sepkit_cli, tmp_path):
    proc = sepkit_cli("data", "mini", "--out", tmp_path / "c", "--soundfont", tmp_path / "none.sf2")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("sepkit: error: --soundfont") and "no such file" in proc.stderr


def _real_soundfont() -> Path:
    for candidate in REAL_SOUNDFONTS:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no real extra soundfont here (set SEPKIT_TEST_SOUNDFONT or see docs/testsets.md: csound-soundfont)")


@pytest.mark.slow
def test_a_real_extra_soundfont_renders_every_instrument():
    font = instruments.open_soundfont(_real_soundfont())
    fallbacks = instruments.general_midi_fallbacks(font)
    for name in instruments.INSTRUMENTS:
        params = instruments.with_soundfont(name, instruments.plan(name, np.random.default_rng(1)), font)
        assert params["program"] in [p for p, _, _ in instruments.INSTRUMENTS[name].voices]
        assert ("program_fallback_from" in params) <= (name in fallbacks)
        wave = instruments.render(name, params, 1.0, 16000, str(font.path))
        assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) > 1e-4, name


# --- mini-unseen --------------------------------------------------------------------------------------
def test_mini_unseen_is_mini_hsm_tss_with_a_held_out_soundfont():
    unseen, hsm = TESTSETS["mini-unseen"], TESTSETS["mini-hsm_tss"]
    assert unseen.soundfont is OPL3_FM and hsm.soundfont is None
    assert (unseen.protocol, unseen.pairs, unseen.seed, unseen.seconds, unseen.seeding, unseen.sources) == (
        hsm.protocol, hsm.pairs, hsm.seed, hsm.seconds, hsm.seeding, hsm.sources)  # fmt: skip
    assert OPL3_FM.file_name == "OPL-3_FM_128M.sf2" and OPL3_FM.package == "opl3-soundfont"
    assert "data/mini/test.jsonl --soundfont OPL-3_FM_128M.sf2" in format_table()


def test_mini_unseen_without_or_with_a_wrong_soundfont_says_how_to_get_it(other_gm):
    spec = TESTSETS["mini-unseen"]
    with pytest.raises(SepkitError) as info:
        check_soundfont(spec, None)
    message = str(info.value)
    assert "apt-get download opl3-soundfont" in message and "dpkg-deb -x" in message and "--soundfont" in message
    with pytest.raises(SepkitError, match="is not the soundfont test set mini-unseen is defined with"):
        check_soundfont(spec, other_gm)
    with pytest.raises(SepkitError, match="takes no --soundfont.*mini-unseen"):
        check_soundfont(TESTSETS["mini-dcase"], other_gm)


def test_cli_mini_unseen_without_soundfont_exits_2_and_writes_nothing(sepkit_cli, tmp_path):
    proc = sepkit_cli("data", "testset", "mini-unseen", "--out", tmp_path / "mixes", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get download opl3-soundfont" in lines[0]
    assert not (tmp_path / "mixes").exists()


@pytest.fixture(scope="module")
def tiny_mini(tmp_path_factory) -> Path:
    """A default sepkit-mini of 2 clips per class (1 test clip each), 1 s."""
    out = tmp_path_factory.mktemp("mini") / "mini"
    build.build_mini(out, seed=5, clips_per_class=2, seconds=1.0, workers=0, progress=False)
    return out


def test_mini_unseen_rerenders_the_instrument_clips_and_keeps_the_draws(tiny_mini, other_gm, tmp_path):
    held = replace(OPL3_FM, file_name="OtherGM.sf2", sha256=_sha(other_gm.read_bytes()))
    unseen = replace(TESTSETS["mini-unseen"], pairs=8, soundfont=held)
    corpus = {"mini_test": str(tiny_mini / "test.jsonl")}
    summary = build_testset(unseen, tmp_path / "mixes", corpus, progress=False, soundfont=other_gm)
    reference = build_testset(replace(TESTSETS["mini-hsm_tss"], pairs=8), tmp_path / "ref", corpus, progress=False)
    records, refs = read_mixtures(summary["path"]), read_mixtures(reference["path"])
    assert summary["rerendered"] == 21 and summary["soundfont"]["name"] == "OtherGM.sf2"
    for record, ref in zip(records, refs):  # the same mixtures: clips, levels, instructions
        assert [s.clip_id for s in record.sources] == [s.clip_id for s in ref.sources]
        assert record.snr_db == ref.snr_db and record.instructions == ref.instructions
    clips_folder = tmp_path / "mixes" / "mini-unseen-clips"
    rendered = {c.id: c for c in read_clips(clips_folder / "test.jsonl")}
    assert len(rendered) == 21 and all(c.provenance["soundfont"] == "OtherGM.sf2" for c in rendered.values())
    assert "OtherGM.sf2" in (clips_folder / "LICENSES.md").read_text()
    moved = [s for r in records for s in r.sources if s.clip_id in rendered]
    assert moved and all(s.path.startswith("mini-unseen-clips/audio/") for s in moved)
    for clip_id, clip in rendered.items():  # same samples under another name: the plan re-renders exactly
        new, _ = soundfile.read(str(clips_folder / clip.path), dtype="int16")
        old, _ = soundfile.read(str(tiny_mini / clip.path), dtype="int16")
        assert np.array_equal(new, old), clip_id


@pytest.mark.slow
def test_the_real_held_out_soundfont_is_refused_for_training():
    candidates = [Path(p) / OPL3_FM.inside for p in ("/", "/tmp/sf")] + [
        Path(os.environ.get("SEPKIT_TEST_HELD_OUT", "-"))
    ]
    found = [p for p in candidates if p.is_file()]
    if not found:
        pytest.skip(f"{OPL3_FM.file_name} is not here (docs/testsets.md: {OPL3_FM.package})")
    with pytest.raises(SepkitError, match="held out for the test set mini-unseen"):
        instruments.open_soundfont(found[0])
    assert check_soundfont(TESTSETS["mini-unseen"], found[0]) == found[0].resolve()
