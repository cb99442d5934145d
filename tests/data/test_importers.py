"""Corpus importers on small fixture corpora written in each corpus's official metadata format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sepkit.data.importers import CORPORA, import_corpus
from sepkit.data.manifest import read_clips
from sepkit.errors import SepkitError


@pytest.fixture
def wav(write_wav):
    """wav(path, seconds=0.25, sample_rate=16000) -> path of a short noise file."""

    def make(path, seconds=0.25, sample_rate=16000):
        return write_wav(path, seconds=seconds, sample_rate=sample_rate)

    return make


def corrupt(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF not really a wav file")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(summary: dict, split: str):
    clips = read_clips(summary["manifests"][split])
    return {c.id: c for c in clips}


def check_paths(summary: dict, split: str) -> None:
    manifest = Path(summary["manifests"][split])
    for clip in read_clips(manifest):
        assert not Path(clip.path).is_absolute()
        assert (manifest.parent / clip.path).is_file()


# --- each corpus -----------------------------------------------------------------------------
def test_audiocaps_both_naming_patterns_grouped_captions(tmp_path, wav):
    root = tmp_path / "audiocaps"
    write(root / "dataset" / "train.csv", "audiocap_id,youtube_id,start_time,caption\n"
          "91139,r1nicOVtvkQ,130,A man speaks while rain falls\n")  # fmt: skip
    write(root / "dataset" / "val.csv", "audiocap_id,youtube_id,start_time,caption\n"
          "97151,vfY_TJq7n_U,130,Birds chirp in the distance\n97152,vfY_TJq7n_U,130,A bird sings\n"
          "97160,missingYTID,30,A dog barks\n")  # fmt: skip
    wav(root / "audio" / "train" / "Yr1nicOVtvkQ.wav", seconds=0.5)  # YouTube-id pattern
    wav(root / "audio" / "val" / "97152.wav", sample_rate=22050)  # AudioCaps-id pattern
    summary = import_corpus("audiocaps", root, tmp_path / "out")
    assert summary["counts"] == {"train": 1, "val": 1}
    assert summary["missing"] == 1 and "missingYTID" in summary["missing_examples"][0]
    train = load(summary, "train")["audiocaps-r1nicOVtvkQ"]
    assert train.tags == ["man speaking", "rain"] and train.captions == ["A man speaks while rain falls"]
    assert train.seconds == 0.5 and train.sample_rate == 16000 and train.split == "train"
    assert train.provenance["audiocap_ids"] == ["91139"] and train.provenance["corpus"] == "audiocaps"
    val = load(summary, "val")["audiocaps-vfY_TJq7n_U"]
    assert val.captions == ["Birds chirp in the distance", "A bird sings"] and val.tags == ["bird chirping"]
    assert val.sample_rate == 22050
    check_paths(summary, "val")


def test_clotho_splits_and_corrupt_audio(tmp_path, wav):
    root = tmp_path / "clotho"
    header = "file_name,caption_1,caption_2,caption_3,caption_4,caption_5\n"
    write(root / "clotho_captions_development.csv", header +
          "rain.wav,Heavy rain on a tin roof,Rain falls,Raindrops hit metal,It rains hard,Rain pours\n"
          '"bell, church.wav",A church bell rings,Bells ring,A bell tolls,Ringing bell,"Bells, far"\n')  # fmt: skip
    write(root / "clotho_captions_evaluation.csv", header + "tap.wav,Water runs from a tap,a,b,c,d\n")
    wav(root / "development" / "rain.wav")
    corrupt(root / "development" / "bell, church.wav")
    wav(root / "evaluation" / "tap.wav")
    summary = import_corpus("clotho", root, tmp_path / "out")
    assert summary["counts"] == {"test": 1, "train": 1}
    assert summary["corrupt"] == 1 and "bell, church.wav" in summary["corrupt_examples"][0]
    rain = load(summary, "train")["clotho-development/rain.wav"]
    assert len(rain.captions) == 5 and rain.tags == ["rain"]
    assert load(summary, "test")["clotho-evaluation/tap.wav"].tags == ["running water"]


def test_fsd50k_labels_normalised_coarse_dropped(tmp_path, wav):
    root = tmp_path / "FSD50K"
    write(root / "FSD50K.ground_truth" / "dev.csv", "fname,labels,mids,split\n"
          '64760,"Violin_fiddle,Bowed_string_instrument,Musical_instrument,Music","/m/07y_7,/m/0fx80y,/m/04szw,/m/04rlf",train\n'
          '16399,"Male_speech_and_man_speaking,Speech,Human_voice","/m/05zppz,/m/09x0r,/m/09l8g",val\n')  # fmt: skip
    write(root / "FSD50K.ground_truth" / "eval.csv", "fname,labels,mids\n"
          '37199,"Rain,Raindrop,Water","/m/06mb1,/m/07r10fb,/m/0838f"\n')  # fmt: skip
    for part, fname in (("dev", 64760), ("dev", 16399), ("eval", 37199)):
        wav(root / f"FSD50K.{part}_audio" / f"{fname}.wav")
    summary = import_corpus("fsd50k", root, tmp_path / "out")
    assert summary["counts"] == {"test": 1, "train": 1, "val": 1} and summary["missing"] == 0
    violin = load(summary, "train")["fsd50k-64760"]
    assert violin.tags == ["violin"]
    assert violin.captions == ["the sound of violin fiddle"]
    assert violin.provenance["labels"][-1] == "Music" and violin.provenance["mids"][0] == "/m/07y_7"
    assert load(summary, "val")["fsd50k-16399"].tags == ["man speaking", "speech"]
    assert load(summary, "test")["fsd50k-37199"].tags == ["rain", "water"]


def test_esc50_folds_to_splits(tmp_path, wav):
    root = tmp_path / "ESC-50-master"
    rows = [("1-100032-A-0.wav", 1, 0, "dog"), ("2-100648-A-43.wav", 2, 43, "chirping_birds"),
            ("4-1000-A-10.wav", 4, 10, "rain"), ("5-1001-A-42.wav", 5, 42, "siren")]  # fmt: skip
    text = "filename,fold,target,category,esc10,src_file,take\n"
    text += "".join(f"{f},{fold},{t},{c},False,{f.split('-')[1]},A\n" for f, fold, t, c in rows)
    write(root / "meta" / "esc50.csv", text)
    for f, *_ in rows:
        wav(root / "audio" / f)
    summary = import_corpus("esc50", root, tmp_path / "out")
    assert summary["counts"] == {"test": 1, "train": 2, "val": 1}
    train = load(summary, "train")
    assert train["esc50-2-100648-A-43"].tags == ["bird chirping"]
    assert train["esc50-2-100648-A-43"].captions == ["the sound of chirping birds"]
    assert train["esc50-1-100032-A-0"].provenance["fold"] == "1"
    assert load(summary, "test")["esc50-5-1001-A-42"].tags == ["siren"]
    check_paths(summary, "train")


def test_wavcaps_placeholder_and_explicit_paths(tmp_path, wav):
    root = tmp_path / "WavCaps"
    write(root / "json_files" / "AudioSet_SL" / "as_final.json", json.dumps({"num_captions_per_audio": 1, "data": [
        {"id": "Yb0RFKhbpFJA.wav", "caption": "Wind and a man speaking are heard.", "audio": "wav_path",
         "duration": 10.0},
        {"id": "Ygone.wav", "caption": "A siren wails", "audio": "wav_path", "duration": 10.0},
    ]}))  # fmt: skip
    write(root / "json_files" / "SoundBible" / "sb_final.json", json.dumps({"data": [
        {"id": "2219", "caption": "An airplane is landing.", "audio": "../../audio/sb/2219.wav", "duration": 14.1},
    ]}))  # fmt: skip
    write(root / "settings.json", json.dumps({"not": "metadata"}))
    wav(root / "AudioSet_SL_flac" / "Yb0RFKhbpFJA.flac")
    wav(root / "audio" / "sb" / "2219.wav")
    summary = import_corpus("wavcaps", root, tmp_path / "out")
    assert summary["counts"] == {"train": 2} and summary["missing"] == 1
    clips = load(summary, "train")
    clip = clips["wavcaps-AudioSet_SL/Yb0RFKhbpFJA"]
    assert clip.tags == ["wind", "man speaking"] and clip.provenance["source"] == "AudioSet_SL"
    assert clip.path.endswith(".flac")
    assert clips["wavcaps-SoundBible/2219"].captions == ["An airplane is landing."]


def test_audioset_segments_with_comment_header(tmp_path, wav):
    root = tmp_path / "audioset"
    write(root / "class_labels_indices.csv", "index,mid,display_name\n"
          '0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n137,/m/07y_7,"Violin, fiddle"\n'
          '289,/m/06mb1,"Rain"\n')  # fmt: skip
    comment = "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=2\n# YTID, start_seconds, end_seconds, positive_labels\n"  # noqa: E501
    write(root / "balanced_train_segments.csv", comment +
          '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n-0RWZT-miFs, 420.000, 430.000, "/m/07y_7,/m/xxxx"\n')
    write(root / "eval_segments.csv", comment + '--4gqARaEJE, 0.000, 10.000, "/m/06mb1"\n')
    wav(root / "audio" / "Y--PJHxphWEs.wav")
    wav(root / "audio" / "-0RWZT-miFs_420.wav")
    wav(root / "eval" / "--4gqARaEJE.flac")
    summary = import_corpus("audioset", root, tmp_path / "out")
    assert summary["counts"] == {"test": 1, "train": 2}
    train = load(summary, "train")
    assert train["audioset---PJHxphWEs_30"].tags == ["speech", "man speaking"]
    violin = train["audioset--0RWZT-miFs_420"]
    assert violin.tags == ["violin"] and violin.provenance["mids"] == ["/m/07y_7", "/m/xxxx"]
    assert load(summary, "test")["audioset---4gqARaEJE_0"].tags == ["rain"]


def test_music_clipsep_csv_and_header_form(tmp_path, wav):
    root = tmp_path / "MUSIC"
    write(root / "solo" / "test.csv",
          "data/MUSIC/solo/audio/violin/w81p5ty4OZc.wav,data/MUSIC/solo/preprocessed/violin/w81p5ty4OZc,131,violin\n"
          "data/MUSIC/solo/audio/acoustic_guitar/ZeQPNWdFs_4.wav,data/MUSIC/solo/preprocessed/acoustic_guitar/ZeQPNWdFs_4,212,acoustic_guitar\n")  # noqa: E501
    wav(root / "solo" / "audio" / "violin" / "w81p5ty4OZc.wav")
    wav(root / "solo" / "audio" / "acoustic_guitar" / "ZeQPNWdFs_4.wav")
    write(root / "train.csv", "audio,instrument\nclips/cello1.wav,cello\n")
    wav(root / "clips" / "cello1.wav")
    summary = import_corpus("music", root, tmp_path / "out")
    assert summary["counts"] == {"test": 2, "train": 1}
    test = load(summary, "test")
    assert test["music-acoustic_guitar/ZeQPNWdFs_4"].tags == ["acoustic guitar"]
    assert test["music-violin/w81p5ty4OZc"].provenance["num_frames"] == "131"
    assert load(summary, "train")["music-cello/cello1"].tags == ["cello"]


# --- missing, corrupt, errors ----------------------------------------------------------------
def _esc50_with_problems(tmp_path, wav) -> Path:
    root = tmp_path / "esc"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
          "1-1-A-0.wav,1,0,dog,True,1,A\n1-2-A-0.wav,1,0,dog,True,2,A\n1-3-A-10.wav,1,10,rain,True,3,A\n"
          "1-4-A-10.wav,1,10,rain,True,4,A\n")  # fmt: skip
    wav(root / "audio" / "1-1-A-0.wav")
    corrupt(root / "audio" / "1-2-A-0.wav")
    (root / "audio" / "1-3-A-10.wav").write_bytes(b"")  # empty
    return root


def test_missing_and_corrupt_are_skipped_and_counted(tmp_path, wav):
    summary = import_corpus("esc50", _esc50_with_problems(tmp_path, wav), tmp_path / "out")
    assert summary["clips"] == 1
    assert summary["missing"] == 1 and summary["missing_examples"][0].endswith("1-4-A-10.wav")
    assert summary["corrupt"] == 2 and len(summary["corrupt_examples"]) == 2


def test_fail_mode_lists_every_problem_and_writes_nothing(tmp_path, wav):
    with pytest.raises(SepkitError, match=r"1 of 4 audio files missing .*1-4-A-10.wav.*2 unreadable.*1-2-A-0.wav"):
        import_corpus("esc50", _esc50_with_problems(tmp_path, wav), tmp_path / "out", on_missing="fail")
    assert not (tmp_path / "out").exists()


def test_no_readable_audio_at_all(tmp_path):
    root = tmp_path / "esc"
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n1-1-A-0.wav,1,0,dog,1,1,A\n")
    with pytest.raises(SepkitError, match="no clip of 1 has readable audio.*missing"):
        import_corpus("esc50", root, tmp_path / "out")


def test_unknown_corpus_and_bad_arguments(tmp_path):
    with pytest.raises(SepkitError, match="unknown corpus 'nope'.*audiocaps.*clotho.*fsd50k.*esc50.*wavcaps"):
        import_corpus("nope", tmp_path, tmp_path / "out")
    assert set(CORPORA) == {"audiocaps", "clotho", "fsd50k", "esc50", "wavcaps", "audioset", "music"}
    with pytest.raises(SepkitError, match="on_missing"):
        import_corpus("esc50", tmp_path, tmp_path / "out", on_missing="ignore")
    with pytest.raises(SepkitError, match="not a folder"):
        import_corpus("esc50", tmp_path / "absent", tmp_path / "out")


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_missing_metadata_is_a_clear_error(tmp_path, corpus):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SepkitError, match=corpus):
        import_corpus(corpus, tmp_path / "empty", tmp_path / "out")


def test_missing_columns_are_named(tmp_path):
    write(tmp_path / "c" / "meta" / "esc50.csv", "filename,fold\n1.wav,1\n")
    with pytest.raises(SepkitError, match="missing column.*category"):
        import_corpus("esc50", tmp_path / "c", tmp_path / "out")


def test_imported_manifest_feeds_the_mixer(tmp_path, wav):
    root = tmp_path / "esc"
    rows = [("1-1-A-0.wav", "dog"), ("1-2-A-10.wav", "rain"), ("1-3-A-42.wav", "siren")]
    write(root / "meta" / "esc50.csv", "filename,fold,target,category,esc10,src_file,take\n"
          + "".join(f"{f},1,0,{c},False,1,A\n" for f, c in rows))  # fmt: skip
    for f, _ in rows:
        wav(root / "audio" / f)
    from sepkit.data.mixing import write_mixtures

    manifest = import_corpus("esc50", root, tmp_path / "manifests")["manifests"]["train"]
    summary = write_mixtures(manifest, "hsm_tss", pairs=3, seed=0, out=tmp_path / "mix", seconds=0.2)
    assert summary["count"] == 3 and Path(summary["path"]).name == "hsm_tss_train.jsonl"
