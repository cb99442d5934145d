"""Mixture protocols: levels measured on rendered audio, tag overlap, instructions, clipping, determinism."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sepkit.data.manifest import (
    ClipCache,
    ClipRecord,
    instruction_target,
    instruction_target_text,
    read_mixtures,
    render_mixture,
    write_jsonl,
)
from sepkit.data.mixing import EXTRACT_TEMPLATES, PEAK_LIMIT, PROTOCOLS, draw_mixture, write_mixtures
from sepkit.data.tags import TagNormaliser
from sepkit.errors import SepkitError
from sepkit.instructions import RuleBasedInstructionParser

SR = 8000
PARSER = RuleBasedInstructionParser()
NORMALISER = TagNormaliser()

# name, tags, captions, seconds, amplitude ("silent": all zeros)
CLIPS = [
    ("violin", ["violin"], ["A violin plays a slow melody"], 1.0, 0.3),
    ("cello", ["cello"], [], 1.0, 0.8),
    ("piano", ["piano"], ["Someone plays the piano."], 0.3, 0.5),  # shorter than the mixtures: zero-padded
    ("flute", ["flute"], ["a flute and no drums"], 1.0, 0.2),  # caption does not parse back as one extraction
    ("rain", ["rain"], ["Rain falls on a roof and thunder rumbles"], 1.0, 0.9),
    ("man", ["man speaking"], ["A man speaks loudly"], 1.0, 0.4),
    ("woman", ["woman speaking"], ["A woman talks, then laughs"], 1.0, 0.4),  # overlaps "man" (group speech)
    ("dog", ["dog barking"], ["TV noise while a dog barks"], 1.0, 0.6),
    ("siren", ["siren"], [], 1.0, 0.95),
    ("wind", ["wind"], ["wind howls"], 1.0, "silent"),  # never usable
    ("mystery", [], ["something"], 1.0, 0.5),  # untagged: never drawn
]


def _tone(index: int, seconds: float, amplitude) -> np.ndarray:
    n = int(round(seconds * SR))
    if amplitude == "silent":
        return np.zeros(n, dtype=np.float32)
    t = np.arange(n) / SR
    noise = np.random.default_rng(index).standard_normal(n)
    wave = np.sign(np.sin(2 * np.pi * (150 + 70 * index) * t)) * 0.7 + 0.3 * noise / 3
    return (amplitude * wave / np.abs(wave).max()).astype(np.float32)


def write_corpus(folder: Path, clips=CLIPS, split: str = "train", name: str = "clips.jsonl") -> Path:
    records = []
    for i, (clip_id, tags, captions, seconds, amplitude) in enumerate(clips):
        path = folder / "audio" / f"{clip_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), _tone(i, seconds, amplitude), SR, subtype="FLOAT")
        records.append(ClipRecord(clip_id, f"audio/{clip_id}.wav", seconds, SR, tags, captions, split))
    write_jsonl(folder / name, records)
    return folder / name


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def mixes(corpus, tmp_path_factory):
    """protocol -> (records, out folder): 24 mixtures of each protocol, 0.5 s each."""
    out = tmp_path_factory.mktemp("mixes")
    result = {}
    for protocol in PROTOCOLS:
        summary = write_mixtures(corpus, protocol, pairs=24, seed=7, out=out, seconds=0.5)
        result[protocol] = (read_mixtures(summary["path"]), out)
    return result


def _render(record, out):
    return render_mixture(record, ClipCache(SR, base_dir=out))


def _db(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.square(a, dtype=np.float64)) / np.mean(np.square(b, dtype=np.float64)))


def _parses_back(instruction) -> bool:
    got = PARSER.parse(instruction.text)
    want = PARSER.parse(instruction.description)
    return all(i.task == instruction.task for i in got) and [i.description for i in got] == [
        i.description for i in want
    ]


def _candidates(tags, captions):
    """The descriptions a source may be given: its captions or its tags joined."""
    joined = tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]
    return {joined} | {c.rstrip(".") for c in captions}


CAPTIONS = {c[0]: c[2] for c in CLIPS}


# --- hsm_tss ---------------------------------------------------------------------------------
def test_hsm_tss_snr_measured_on_rendered_audio(mixes):
    records, out = mixes["hsm_tss"]
    assert len(records) == 24
    for record in records:
        _, sources = _render(record, out)
        measured = _db(sources[0], sources[1])
        assert -15 <= record.snr_db <= 15
        assert measured == pytest.approx(record.snr_db, abs=1e-3)


def test_hsm_tss_sources_never_overlap(mixes):
    records, _ = mixes["hsm_tss"]
    for record in records:
        a, b = record.sources
        assert not NORMALISER.categories(a.tags) & NORMALISER.categories(b.tags), (a.tags, b.tags)
        assert {a.clip_id, b.clip_id}.isdisjoint({"wind", "mystery"})  # silent / untagged


def test_hsm_tss_instructions_extract_one_remove_the_other(mixes):
    records, _ = mixes["hsm_tss"]
    for record in records:
        extract, remove = record.instructions
        assert (extract.task, extract.target) == ("extract", [0])
        assert (remove.task, remove.target) == ("remove", [0])
        assert _parses_back(extract) and _parses_back(remove), (extract, remove)
        a, b = record.sources
        assert extract.description in _candidates(a.tags, CAPTIONS[a.clip_id])
        assert remove.description in _candidates(b.tags, CAPTIONS[b.clip_id])
    texts = {i.text.split()[0] for r in records for i in r.instructions}
    assert len(texts) > 3  # varied templates on a train split


def test_hsm_tss_remove_target_is_mixture_minus_described_source(mixes):
    records, out = mixes["hsm_tss"]
    for record in records[:8]:
        mixture, sources = _render(record, out)
        target = instruction_target(record, sources, 1)
        np.testing.assert_allclose(target, mixture - sources[1], atol=1e-6)
        np.testing.assert_allclose(instruction_target(record, sources, 0), target, atol=1e-6)


def test_target_text_of_remove_is_the_paired_extract_description(mixes):
    records, _ = mixes["hsm_tss"]
    for record in records:
        extract, remove = record.instructions
        assert instruction_target_text(record, 0) == extract.description
        assert instruction_target_text(record, 1) == extract.description != remove.description


def test_clipping_is_prevented_and_snr_kept(mixes):
    scaled = 0
    for protocol, (records, out) in mixes.items():
        for record in records:
            mixture, sources = _render(record, out)
            peaks = [np.abs(mixture).max(), np.abs(sources).max()]
            peaks += [np.abs(instruction_target(record, sources, k)).max() for k in range(len(record.instructions))]
            assert max(peaks) <= PEAK_LIMIT + 1e-4, protocol
            if record.scale < 1:
                scaled += 1
                assert max(peaks) == pytest.approx(PEAK_LIMIT, abs=1e-4)
                if protocol != "multilevel":
                    assert _db(sources[0], sources[1:].sum(axis=0)) == pytest.approx(record.snr_db, abs=1e-3)
    assert scaled > 0  # the loud fixture clips do need scaling


def test_short_clips_zero_padded_long_clips_cropped(mixes):
    records, _ = mixes["hsm_tss"]
    seen_piano = seen_long = False
    for record in records:
        for source in record.sources:
            assert source.offset == 0.0
            if source.clip_id == "piano":
                seen_piano = True
                assert source.start == 0.0
            else:
                assert 0.0 <= source.start <= 0.5
                seen_long |= source.start > 0
    assert seen_piano and seen_long


def test_paths_relative_to_the_mixture_manifest(mixes, corpus):
    records, out = mixes["hsm_tss"]
    for source in records[0].sources:
        assert not Path(source.path).is_absolute()
        assert (out / source.path).resolve() == (corpus.parent / "audio" / f"{source.clip_id}.wav").resolve()


# --- determinism -----------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_differs(corpus, tmp_path):
    a = write_mixtures(corpus, "hsm_tss", pairs=6, seed=3, out=tmp_path / "a", seconds=0.5, render=True)
    b = write_mixtures(corpus, "hsm_tss", pairs=6, seed=3, out=tmp_path / "b", seconds=0.5, render=True)
    c = write_mixtures(corpus, "hsm_tss", pairs=6, seed=4, out=tmp_path / "c", seconds=0.5)
    assert Path(a["path"]).read_bytes() == Path(b["path"]).read_bytes()
    assert Path(a["path"]).read_bytes() != Path(c["path"]).read_bytes()
    wavs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.wav"))
    assert len(wavs) == 6 * 3  # mixture + one target per instruction
    for rel in wavs:  # the same samples, rate and format (libsndfile's PEAK chunk holds a write timestamp)
        (x, rate_a), (y, rate_b) = (soundfile.read(tmp_path / run / rel, dtype="float32") for run in ("a", "b"))
        assert rate_a == rate_b and x.tobytes() == y.tobytes()
        assert soundfile.info(tmp_path / "a" / rel).subtype == soundfile.info(tmp_path / "b" / rel).subtype


def test_per_mixture_rng_does_not_depend_on_order(corpus, tmp_path):
    full = read_mixtures(write_mixtures(corpus, "dcase", pairs=5, seed=11, out=tmp_path, seconds=0.5)["path"])
    from sepkit.data.manifest import read_clips

    clips = read_clips(corpus)
    cache = ClipCache(SR, base_dir=corpus.parent)
    alone = draw_mixture(
        "dcase",
        clips,
        np.random.default_rng([11, zlib.crc32(b"train"), 4]),
        cache,
        index=4,
        split="train",
        seconds=0.5,
        path_base=tmp_path,
    )
    assert alone == full[4]


def test_rendered_files_match_render_mixture(corpus, tmp_path):
    summary = write_mixtures(corpus, "music_zeroshot", pairs=2, seed=0, out=tmp_path, seconds=0.5, render=True)
    assert summary["rendered"]
    for record in read_mixtures(summary["path"]):
        mixture, sources = _render(record, tmp_path)
        folder = Path(summary["rendered"]) / record.id
        np.testing.assert_allclose(soundfile.read(folder / "mixture.wav", dtype="float32")[0], mixture, atol=1e-6)
        for k in range(2):
            target = soundfile.read(folder / f"target_{k}.wav", dtype="float32")[0]
            np.testing.assert_allclose(target, instruction_target(record, sources, k), atol=1e-6)


# --- other protocols -------------------------------------------------------------------------
def test_hybrid_sep_ratio_sources_and_distinct_target(mixes):
    records, out = mixes["hybrid_sep"]
    counts = set()
    for record in records:
        counts.add(len(record.sources))
        assert 2 <= len(record.sources) <= 4
        _, sources = _render(record, out)
        measured = _db(sources[0], sources[1:].sum(axis=0))
        assert -20 <= record.snr_db <= 20
        assert measured == pytest.approx(record.snr_db, abs=1e-3)
        target = NORMALISER.categories(record.sources[0].tags)
        assert all(not target & NORMALISER.categories(s.tags) for s in record.sources[1:])
        [instruction] = record.instructions
        assert (instruction.task, instruction.target) == ("extract", [0]) and _parses_back(instruction)
    assert len(counts) > 1


def test_dcase_integer_snr(mixes):
    records, out = mixes["dcase"]
    for record in records:
        assert record.snr_db == int(record.snr_db) and -15 <= record.snr_db <= 15
        _, sources = _render(record, out)
        assert _db(sources[0], sources[1]) == pytest.approx(record.snr_db, abs=1e-3)
        assert [(i.task, i.target) for i in record.instructions] == [("extract", [0])]


def test_music_zeroshot_instruments_only(mixes):
    records, out = mixes["music_zeroshot"]
    for record in records:
        assert all(NORMALISER.is_instrument(s.tags) for s in record.sources)
        assert record.sources[0].tags != record.sources[1].tags
        assert -5 <= record.snr_db <= 5
        _, sources = _render(record, out)
        assert _db(sources[0], sources[1]) == pytest.approx(record.snr_db, abs=1e-3)
        assert [(i.task, i.target) for i in record.instructions] == [("extract", [0]), ("extract", [1])]
        assert all(_parses_back(i) for i in record.instructions)
    assert PROTOCOLS["music_zeroshot"].seconds == 10.0


def test_multilevel_single_and_two_source_targets(mixes):
    records, out = mixes["multilevel"]
    for record in records:
        assert len(record.sources) == 4
        cats = [NORMALISER.categories(s.tags) for s in record.sources]
        assert all(not cats[i] & cats[j] for i in range(4) for j in range(i + 1, 4))
        assert [i.target for i in record.instructions] == [[0], [1], [2], [3], [0, 1], [2, 3]]
        assert all(i.task == "extract" and _parses_back(i) for i in record.instructions)
        for pair in record.instructions[4:]:
            assert " and " in pair.description and len(PARSER.parse(pair.text)) >= 2
        _, sources = _render(record, out)
        assert _db(sources[0], sources[1:].sum(axis=0)) == pytest.approx(record.snr_db, abs=1e-3)


def test_mix_and_separate_two_sources_extract_each(mixes):
    records, out = mixes["mix_and_separate"]
    for record in records:
        assert len(record.sources) == 2
        assert not NORMALISER.categories(record.sources[0].tags) & NORMALISER.categories(record.sources[1].tags)
        assert -5 <= record.snr_db <= 5
        _, sources = _render(record, out)
        assert _db(sources[0], sources[1]) == pytest.approx(record.snr_db, abs=1e-3)
        assert [(i.task, i.target) for i in record.instructions] == [("extract", [0]), ("extract", [1])]
        assert all(_parses_back(i) for i in record.instructions)
    assert not all(NORMALISER.is_instrument(s.tags) for r in records for s in r.sources)  # any sound, not music only


def test_multilevel_pair_text_parses_into_both_descriptions(tmp_path):
    clips = [(n, [n], [], 1.0, 0.3) for n in ("violin", "rain", "siren", "piano")]
    summary = write_mixtures(write_corpus(tmp_path, clips), "multilevel", pairs=3, seed=1, out=tmp_path, seconds=0.5)
    for record in read_mixtures(summary["path"]):
        for pair in record.instructions[4:]:
            parsed = PARSER.parse(pair.text)
            names = [record.sources[k].tags[0] for k in pair.target]
            assert [(i.task, i.description) for i in parsed] == [("extract", n) for n in names]


def test_eval_splits_use_the_simple_templates(tmp_path):
    path = write_corpus(tmp_path, split="test", name="test.jsonl")
    summary = write_mixtures(path, "hsm_tss", pairs=10, seed=0, out=tmp_path / "out", seconds=0.5)
    assert Path(summary["path"]).name == "hsm_tss_test.jsonl"
    for record in read_mixtures(summary["path"]):
        assert record.split == "test"
        assert record.instructions[0].text.startswith("extract ")
        assert record.instructions[1].text.startswith("remove ")
    assert EXTRACT_TEMPLATES[0] == "extract {d}"


def test_mixed_splits_and_absolute_paths_without_base(tmp_path):
    write_corpus(tmp_path)
    from sepkit.data.manifest import read_clips

    clips = read_clips(tmp_path / "clips.jsonl")
    clips[0].split = "val"
    write_jsonl(tmp_path / "both.jsonl", clips)
    summary = write_mixtures(tmp_path / "both.jsonl", "dcase", pairs=1, seed=0, out=tmp_path / "o", seconds=0.5)
    assert Path(summary["path"]).name == "dcase_mixed.jsonl"
    cache = ClipCache(SR, base_dir=tmp_path)
    record = draw_mixture("hsm_tss", clips, np.random.default_rng(0), cache, index=0, split="train", seconds=0.5)
    assert all(Path(s.path).is_absolute() and Path(s.path).is_file() for s in record.sources)
    assert record.seconds == 0.5 and record.sample_rate == SR and record.seed > 0


def test_default_length_is_the_protocols(corpus, tmp_path):
    summary = write_mixtures(corpus, "hsm_tss", pairs=1, seed=0, out=tmp_path)
    assert summary["seconds"] == 10.0 and summary["count"] == 1


# --- errors ----------------------------------------------------------------------------------
def test_unknown_protocol_lists_the_known(corpus, tmp_path):
    with pytest.raises(SepkitError, match="hsm_tss.*hybrid_sep.*dcase.*music_zeroshot.*multilevel.*mix_and_separate"):
        write_mixtures(corpus, "nope", pairs=1, seed=0, out=tmp_path)


def test_pairs_must_be_positive(corpus, tmp_path):
    with pytest.raises(SepkitError, match="at least 1"):
        write_mixtures(corpus, "hsm_tss", pairs=0, seed=0, out=tmp_path)


def test_empty_manifest(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SepkitError, match="empty"):
        write_mixtures(tmp_path / "empty.jsonl", "hsm_tss", pairs=1, seed=0, out=tmp_path)


def test_not_enough_categories_says_needed_and_found(tmp_path):
    one_class = write_corpus(tmp_path, [("v1", ["violin"], [], 1.0, 0.3), ("v2", ["Violin, fiddle"], [], 1.0, 0.3)])
    with pytest.raises(SepkitError, match="at least 2 non-overlapping.*only 1"):
        write_mixtures(one_class, "hsm_tss", pairs=1, seed=0, out=tmp_path)
    three = write_corpus(tmp_path, [(n, [n], [], 1.0, 0.3) for n in ("violin", "rain", "siren")], name="three.jsonl")
    with pytest.raises(SepkitError, match="at least 4 non-overlapping.*only 3"):
        write_mixtures(three, "multilevel", pairs=1, seed=0, out=tmp_path)
    with pytest.raises(SepkitError, match="instrument clips of at least 2.*only 1"):
        write_mixtures(three, "music_zeroshot", pairs=1, seed=0, out=tmp_path)


def test_synonym_file_merges_categories(tmp_path):
    path = write_corpus(tmp_path, [("a", ["mizzle"], [], 1.0, 0.3), ("b", ["rain"], [], 1.0, 0.3)])
    assert write_mixtures(path, "dcase", pairs=1, seed=0, out=tmp_path, seconds=0.5)["count"] == 1
    (tmp_path / "syn.yaml").write_text("synonyms:\n  rain: [mizzle]\n")
    with pytest.raises(SepkitError, match="only 1"):
        write_mixtures(path, "dcase", pairs=1, seed=0, out=tmp_path, seconds=0.5, synonyms=tmp_path / "syn.yaml")


def test_only_silent_partners_fail_clearly(tmp_path):
    path = write_corpus(tmp_path, [("a", ["rain"], [], 1.0, 0.3), ("b", ["siren"], [], 1.0, "silent")])
    with pytest.raises(SepkitError, match="silent excerpt"):
        write_mixtures(path, "dcase", pairs=1, seed=0, out=tmp_path, seconds=0.5)
