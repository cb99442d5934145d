"""``sepkit separate`` never loses a user's file (issue 13, items 1-4 and 6).

Each case is one the CLI probe found: the output planned onto the input, short inputs,
output-side errors found only after the model ran, slug clashes, and recipe overrides.
Cases that must fail do so before the model loads: nothing is written, no input changes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from sepkit.errors import SepkitError

TINY = "tiny/stft_mask"
QUERY = "extract the violin"


def digest(path: Path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def files_under(folder: Path) -> set[Path]:
    return {p for p in Path(folder).rglob("*") if p.is_file()}


def assert_exit_2(proc, *keywords: str) -> str:
    """Exit 2 with one 'sepkit: error:' line (notes aside) that names every keyword; returns the line."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("sepkit: note:")]
    assert proc.returncode == 2, f"exit {proc.returncode}, stderr: {proc.stderr}"
    assert len(lines) == 1 and lines[0].startswith("sepkit: error:"), proc.stderr
    for word in keywords:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


# --- 1. the output is never the input ----------------------------------------------------


def test_output_equal_to_input_is_refused(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    before = digest(mix)
    proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", mix, "--recipe", TINY)
    line = assert_exit_2(proc, str(mix), "overwrite", "-o")
    assert "input" in line
    assert digest(mix) == before and files_under(tmp_path) == {mix}


def test_output_dot_in_the_inputs_folder_is_refused(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    before = digest(mix)
    proc = sepkit_cli("separate", "mix.wav", "-q", QUERY, "-o", ".", "--recipe", TINY, cwd=tmp_path)
    assert_exit_2(proc, "mix.wav", "overwrite")
    assert digest(mix) == before and files_under(tmp_path) == {mix}


def test_folder_input_onto_itself_is_refused(sepkit_cli, write_wav, tmp_path):
    a = write_wav(tmp_path / "d" / "a.wav", seed=1)
    b = write_wav(tmp_path / "d" / "sub" / "b.flac", seed=2)
    before = {a: digest(a), b: digest(b)}
    proc = sepkit_cli("separate", tmp_path / "d", "-q", QUERY, "-o", tmp_path / "d", "--recipe", TINY)
    assert_exit_2(proc, "overwrite")
    assert {p: digest(p) for p in before} == before and files_under(tmp_path) == {a, b}


def test_empty_output_argument_is_a_usage_error(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    before = digest(mix)
    proc = sepkit_cli("separate", "mix.wav", "-q", QUERY, "-o", "", "--recipe", TINY, cwd=tmp_path)
    assert_exit_2(proc, "-o is empty")
    assert digest(mix) == before and files_under(tmp_path) == {mix}


def test_output_that_is_a_hard_link_or_symlink_to_the_input_is_refused(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    before = digest(mix)
    os.link(mix, tmp_path / "hard.wav")
    os.symlink(mix, tmp_path / "soft.wav")
    for name in ("hard.wav", "soft.wav"):
        proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", tmp_path / name, "--recipe", TINY)
        assert_exit_2(proc, "overwrite", str(mix))
    assert digest(mix) == before


def test_check_outputs_spare_inputs_names_both_paths(tmp_path):
    from sepkit.cli.separate_cmd import check_outputs_spare_inputs

    mix = tmp_path / "mix.wav"
    mix.write_bytes(b"x")
    with pytest.raises(SepkitError, match="mix.wav over the input .*mix.wav"):
        check_outputs_spare_inputs([mix], [[tmp_path / "." / "mix.wav"]], ".")
    with pytest.raises(SepkitError, match="two results would be written"):
        check_outputs_spare_inputs([mix, tmp_path / "b.wav"], [[tmp_path / "o.wav"], [tmp_path / "o.wav"]], "o")
    check_outputs_spare_inputs([mix], [[tmp_path / "out.wav"]], "out.wav")  # no clash: no error


# --- 2. short inputs -----------------------------------------------------------------------


@pytest.mark.parametrize("frames, rate, channels", [(1, 16000, 1), (128, 16000, 1), (129, 22050, 2), (3, 8000, 2)])
def test_short_inputs_are_separated_to_their_own_length(sepkit_cli, tmp_path, frames, rate, channels):
    mix = tmp_path / "short.wav"
    soundfile.write(str(mix), 0.1 * np.ones((frames, channels)), rate, subtype="PCM_16")
    out = tmp_path / "out.wav"
    proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", out, "--recipe", TINY)
    assert proc.returncode == 0, proc.stderr
    info = soundfile.info(str(out))
    assert (info.frames, info.channels, info.samplerate) == (frames, channels, rate)


def test_a_256_sample_input_separates_with_the_default_recipe(sepkit_cli, tmp_path):
    mix = tmp_path / "n256.wav"
    soundfile.write(str(mix), np.zeros(256), 16000, subtype="PCM_16")
    proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", tmp_path / "out.wav")
    assert proc.returncode == 0, proc.stderr
    assert soundfile.info(str(tmp_path / "out.wav")).frames == 256


def test_pipeline_pads_mixtures_shorter_than_the_encoders_minimum():
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    pipeline = build_pipeline(load_recipe(TINY)).eval()
    assert pipeline.min_samples == 129  # n_fft 256: reflection padding of 128 needs 129 samples
    for length in (1, 64, 128, 129):
        mixture = torch.randn(2, length)
        with torch.inference_mode():
            out = pipeline(mixture, torch.tensor([length, length]), ["violin", "rain"], torch.tensor([0, 1]))
        assert out.shape == (2, length) and torch.isfinite(out).all()


def test_chunk_shorter_than_the_encoder_needs_is_a_recipe_error(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    proc = sepkit_cli(
        "separate", mix, "-q", QUERY, "-o", tmp_path / "o.wav", "--recipe", TINY,
        "inference.chunk_seconds=0.005", "inference.overlap_seconds=0",
    )  # fmt: skip
    assert_exit_2(proc, "inference.chunk_seconds", "129")
    assert not (tmp_path / "o.wav").exists()


def test_metrics_score_a_one_sample_reference(sepkit_cli, write_wav, tmp_path):
    est = write_wav(tmp_path / "est.wav")
    ref = tmp_path / "one.wav"
    soundfile.write(str(ref), np.zeros(1), 16000, subtype="PCM_16")
    proc = sepkit_cli("metrics", est, ref, "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"psnr"' in proc.stdout


# --- 3. output locations are checked before the model loads ------------------------------


def test_output_under_a_regular_file_is_refused_early(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    (tmp_path / "afile").write_text("x")
    # the checkpoint does not exist: had the model been loaded first, the error would name it
    proc = sepkit_cli(
        "separate", mix, "-q", QUERY, "-o", tmp_path / "afile" / "x.wav", "--recipe", TINY, "--ckpt", tmp_path / "no"
    )
    assert_exit_2(proc, "not a directory", "afile")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_is_refused_early(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", locked / "x.wav", "--recipe", TINY)
        assert_exit_2(proc, "permission denied")
    finally:
        locked.chmod(0o700)


def test_output_locations_are_checked_for_every_planned_output(tmp_path, monkeypatch):
    import sepkit.atomic
    from sepkit.cli.separate_cmd import check_output_locations

    seen = []
    monkeypatch.setattr(sepkit.atomic, "check_writable", lambda p: seen.append(Path(p)))
    plans = [[tmp_path / "a" / "x.wav", tmp_path / "a" / "y.wav"], [tmp_path / "b" / "x.wav"]]
    check_output_locations(plans)
    assert {p.parent for p in seen} == {tmp_path / "a", tmp_path / "b"}


# --- 4. every query gets its own file --------------------------------------------------------


def test_unique_slugs_checks_every_name_taken():
    from sepkit.cli.separate_all import unique_names
    from sepkit.cli.separate_cmd import unique_slugs

    slugs = unique_slugs(["extract the violin", "extract the violin", "extract the violin 2", "Extract the violin!"])
    assert slugs == ["extract-the-violin", "extract-the-violin-2", "extract-the-violin-2-2", "extract-the-violin-3"]
    assert unique_names(["residual", "dog", "dog", "dog 2"]) == ["residual-2", "dog", "dog-2", "dog-2-2"]


def test_repeated_queries_write_one_file_each(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    queries = ["extract the violin", "extract the violin", "extract the violin 2"]
    args = [a for q in queries for a in ("-q", q)]
    proc = sepkit_cli("separate", mix, *args, "-o", tmp_path / "q", "--recipe", TINY)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split()
    assert len(printed) == 3 == len(set(printed))
    assert len(list((tmp_path / "q").glob("*.wav"))) == 3


# --- 6. overrides on the command line --------------------------------------------------------


def test_separate_accepts_recipe_overrides_anywhere(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    proc = sepkit_cli(
        "separate", mix, "-q", QUERY, "-o", tmp_path / "o.wav", "--recipe", TINY, "model.separator.hidden=16"
    )
    assert proc.returncode == 0, proc.stderr
    proc = sepkit_cli("separate", mix, "model.separator.hidden=16", "-q", QUERY, "-o", tmp_path / "p.wav",
                      "--recipe", TINY)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_separate_refuses_an_override_without_equals(sepkit_cli, write_wav, tmp_path):
    mix = write_wav(tmp_path / "mix.wav")
    proc = sepkit_cli("separate", mix, "-q", QUERY, "-o", tmp_path / "o.wav", "--recipe", TINY, "model.separator")
    assert_exit_2(proc, "model.separator")
    assert not (tmp_path / "o.wav").exists()


def test_leftover_options_are_still_usage_errors():
    from sepkit.cli import build_parser, parse_args

    parser = build_parser()
    args = parse_args(parser, ["separate", "m.wav", "-q", "x", "-o", "o.wav", "a.b=1", "--recipe", "r", "c.d=2"])
    assert args.overrides == ["a.b=1", "c.d=2"] and args.recipe == "r"
    args = parse_args(parser, ["benchmark", "mini/audiosep", "--testset", "t", "--out", "o", "a.b=1"])
    assert args.systems == ["mini/audiosep", "a.b=1"]
    with pytest.raises(SystemExit) as exc:
        parse_args(parser, ["separate", "m.wav", "-q", "x", "-o", "o.wav", "--bogus"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        parse_args(parser, ["metrics", "e.wav", "r.wav", "stray"])


def test_benchmark_overrides_follow_the_system_they_change():
    from sepkit.benchmark.systems import group_system_words

    words = ["mini/audiosep", "inference.batch_size=2", "tiny/stft_mask@runs/x=1/best.ckpt", "model.separator.hidden=8"]
    assert group_system_words(words) == [
        ("mini/audiosep", ["inference.batch_size=2"]),
        ("tiny/stft_mask@runs/x=1/best.ckpt", ["model.separator.hidden=8"]),
    ]
    with pytest.raises(SepkitError, match="before any system"):
        group_system_words(["a.b=1", "mini/audiosep"])


def test_benchmark_labels_tell_overridden_systems_apart():
    from sepkit.benchmark.systems import load_systems
    from sepkit.plugins import get_registry

    systems = load_systems([TINY, TINY, "model.separator.hidden=16"], get_registry())
    assert systems[1].recipe.config.model.separator.hidden == 16
    assert systems[0].recipe.config.model.separator.hidden != 16
    assert len({s.label for s in systems}) == 2 and "model.separator.hidden=16" in systems[1].label
