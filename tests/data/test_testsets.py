"""Named test sets: each spec fits its protocol, builds are frozen, errors name the fix, mini names resolve.

Builds run on the small fixture corpus of test_mixing.py (1 s clips at 8 kHz), with fewer
pairs than the real sets; the real data/ folder is only read by the slow pinning test.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_mixing import CLIPS, SR, write_corpus

from sepkit.data.manifest import ClipCache, read_clips, read_mixtures
from sepkit.data.mixing import PROTOCOLS, draw_mixture, write_mixtures
from sepkit.data.tags import TagNormaliser
from sepkit.data.testsets import (
    MINI_MIXES_DIR,
    TESTSETS,
    TestSetSpec,
    balanced_pool,
    build_testset,
    check_spec,
    get_testset,
)
from sepkit.errors import SepkitError

REPO = Path(__file__).resolve().parents[2]
SMALL = 6  # mixtures per small build


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    """Three test-split fixture corpora of different sizes (a: 10 tagged clips, b: 7, c: 5)."""
    root = tmp_path_factory.mktemp("corpora")
    subsets = {"a": CLIPS, "b": CLIPS[:7], "c": CLIPS[3:8]}
    return {key: write_corpus(root / key, clips, split="test", name="test.jsonl") for key, clips in subsets.items()}


def corpus_options(spec: TestSetSpec, corpora: dict[str, Path]) -> dict[str, str]:
    """Every corpus key of ``spec`` -> a fixture manifest (a different one per key for pooled sets)."""
    manifests = list(corpora.values())
    return {key: str(manifests[i % len(manifests)]) for i, key in enumerate(spec.corpora)}


def small_build(spec: TestSetSpec, corpora, out: Path, pairs: int = SMALL, **changes):
    summary = build_testset(replace(spec, pairs=pairs, **changes), out, corpus_options(spec, corpora), progress=False)
    return summary, read_mixtures(summary["path"])


# --- the table ---------------------------------------------------------------------------------
def test_table_entries_are_valid_and_name_distinct_files():
    assert {"hsm_tss-audiocaps", "hsm_tss-clotho", "hsm_tss-fsd50k", "hsm_tss-3sets", "music-zeroshot", "dcase",
            "hybrid_sep-keyword", "mini-hsm_tss", "mini-hsm_tss-val", "mini-3sets", "mini-music_zeroshot",
            "mini-dcase", "mini-hybrid_sep"} <= set(TESTSETS)  # fmt: skip
    for spec in TESTSETS.values():
        check_spec(spec)
        assert spec.description and spec.sources and spec.seconds == (4.0 if spec.is_mini else 10.0)
        assert spec.is_mini == spec.name.startswith("mini-")
    assert len({s.output_name for s in TESTSETS.values()}) == len(TESTSETS)
    assert TESTSETS["hsm_tss-3sets"].pairs == 1000 and TESTSETS["hsm_tss-audiocaps"].pairs == 500
    assert TESTSETS["hybrid_sep-keyword"].sources_per_mixture == 4 and TESTSETS["dcase"].pairs == 3000
    music = PROTOCOLS[TESTSETS["music-zeroshot"].protocol]
    assert music.level_db == (-5.0, 5.0) and music.seconds == 10.0 and music.instruments_only


def test_the_two_original_mini_sets_keep_their_commands():
    """`sepkit data mix --manifest data/mini/{val,test}.jsonl --protocol hsm_tss --seconds 4` with these pairs/seeds."""
    test, val = TESTSETS["mini-hsm_tss"], TESTSETS["mini-hsm_tss-val"]
    assert (test.output_name, test.pairs, test.seed, test.seconds) == ("hsm_tss_test.jsonl", 500, 2, 4.0)
    assert (val.output_name, val.pairs, val.seed, val.seconds) == ("hsm_tss_val.jsonl", 200, 1, 4.0)
    assert test.sources[0].default == "data/mini/test.jsonl" and val.sources[0].default == "data/mini/val.jsonl"


def test_a_spec_outside_its_protocol_is_refused():
    spec = TESTSETS["mini-dcase"]
    with pytest.raises(SepkitError, match="4 sources per mixture, but dcase draws 2-2"):
        check_spec(replace(spec, sources_per_mixture=4))
    with pytest.raises(SepkitError, match="unknown test set 'nope'.*mini-dcase"):
        get_testset("nope")


# --- every set builds as its protocol says ---------------------------------------------------
# (a set that re-renders clips from a held-out soundfont needs sepkit-mini clips: tests/test_mini_soundfonts.py)
@pytest.mark.parametrize("name", [name for name, spec in TESTSETS.items() if spec.soundfont is None])
def test_small_build_fits_the_protocol(name, corpora, tmp_path):
    spec = TESTSETS[name]
    protocol = PROTOCOLS[spec.protocol]
    summary, records = small_build(spec, corpora, tmp_path)
    assert summary["count"] == len(records) == SMALL
    assert Path(summary["path"]).name == spec.output_name
    assert summary["sha256"] == hashlib.sha256(Path(summary["path"]).read_bytes()).hexdigest()
    low, high = protocol.level_db
    for record in records:
        assert record.protocol == spec.protocol and record.split == "test"
        assert record.seconds == spec.seconds and record.sample_rate == (spec.sample_rate or SR)
        assert low <= record.snr_db <= high
        if protocol.integer_db:
            assert record.snr_db == int(record.snr_db)
        count = len(record.sources)
        assert count == spec.sources_per_mixture if spec.sources_per_mixture else protocol.num_sources[0] <= count
        assert count <= protocol.num_sources[1]
        tasks = [i.task for i in record.instructions]
        assert tasks == {"hsm_tss": ["extract", "remove"], "music_zeroshot": ["extract", "extract"]}.get(
            spec.protocol, ["extract"]
        )


def test_3sets_pools_the_same_number_of_clips_from_each_corpus(corpora, tmp_path):
    spec = TESTSETS["hsm_tss-3sets"]
    options = corpus_options(spec, corpora)
    clips = {key: [replace(c, id=f"{key}/{c.id}") for c in read_clips(path)] for key, path in options.items()}
    pool = balanced_pool(spec, clips, TagNormaliser())
    assert Counter(c.id.split("/")[0] for c in pool) == {"audiocaps": 5, "clotho": 5, "fsd50k": 5}  # 5: the smallest
    _, records = small_build(spec, corpora, tmp_path, pairs=40)
    folders = {str(Path(p).parent.name): k for k, p in options.items()}  # "a" -> "audiocaps", ...
    by_corpus = Counter(folders[Path(s.path).parts[-3]] for r in records for s in r.sources)
    assert set(by_corpus) == {"audiocaps", "clotho", "fsd50k"} and min(by_corpus.values()) >= 15  # of 80 sources
    assert any(len({Path(s.path).parts[-3] for s in r.sources}) == 2 for r in records)  # mixed across corpora


def test_mini_3sets_draws_its_pool_evenly_from_three_tag_groups(corpora):
    spec = TESTSETS["mini-3sets"]
    normaliser = TagNormaliser()
    pool = balanced_pool(spec, {"mini_test": read_clips(corpora["a"])}, normaliser)
    groups = Counter(
        "speech" if "speech" in normaliser.categories(c.tags) else
        "instruments" if normaliser.is_instrument(c.tags) else "environment"
        for c in pool
    )  # fmt: skip
    assert groups == {"instruments": 2, "speech": 2, "environment": 2}  # the fixture has 2 speech clips


# --- frozen ------------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_other_bytes(corpora, tmp_path):
    spec = TESTSETS["mini-hybrid_sep"]
    a, _ = small_build(spec, corpora, tmp_path / "a")
    b, _ = small_build(spec, corpora, tmp_path / "b")
    c, _ = small_build(spec, corpora, tmp_path / "c", seed=spec.seed + 1)
    assert Path(a["path"]).read_bytes() == Path(b["path"]).read_bytes()
    assert Path(a["path"]).read_bytes() != Path(c["path"]).read_bytes()


def test_a_smaller_build_is_the_first_lines_of_the_full_one(corpora, tmp_path):
    spec = TESTSETS["mini-3sets"]
    short, _ = small_build(spec, corpora, tmp_path / "short", pairs=3)
    full, _ = small_build(spec, corpora, tmp_path / "full", pairs=SMALL)
    lines = Path(full["path"]).read_text().splitlines(keepends=True)
    assert Path(short["path"]).read_text() == "".join(lines[:3])


def test_default_seeding_gives_what_sepkit_data_mix_gives(corpora, tmp_path):
    spec = TESTSETS["mini-dcase"]
    built, _ = small_build(spec, corpora, tmp_path)
    mixed = write_mixtures(corpora["a"], "dcase", pairs=SMALL, seed=spec.seed, out=tmp_path, seconds=spec.seconds)
    assert Path(built["path"]).read_bytes() == Path(mixed["path"]).read_bytes()


def test_legacy_seeding_draws_mixture_i_from_seed_and_i(corpora, tmp_path):
    spec = TESTSETS["mini-hsm_tss"]
    _, records = small_build(spec, corpora, tmp_path, pairs=2)
    clips = read_clips(corpora["a"])
    cache = ClipCache(SR, base_dir=corpora["a"].parent)
    alone = draw_mixture("hsm_tss", clips, np.random.default_rng([spec.seed, 1]), cache, index=1, split="test",
                         seconds=spec.seconds, path_base=tmp_path)  # fmt: skip
    assert alone == records[1]


@pytest.mark.slow
def test_mini_hsm_tss_sets_equal_the_files_in_data_mixes(tmp_path):
    """The Makefile's builds of the two original sets give the existing data/mixes files, byte for byte."""
    if not (REPO / "data" / "mini" / "test.jsonl").is_file():
        pytest.skip("sepkit-mini is not built (make mini-data)")
    (tmp_path / "mini").symlink_to(REPO / "data" / "mini")  # the same relative clip paths as data/mixes has
    for name, key, split in (("mini-hsm_tss", "mini_test", "test"), ("mini-hsm_tss-val", "mini_val", "val")):
        existing = REPO / MINI_MIXES_DIR / TESTSETS[name].output_name
        if not existing.is_file():
            continue
        summary = build_testset(TESTSETS[name], tmp_path / "mixes", {key: str(tmp_path / "mini" / f"{split}.jsonl")},
                                progress=False)  # fmt: skip
        assert Path(summary["path"]).read_bytes() == existing.read_bytes(), name


# --- the command line ----------------------------------------------------------------------------
def test_cli_rebuild_gives_the_same_bytes(sepkit_cli, corpora, tmp_path):
    args = ["data", "testset", "mini-music_zeroshot", "--corpus", f"mini_test={corpora['a']}"]
    first = sepkit_cli(*args, "--out", tmp_path / "one")
    second = sepkit_cli(*args, "--out", tmp_path / "two")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    one, two = tmp_path / "one" / "mini-music_zeroshot.jsonl", tmp_path / "two" / "mini-music_zeroshot.jsonl"
    assert one.read_bytes() == two.read_bytes() and len(read_mixtures(one)) == TESTSETS["mini-music_zeroshot"].pairs
    assert hashlib.sha256(one.read_bytes()).hexdigest() in first.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["hsm_tss-audiocaps"], ["needs the AudioCaps test clips", "sepkit data import audiocaps --root",
                                 "--corpus audiocaps="]),
        (["hsm_tss-3sets", "--corpus", "audiocaps={a}", "--corpus", "clotho={a}"], ["sepkit data import fsd50k"]),
        (["music-zeroshot", "--corpus", "music=missing.jsonl"], ["no such file", "sepkit data import music --root"]),
        (["dcase", "--corpus", "music={a}"], ["reads no corpus music", "clotho=MANIFEST"]),
        (["dcase", "--corpus", "clotho"], ["give KEY=MANIFEST"]),
        (["nope"], ["unknown test set 'nope'", "sepkit data testset --list"]),
    ],
    ids=["missing", "one-of-three-missing", "no-such-file", "unknown-key", "no-equals", "unknown-set"],
)  # fmt: skip
def test_cli_errors_exit_2_name_the_fix_and_write_nothing(sepkit_cli, corpora, tmp_path, args, words):
    args = [a.format(a=corpora["a"]) for a in args]
    proc = sepkit_cli("data", "testset", *args, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sepkit: error:"), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "out").exists()


def test_cli_list_prints_the_table(sepkit_cli):
    proc = sepkit_cli("data", "testset", "--list")
    assert proc.returncode == 0, proc.stderr
    rows = {line.split()[0]: line.split() for line in proc.stdout.splitlines()[1:]}
    assert proc.stdout.splitlines()[0].split() == ["name", "protocol", "pairs", "seconds", "dB", "sources", "needs"]
    assert set(rows) == set(TESTSETS)
    assert rows["hsm_tss-3sets"][:6] == ["hsm_tss-3sets", "hsm_tss", "1000", "10", "-15..15", "2"]
    assert rows["hybrid_sep-keyword"][1:6] == ["hybrid_sep", "600", "10", "-20..20", "4"]
    assert rows["music-zeroshot"][4] == "-5..5" and "music=music_test.jsonl" in " ".join(rows["music-zeroshot"])
    assert rows["mini-dcase"][-1] == "data/mini/test.jsonl" and rows["mini-hsm_tss-val"][-1] == "data/mini/val.jsonl"


# --- benchmark --testset ---------------------------------------------------------------------------
def test_benchmark_resolves_mini_names_to_where_make_mini_data_writes(monkeypatch, tmp_path):
    import sepkit.benchmark.testsets as bench

    makefile = (REPO / "Makefile").read_text()
    target = makefile.split("\nmini-data:", 1)[1].split("\n\n", 1)[0]
    built = dict(re.findall(r"sepkit data testset (\S+) --out (\S+)", target))
    minis = {name for name, spec in TESTSETS.items() if spec.is_mini}
    downloads = {name for name in minis if TESTSETS[name].soundfont}  # need a soundfont from Debian: not in make
    assert set(built) == minis - downloads and set(built.values()) == {MINI_MIXES_DIR} and downloads == {"mini-unseen"}
    assert set(bench.MINI_TESTSETS) == minis
    assert bench.MINI_TESTSETS["mini-hsm_tss"] == "data/mixes/hsm_tss_test.jsonl"
    assert bench.MINI_TESTSETS["mini-hsm_tss-val"] == "data/mixes/hsm_tss_val.jsonl"
    monkeypatch.setenv("SEPKIT_DATA_ROOT", str(tmp_path))
    with pytest.raises(SepkitError, match="make mini-data.*sepkit data testset mini-music_zeroshot --out data/mixes"):
        bench.resolve_testset_path("mini-music_zeroshot")
    path = tmp_path / "data" / "mixes" / "mini-music_zeroshot.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("{}\n")
    assert bench.resolve_testset_path("mini-music_zeroshot") == path
