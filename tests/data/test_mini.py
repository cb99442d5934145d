"""sepkit-mini: a tiny corpus (3 clips per class, 1 s) is built once per module and checked; plus unit tests
of the instrument, speech and environmental generators."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sepkit.data.manifest import read_clips
from sepkit.data.mini import build, captions, environment, instruments, speech
from sepkit.errors import SepkitError

SECONDS = 1.0
CLIPS = 3


def _hashes(root: Path) -> dict[str, str]:
    files = sorted(root.glob("audio/*/*.wav")) + [root / f"{s}.jsonl" for s in build.SPLITS]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(folder, summary, hashes) of a corpus built with the worker pool."""
    out = tmp_path_factory.mktemp("mini") / "corpus"
    summary = build.build_mini(out, seed=0, clips_per_class=CLIPS, seconds=SECONDS, progress=False)
    return out, summary, _hashes(out)


@pytest.fixture(scope="module")
def records(tiny):
    out = tiny[0]
    return {split: read_clips(out / f"{split}.jsonl") for split in build.SPLITS}


def test_summary_and_tags(tiny, records):
    out, summary, _ = tiny
    json.dumps(summary)  # JSON-serialisable
    assert summary["clips"] == {"train": 37, "val": 37, "test": 37}
    tags = {tag for recs in records.values() for r in recs for tag in r.tags}
    assert len(tags) >= 27 and summary["tags"] == len(tags)
    assert all(records[split] for split in build.SPLITS)
    assert (out / "LICENSES.md").read_text().count("GPL") >= 2


def test_every_clip_is_16k_mono_right_length_and_not_silent(tiny, records):
    out = tiny[0]
    for split, recs in records.items():
        for r in recs:
            assert r.split == split and r.sample_rate == 16000 and r.seconds == SECONDS
            assert not Path(r.path).is_absolute()
            data, sr = soundfile.read(str(out / r.path), dtype="float32", always_2d=True)
            assert sr == 16000 and data.shape == (16000, 1), r.id
            rms_db = 20 * np.log10(np.sqrt(np.mean(data.astype(np.float64) ** 2)) + 1e-12)
            peak_db = 20 * np.log10(np.abs(data).max())
            assert rms_db > build.RMS_FLOOR_DBFS, r.id
            assert -6.1 <= peak_db <= -0.9, r.id
            assert abs(peak_db - r.provenance["peak_dbfs"]) < 0.05


def test_captions_and_tags_per_class(records):
    for recs in records.values():
        for r in recs:
            name = r.tags[0]
            assert len(r.tags) == 1 and name in captions.CAPTIONS
            assert r.captions == captions.CAPTIONS[name] and len(r.captions) >= 3
            assert r.id.startswith(captions.class_slug(name) + "-" + r.split + "-")
    for name, caps in captions.CAPTIONS.items():
        assert len(caps) >= 3 and len(set(caps)) == len(caps), name


def test_splits_are_disjoint_in_seeds_sentences_and_voices(records):
    seen: dict[str, dict[str, set]] = {}
    for split, recs in records.items():
        keys = seen.setdefault(split, {"melody": set(), "sentence": set(), "variant": set(), "seed": set()})
        for r in recs:
            p = r.provenance
            if p["family"] == "instrument":
                keys["melody"].add(p["melody_seed"])
            elif p["family"] == "speech":
                keys["sentence"].update(p["sentences"])
                keys["variant"].add((r.tags[0], p["variant"]))
            else:
                keys["seed"].add(p["seed"])
    for kind in ("melody", "sentence", "variant", "seed"):
        for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
            assert not seen[a][kind] & seen[b][kind], (kind, a, b)
    for name in speech.VARIANTS:  # the pools themselves are disjoint and cover the lists
        pools = [speech.split_pool(name, s) for s in build.SPLITS]
        assert sum(len(p[0]) for p in pools) == len(set().union(*[set(p[0]) for p in pools])) == len(speech.SENTENCES)
        assert sum(len(p[1]) for p in pools) == len(set().union(*[set(p[1]) for p in pools]))


def test_same_seed_gives_identical_bytes(tiny, tmp_path):
    # Rendered again in this process (no pool): a different order and different process state.
    build.build_mini(tmp_path / "again", seed=0, clips_per_class=CLIPS, seconds=SECONDS, workers=0, progress=False)
    assert _hashes(tmp_path / "again") == tiny[2]


def test_different_seed_gives_different_audio(tiny):
    jobs0 = {j["id"]: j for j in build.plan_corpus(0, CLIPS, SECONDS)}
    jobs1 = {j["id"]: j for j in build.plan_corpus(1, CLIPS, SECONDS)}
    # One clip per family, rendered in this process; the seed-0 clip is the one in the tiny corpus.
    for clip_id in ("violin-train-0000", "man-speaking-train-0000", "rain-train-0000"):
        other = build.render_clip(jobs1[clip_id])
        mine, _ = soundfile.read(str(tiny[0] / jobs0[clip_id]["path"]), dtype="float32")
        assert jobs0[clip_id]["provenance"] != jobs1[clip_id]["provenance"]
        assert other.shape == mine.shape and not np.allclose(other, mine, atol=1e-3), clip_id


def test_rebuild_repairs_missing_and_damaged_clips_only(tiny, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny[0], out)
    wavs = sorted(out.glob("audio/*/*.wav"))
    missing, damaged = wavs[3], wavs[40]
    missing.unlink()
    damaged.write_bytes(damaged.read_bytes()[:2000])
    old = 1_000_000_000
    for p in wavs:
        if p.exists():
            os.utime(p, (old, old))
    summary = build.build_mini(out, seed=0, clips_per_class=CLIPS, seconds=SECONDS, progress=False)
    assert summary["rendered"] == 2 and summary["reused"] == len(wavs) - 2
    assert _hashes(out) == tiny[2]
    for p in wavs:
        touched = p.stat().st_mtime != old
        assert touched == (p in (missing, damaged)), p.name


def test_fewer_clips_and_errors(tmp_path):
    assert build.split_counts(2) == {"train": 1, "val": 0, "test": 1}
    assert build.split_counts(3) == {"train": 1, "val": 1, "test": 1}
    assert build.split_counts(100) == {"train": 80, "val": 10, "test": 10}
    with pytest.raises(SepkitError, match="at least 2"):
        build.build_mini(tmp_path / "x", clips_per_class=1, progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SepkitError, match="is a file"):
        build.build_mini(blocker, clips_per_class=2, progress=False)
    with pytest.raises(SepkitError, match="seed"):
        build.build_mini(tmp_path / "y", seed=-1, clips_per_class=2, progress=False)


# ----------------------------------------------------------------------------- generators


@pytest.mark.parametrize("name", sorted(environment.GENERATORS))
def test_environment_generator(name):
    gen = environment.GENERATORS[name]
    a = gen(np.random.default_rng(1), 1.5, 16000)
    b = gen(np.random.default_rng(2), 1.5, 16000)
    again = gen(np.random.default_rng(1), 1.5, 16000)
    for w in (a, b):
        assert w.dtype == np.float32 and w.shape == (24000,) and np.isfinite(w).all()
        assert np.sqrt(np.mean(w.astype(np.float64) ** 2)) > 10 ** (build.RMS_FLOOR_DBFS / 20)
    assert np.array_equal(a, again)
    assert not np.allclose(a, b)
    assert gen.__doc__ and len(gen.__doc__) > 80


@pytest.mark.parametrize("name", sorted(instruments.INSTRUMENTS))
def test_instrument_programs_render_sound(name):
    inst = instruments.INSTRUMENTS[name]
    rng = np.random.default_rng(3)
    for program, low, high in inst.voices:
        params = instruments.plan(name, rng)
        params.update(program=program, register=[low, high])
        wave = instruments.render(name, params, 1.0, 16000)
        assert wave.dtype == np.float32 and wave.shape == (16000,) and np.isfinite(wave).all()
        assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) > 1e-3, (name, program)
        notes = instruments.compose(name, params, 1.0)
        assert notes and all(low - 12 <= n.key <= high + 12 for n in notes if not inst.drums)


@pytest.mark.parametrize("name", sorted(speech.VARIANTS))
def test_speech_is_not_silent(name):
    params = speech.plan(name, np.random.default_rng(0), "test", 1.5)
    wave = speech.render(name, params, 1.5, 16000)
    assert wave.dtype == np.float32 and wave.shape == (24000,) and np.isfinite(wave).all()
    assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) > 1e-3
    assert len(speech.SENTENCES) >= 60 and len(set(speech.SENTENCES)) == len(speech.SENTENCES)
