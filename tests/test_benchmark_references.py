"""Reference rows, oracle rows and bootstrap statistics of ``sepkit benchmark``.

The bootstrap checks use hand-made numbers (no model); the oracle checks build the tiny STFT-mask
recipe and a tiny codec-ar separation recipe (hsm-local over a tiny AudioMAE, mu-law at 200 Hz as
the codec so generation is short) and compare each declared oracle with the same quantity computed
here from torch.stft / torchaudio's mu-law directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
from test_benchmark import TINY, build_testset, noise, tone

from sepkit.benchmark.bootstrap import RESAMPLES, compare_rows, interval, paired_difference

CODEC_AR_RECIPE = """\
name: codec-ar-sep-tiny
model:
  text_encoder: {name: minilm, max_length: 32, freeze: true}
  audio_encoder: {name: audiomae, embed_dim: 64, depth: 2, num_heads: 4, target_frames: 128, num_mel_bins: 32,
                  freeze: true}
  separator: {name: hsm-local, global_dim: 64, hidden: 32, depth: 1, heads: 4, dropout: 0.0, num_patches: 16}
  decoder: {name: codec-ar, codec: {name: mulaw, sample_rate: 200, bits: 6}, frame_rate: 12.5, mel_patches: 2,
            dim: 32, depth: 1, heads: 4, dropout: 0.0, max_seconds: 1.28}
inference: {chunk_seconds: 1.28, overlap_seconds: 0.16, batch_size: 4}
"""


# --- bootstrap ---------------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_mean_and_is_reproducible():
    values = np.random.default_rng(3).gamma(2.0, 1.5, size=200)  # skewed, like per-example LSD
    low, high = interval(values)
    assert low < values.mean() < high
    # reproducible from results.json alone: the documented recipe (numpy's default_rng(0), 1000 resamples
    # of the examples with replacement, 2.5th and 97.5th percentiles of the means) gives the same bounds
    draws = np.random.default_rng(0).integers(0, values.size, size=(1000, values.size))
    assert [low, high] == list(np.percentile(values[draws].mean(axis=1), [2.5, 97.5]))
    assert interval(list(values)) == [low, high]
    assert interval(values, seed=1) != [low, high]
    assert interval([]) is None
    assert interval([2.5]) == [2.5, 2.5]


def test_bootstrap_interval_width_matches_the_normal_approximation():
    values = np.random.default_rng(0).standard_normal(400)
    low, high = interval(values)
    expected = 1.96 * values.std(ddof=1) / math.sqrt(values.size)  # the textbook 95 % half-width
    assert (high - low) / 2 == pytest.approx(expected, rel=0.15)
    assert RESAMPLES == 1000


def test_paired_bootstrap_detects_a_clear_difference_and_not_a_null_one():
    rng = np.random.default_rng(1)
    base = rng.normal(0.0, 5.0, size=100)  # examples differ a lot from each other
    better = base + 0.3 + rng.normal(0.0, 0.1, size=100)  # but one row is 0.3 above the other on each
    clear = paired_difference(better, base)
    assert clear["significant"] and clear["n"] == 100
    assert clear["ci"][0] < 0.3 < clear["ci"][1] and clear["ci"][0] > 0
    # the rows' own intervals overlap: only pairing the examples shows the difference
    a, b = interval(better), interval(base)
    assert a[0] < b[1]
    null = paired_difference(base + np.tile([0.5, -0.5], 50), base)  # differences average exactly 0
    assert not null["significant"] and null["ci"][0] < 0 < null["ci"][1]
    assert paired_difference([1.0], [0.0]) == {"n": 1, "difference": 1.0, "ci": None, "significant": False}


def test_rows_are_compared_on_the_examples_both_scored_per_instruction():
    def example(label, key, task, value):
        return {"system": label, "key": key, "task": task, "error": None, "scores": {"sdr": value}}

    results = {
        "instructions": ["extract", "remove"],
        "metrics": [{"name": "sdr", "higher_is_better": True}],
        "rows": [{"system": s, "instruction": t} for t in ("extract", "remove") for s in ("a", "Mixture")],
        "examples": [
            *(example("a", f"k{i}", "extract", 1.0 + i) for i in range(4)),
            *(example("Mixture", f"k{i}", "extract", float(i)) for i in range(3)),  # k3: not scored here
            example("Mixture", "k3", "extract", None),
            *(example(s, "k0", "remove", 0.0) for s in ("a", "Mixture")),
        ],
    }
    extract, remove = compare_rows(results)
    assert (extract["instruction"], extract["a"], extract["b"], extract["metric"]) == ("extract", "a", "Mixture", "sdr")
    assert extract["n"] == 3 and extract["difference"] == 1.0 and extract["ci"] == [1.0, 1.0]
    assert extract["significant"]
    assert remove["n"] == 1 and remove["ci"] is None and not remove["significant"]


# --- oracles declared by components ------------------------------------------------------------


def _mixture_and_target(seconds: float = 0.7):
    target = torch.from_numpy(tone(440, seconds))
    return target + torch.from_numpy(noise(5, seconds)), target


def test_the_stft_mask_recipe_declares_the_ideal_ratio_mask():
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    (oracle,) = build_pipeline(load_recipe(TINY)).oracles()
    assert oracle.name == "Oracle IRM" and oracle.sample_rate == 16000
    assert oracle.config["audio_encoder"]["n_fft"] == 256 and oracle.config["audio_encoder"]["hop_length"] == 64
    mixture, target = _mixture_and_target()
    lengths = torch.tensor([mixture.shape[-1]])
    with torch.inference_mode():
        estimate = oracle.output(mixture[None], target[None], lengths)[0]
        # the same mask written out with torch.stft (n_fft 256, hop 64, Hann, centred)
        window = torch.hann_window(256)
        spec = lambda w: torch.stft(w, 256, 64, window=window, center=True, return_complex=True)  # noqa: E731
        x, s = spec(mixture), spec(target)
        irm = torch.sqrt(s.abs() ** 2 / (s.abs() ** 2 + (x - s).abs() ** 2))
        expected = torch.istft(irm * x, 256, 64, window=window, center=True, length=mixture.shape[-1])
        torch.testing.assert_close(estimate, expected, rtol=0, atol=1e-5)
        # the mask is 1 where the target is the whole mixture, 0 where it is silent
        whole = oracle.output(mixture[None], mixture[None], lengths)[0]
        torch.testing.assert_close(whole, mixture, rtol=0, atol=1e-5)
        assert oracle.output(mixture[None], torch.zeros_like(mixture)[None], lengths).abs().max() == 0


def codec_ar_recipe(folder) -> str:
    path = folder / "codec_ar_sep_tiny.yaml"
    path.write_text(CODEC_AR_RECIPE)
    return str(path)


def mulaw_round_trip(target: torch.Tensor) -> torch.Tensor:
    """mu-law (64 levels) at 200 Hz and back to 16 kHz, written with torchaudio directly."""
    low = AF.resample(target, 16000, 200)
    codes = AF.mu_law_encoding(low.clamp(-1, 1), 64)
    back = AF.resample(AF.mu_law_decoding(codes, 64).float(), 200, 16000)
    return torch.nn.functional.pad(back, (0, max(0, target.shape[-1] - back.shape[-1])))[: target.shape[-1]]


def test_the_codec_ar_recipe_declares_its_codec_round_trip(tmp_path):
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    pipeline = build_pipeline(load_recipe(codec_ar_recipe(tmp_path)))
    (oracle,) = pipeline.oracles()
    assert oracle.name == "Oracle codec round trip" and oracle.sample_rate == 200
    assert oracle.config == {"codec": {"component": "sepkit_mulaw.codec:MuLawCodec", "sample_rate": 200, "bits": 6}}
    assert oracle.modules == (pipeline.decoder.codec,)
    target = 0.5 * torch.sin(torch.arange(200) / 200 * 2 * math.pi * 7)[None]  # 1 s at the codec's 200 Hz
    with torch.inference_mode():
        out = oracle.output(torch.zeros_like(target), target, torch.tensor([200]))
    expected = AF.mu_law_decoding(AF.mu_law_encoding(target, 64), 64)
    torch.testing.assert_close(out, expected.float())
    assert (out - target).abs().max() < 0.05  # 6-bit mu-law: close, not equal


def test_an_oracle_declared_by_two_systems_is_one_row_computed_once(tmp_path):
    """Two codec-ar systems with the same codec (their decoders differ): one codec round-trip row for both."""
    from sepkit.benchmark import prepare_benchmark, run_benchmark
    from sepkit.benchmark.runner import ClipCaches
    from sepkit_metrics.sdr import plain_sdr

    testset = build_testset(tmp_path / "data", with_missing_clip=False)
    recipe = codec_ar_recipe(tmp_path)
    plan = prepare_benchmark([recipe, recipe, "model.decoder.depth=2"], str(testset), tmp_path / "out",
                             metrics=["sdr", "sdri"], limit=2, batch_size=4, report_examples=1,
                             complexity_seconds=0.5)  # fmt: skip
    results = run_benchmark(plan, progress=False, log=lambda message: None)
    (oracle,) = [r for r in results["references"] if r["kind"] == "oracle"]
    label = "Oracle codec round trip [MuLawCodec, 1 x 64 at 200 Hz]"  # what decides it, not who declares it
    assert oracle["label"] == label and oracle["declared_by"] == ["codec-ar-sep-tiny",
                                                                   "codec-ar-sep-tiny (model.decoder.depth=2)"]
    assert len(list((tmp_path / "out" / "cache").glob("Oracle_codec_round_trip*"))) == 1
    labels = [r["system"] for r in results["rows"] if r["instruction"] == "extract"]
    assert labels == ["codec-ar-sep-tiny", "codec-ar-sep-tiny (model.decoder.depth=2)", label,
                      "Mixture", "Mixture x 0.5", "Silence"]  # fmt: skip
    clips = ClipCaches(testset.parent)
    scored = {e["key"]: e["scores"]["sdr"] for e in results["examples"] if e["system"] == label}
    assert len(scored) == 4
    for example in plan.examples:
        _, target, _ = clips.render(example)
        target = torch.from_numpy(target)
        expected = float(plain_sdr(mulaw_round_trip(target)[None], target[None])[0])
        assert scored[example.key] == pytest.approx(expected, abs=1e-4)


def test_a_system_that_cannot_be_built_gets_no_oracle_row_and_the_run_goes_on(tmp_path, monkeypatch):
    import sepkit.benchmark.runner as runner
    from sepkit.benchmark import prepare_benchmark, run_benchmark

    def broken(self):
        raise RuntimeError("weights do not fit")

    monkeypatch.setattr(runner.SystemRun, "_pipeline", broken)
    testset = build_testset(tmp_path / "data", with_missing_clip=False)
    plan = prepare_benchmark([TINY], str(testset), tmp_path / "out", metrics=["sdr"], limit=1, report_examples=0,
                             complexity_seconds=0.5)  # fmt: skip
    messages = []
    results = run_benchmark(plan, progress=False, log=messages.append)
    assert [r["label"] for r in results["references"]] == ["Mixture", "Mixture x 0.5", "Silence"]
    assert "stft-mask-tiny: no oracle rows (RuntimeError: weights do not fit)" in messages
    system = [e for e in results["examples"] if e["system"] == "stft-mask-tiny"]
    assert len(system) == 2 and all(e["error"] == "RuntimeError: weights do not fit" for e in system)


def test_two_different_oracles_with_the_same_words_get_distinct_labels(tmp_path):
    """Two STFT-mask systems whose IRMs differ only in window length: two rows, told apart by fingerprint."""
    from sepkit.benchmark import prepare_benchmark, run_benchmark

    testset = build_testset(tmp_path / "data", with_missing_clip=False)
    window = ["model.audio_encoder.win_length=128", "model.decoder.win_length=128"]
    plan = prepare_benchmark([TINY, TINY, *window], str(testset), tmp_path / "out", metrics=["sdr"], limit=1,
                             report_examples=0, complexity_seconds=0.5)  # fmt: skip
    results = run_benchmark(plan, progress=False, log=lambda message: None)
    oracles = [r for r in results["references"] if r["kind"] == "oracle"]
    assert len(oracles) == 2
    first, second = (r["label"] for r in oracles)
    assert first == "Oracle IRM [stft n_fft 256, hop_length 64]"
    assert second == f"Oracle IRM [stft n_fft 256, hop_length 64, {oracles[1]['fingerprint'][:6]}]"
    assert [r["declared_by"] for r in oracles] == [["stft-mask-tiny"], [f"stft-mask-tiny ({' '.join(window)})"]]
