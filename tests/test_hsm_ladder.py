"""The HSM-TSS oracle ladder's statistics (benchmarks/hsm_ladder): token accuracy, codebook usage and entropy,
output RMS, and the hooks that record the generated codes and give the local stage the true G."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

LADDER = Path(__file__).resolve().parents[1] / "benchmarks" / "hsm_ladder"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, LADDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tokens = _load("ladder_tokens")


def test_token_accuracy_counts_equal_codes_over_the_given_frames_and_all_groups():
    target = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    generated = np.array([[1, 0, 3, 9, 9], [5, 6, 0, 8, 8]])  # 5 of the first 8 equal; frame 3 is past `frames`
    assert tokens.token_accuracy(generated, target, 3) == pytest.approx(4 / 6)
    assert tokens.token_accuracy(generated, target, 4) == pytest.approx(5 / 8)
    assert tokens.token_accuracy(target, target, 4) == 1.0
    with pytest.raises(ValueError):
        tokens.token_accuracy(generated, target, 5)  # more frames than the target has
    with pytest.raises(ValueError):
        tokens.token_accuracy(generated[:1], target, 2)  # group counts differ


def test_usage_and_entropy_per_group_pooled_over_examples():
    hist = tokens.CodeHistogram(num_groups=3, codebook_size=4)
    hist.add(np.array([[0, 0, 1, 1], [2, 2, 2, 2], [0, 1, 2, 3]]))
    hist.add(np.array([[0, 1], [2, 2], [0, 1]]))  # pooled: counts add up across examples
    np.testing.assert_allclose(hist.usage(), [2 / 4, 1 / 4, 4 / 4])
    # group 0: 3 x code 0, 3 x code 1 -> 1 bit; group 1: one code -> 0 bits;
    # group 2: codes 0, 1 twice, 2, 3 once -> p = (1/3, 1/3, 1/6, 1/6)
    p = np.array([1 / 3, 1 / 3, 1 / 6, 1 / 6])
    np.testing.assert_allclose(hist.entropy_bits(), [1.0, 0.0, float(-(p * np.log2(p)).sum())])
    summary = hist.summary()
    assert summary["frames"] == 6
    assert summary["mean_usage"] == pytest.approx((0.5 + 0.25 + 1.0) / 3)


def test_uniform_use_of_a_codebook_gives_log2_k_bits_and_full_usage():
    hist = tokens.CodeHistogram(num_groups=2, codebook_size=256)
    hist.add(np.stack([np.arange(256), np.full(256, 7)]))
    np.testing.assert_allclose(hist.entropy_bits(), [8.0, 0.0])
    np.testing.assert_allclose(hist.usage(), [1.0, 1 / 256])


def test_histogram_refuses_codes_outside_the_codebook_or_of_other_groups():
    hist = tokens.CodeHistogram(num_groups=2, codebook_size=4)
    with pytest.raises(ValueError):
        hist.add(np.array([[0, 4], [0, 1]]))
    with pytest.raises(ValueError):
        hist.add(np.array([[0, 1]]))
    assert tokens.CodeHistogram(1, 4).entropy_bits()[0] == 0.0  # nothing counted: 0 bits, not NaN


def test_rms_db_and_the_hooks():
    run = _load("run")
    target = torch.randn(2, 1000)
    np.testing.assert_allclose(run.rms_db(0.5 * target, target).numpy(), [20 * math.log10(0.5)] * 2, atol=1e-9)
    assert float(run.rms_db(torch.zeros(1, 10), torch.ones(1, 10))[0]) == pytest.approx(-200.0)

    class Decoder:
        def generate_codes(self, features):
            return torch.full((features, 2, 3), 5)

        def decode(self, features):
            return self.generate_codes(features).float().sum()

    decoder = Decoder()
    with run.recording_codes(decoder) as recorded:
        decoder.decode(2)
        decoder.decode(1)
    assert [tuple(c.shape) for c in recorded] == [(2, 2, 3), (1, 2, 3)]
    assert "generate_codes" not in vars(decoder)  # the method is back

    calls = []

    class Separator:
        def separate(self, features, query, tasks):
            return "predicted"

        def separate_with_global(self, features, query, g):
            calls.append(g)
            return "given"

    separator, g = Separator(), torch.ones(2, 4)
    features = SimpleNamespace(frames=torch.zeros(2, 3, 5))
    with run.global_feature_given(separator, g):
        assert separator.separate(features, None, None) == "given"
    assert calls[0] is g or torch.equal(calls[0], g)
    assert separator.separate(features, None, None) == "predicted"


def test_summaries_and_the_markdown_table():
    run, report = _load("run"), _load("ladder_report")
    examples = []
    for i in range(4):
        for task in ("extract", "remove"):
            key = f"m{i}/{task}"
            scores = {"lsd": 3.0 + i, "token_accuracy": 0.1}
            examples.append({"row": "chain", "key": key, "task": task, "scores": scores})
            examples.append({"row": "Mixture", "key": key, "task": task, "scores": {"lsd": 2.0 + i}})
    summary = run.summarise_rows(examples, ["chain", "Mixture"])
    chain = next(s for s in summary if s["row"] == "chain" and s["task"] == "extract")
    assert chain["n"] == 4 and chain["mean"]["lsd"] == pytest.approx(4.5)
    low, high = chain["ci"]["lsd"]
    assert 3.0 <= low < 4.5 < high <= 6.0
    diffs = run.paired(examples, [("chain", "Mixture")], ("lsd",))
    assert [d["difference"] for d in diffs] == [pytest.approx(1.0)] * 2 and all(d["significant"] for d in diffs)
    results = {
        "rows": [
            {"key": "chain", "label": "4 HSM-TSS", "rung": 4},
            {"key": "Mixture", "label": "Mixture", "rung": None},
        ],
        "summary": summary,
    }
    table = report.score_table(results, "remove")
    assert table[2].startswith("| 4 HSM-TSS | 4 | - | - | 4.500 ± ")
    assert table[2].endswith("| - | 0.100 ± 0.000 |")
    assert table[3].startswith("| *Mixture* | 4 |")


def test_a_text_the_parser_splits_keeps_the_manifest_description():
    from sepkit.instructions import RuleBasedInstructionParser

    run = _load("run")
    pipeline = SimpleNamespace(instruction_parser=RuleBasedInstructionParser())
    record = SimpleNamespace(id="m")
    caption = "drums and cymbals playing a rhythm"
    examples = [
        run.Example(record, 0, "extract", "extract violin music", "violin music"),
        run.Example(record, 1, "remove", f"remove {caption}", caption),
    ]
    descriptions, compound = run.parse_instructions(pipeline, examples)
    assert descriptions == ["violin music", caption]
    assert compound == ["m/1"]


def test_decoder_rung_decodes_as_the_chain_recipe_not_at_codec_ar_defaults():
    from sepkit.recipe import load_recipe

    decoder_rung = _load("decoder_rung")
    overrides = decoder_rung.chain_decoding("mini/hsm_tss")
    assert "model.decoder.sampling=sample" in overrides and "model.decoder.temperature=1.0" in overrides
    trained = load_recipe("mini/hsm_tss_decoder").section("decoder")
    assert "sampling" not in trained  # the training recipe alone would decode greedily
    decoding = load_recipe("mini/hsm_tss_decoder", overrides).section("decoder")
    assert (decoding["sampling"], decoding["temperature"], decoding["seed"]) == ("sample", 1.0, 0)


def test_lsd_by_level_adds_up_to_the_lsd_metric_and_puts_silent_target_frames_lowest():
    from sepkit.plugins import get_registry

    levels = _load("ladder_levels")
    lsd = get_registry().build("metric", {"name": "lsd"}, where="metric lsd")
    generator = torch.Generator().manual_seed(0)
    rate, examples = 16000, []
    for gain in (0.5, 2.0):
        target = torch.randn(rate, generator=generator) * torch.linspace(0, 1, rate)
        target[: rate // 4] = 0.0  # a silent first quarter: no level, lowest bin
        estimate = gain * target + 0.01 * torch.randn(rate, generator=generator)
        example = {"lsd_levels": levels.lsd_by_level(estimate, target, rate)}
        frames, sums = example["lsd_levels"]["frames"], example["lsd_levels"]["sums"]
        expected = float(lsd.score(estimate[None], target[None], rate)[0])
        assert sum(sums) / sum(frames) == pytest.approx(expected, rel=1e-9)
        assert frames[0] >= 20 and frames[-1] > 0  # 23 frames see only the silent quarter
        examples.append((example, expected))
    summary = levels.level_summary([e for e, _ in examples])
    assert sum(summary["contribution"]) == pytest.approx(np.mean([v for _, v in examples]), rel=1e-9)
    assert sum(summary["share"]) == pytest.approx(1.0)
    assert len(summary["mean"]) == len(levels.LEVEL_NAMES)


def test_level_sections_follow_the_ladders_row_order_and_add_up_the_contributions():
    report = _load("ladder_report")
    summary = {"share": [1.0, 0.0], "mean": [2.0, None], "contribution": [2.0, 0.0]}  # no loud frame
    results = {
        "rows": [{"key": "codec", "label": "1 Codec"}, {"key": "Mixture", "label": "Mixture"}],
        "lsd_levels": {"bins": ["quiet", "loud"], "extract": {"Mixture": summary, "codec": summary}},
    }
    lines = report.level_sections(results)
    assert lines[0] == "### Extraction" and not any("Removal" in line for line in lines)
    rows = [line for line in lines if line.startswith("| 1 Codec") or line.startswith("| Mixture")]
    assert rows == ["| 1 Codec | 2.000 (2.000) | - | 2.000 |", "| Mixture | 2.000 (2.000) | - | 2.000 |"]
    assert "| *share of the frames* | 100.0 % | 0.0 % | |" in lines
