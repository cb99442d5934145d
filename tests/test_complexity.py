"""``sepkit complexity`` and ``sepkit.complexity``: parameter split, FLOP counting, the CLI contract.

Uses the tiny recipe on short inputs with one timed run; the model-building cases
take a few seconds each (MiniLM load), the CLI case also spawns the memory subprocess.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sepkit.complexity import count_flops, count_parameters, format_count, measure_complexity

CONTRACT_KEYS = ("params_separation", "params_pretrained", "params_total", "macs", "flops", "rtf", "peak_rss_mb")


@pytest.fixture(scope="module")
def tiny_1s(tiny_recipe):
    return measure_complexity(str(tiny_recipe), seconds=1.0, repeats=1, memory=False)


# --- counting helpers, recipe-independent -----------------------------------------------


def test_linear_flops_are_two_per_multiply_accumulate():
    layer = nn.Linear(10, 20)
    flops = count_flops(layer, torch.randn(3, 10))
    assert flops == 2 * 3 * 10 * 20
    assert flops // 2 == 3 * 10 * 20  # MACs


def test_cpu_attention_is_counted():
    q = k = v = torch.randn(1, 2, 5, 8)
    flops = count_flops(nn.functional.scaled_dot_product_attention, q, k, v)
    assert flops == 2 * (1 * 2 * 5 * 5 * 8) * 2  # q @ k^T and scores @ v


def test_parameters_counted_once_and_split_by_requires_grad():
    a, b = nn.Linear(4, 3), nn.Linear(3, 2)
    b.requires_grad_(False)
    shared = nn.Sequential(a, b, a)  # ``a`` twice: counted once
    assert count_parameters(shared) == {"trainable": 15, "frozen": 8, "total": 23}
    assert count_parameters([a, shared])["total"] == 23
    assert count_parameters(nn.BatchNorm1d(4))["total"] == 8  # running stats are buffers, not parameters


def test_format_count():
    assert format_count(1_234_567) == "1.23 M"
    assert format_count(2.5e9) == "2.50 G"
    assert format_count(0) == "0"
    assert format_count(None) == "-"


# --- a real recipe -----------------------------------------------------------------------


def test_keys_and_types(tiny_1s):
    r = tiny_1s
    for key in ("params_separation", "params_pretrained", "params_total", "macs", "flops"):
        assert isinstance(r[key], int) and r[key] >= 0, key
    assert isinstance(r["rtf"], float) and r["rtf"] > 0
    assert r["peak_rss_mb"] is None  # memory=False
    assert r["params_total"] == r["params_separation"] + r["params_pretrained"]
    assert r["macs"] == r["flops"] // 2 and r["flops"] > 0
    assert r["macs_text"] + r["macs_audio"] == r["macs"]
    assert r["seconds"] == 1.0 and r["sample_rate"] == 16000 and r["repeats"] == 1
    assert set(r["per_component"]) >= {"text_encoder", "audio_encoder", "separator", "decoder"}
    assert sum(c["flops"] for c in r["per_component"].values()) == r["flops"]
    assert sum(c["params"] for c in r["per_component"].values()) == r["params_total"]
    assert r["description"] == "violin" and r["task"] == "extract" and r["text_tokens"] >= 1


def test_parameter_split_matches_hand_count(tiny_1s, tiny_recipe):
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    pipeline = SeparationPipeline.from_recipe(load_recipe(str(tiny_recipe)))
    trainable = sum(p.numel() for p in pipeline.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in pipeline.parameters() if not p.requires_grad)
    assert tiny_1s["params_separation"] == trainable > 0
    assert tiny_1s["params_pretrained"] == frozen > 0  # the frozen MiniLM
    assert tiny_1s["per_component"]["text_encoder"]["frozen"] == frozen
    assert tiny_1s["per_component"]["separator"]["trainable"] == trainable


def test_audio_flops_scale_with_length(tiny_1s, tiny_recipe):
    r2 = measure_complexity(str(tiny_recipe), seconds=2.0, repeats=1, memory=False)
    assert r2["flops_text"] == tiny_1s["flops_text"]  # same query
    ratio = r2["flops_audio"] / tiny_1s["flops_audio"]
    assert ratio == pytest.approx(2.0, rel=0.10)


def test_overrides_change_the_model(tiny_recipe):
    r = measure_complexity(
        str(tiny_recipe), seconds=0.25, repeats=1, memory=False, overrides=["model.separator.hidden=16"]
    )
    assert r["per_component"]["separator"]["params"] < 68_129  # hidden 32 in the tiny recipe


# --- the command line ----------------------------------------------------------------------


def test_cli_json(sepkit_cli, tiny_recipe):
    repo = tiny_recipe.parents[2]  # <repo>/recipes/tiny/stft_mask.yaml
    proc = sepkit_cli("complexity", tiny_recipe, "--seconds", "0.5", "--repeats", "1", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for key in CONTRACT_KEYS:
        assert key in result, key
    assert result["recipe"] == "recipes/tiny/stft_mask.yaml"  # repository-relative, not this machine's path
    assert result["peak_rss_mb"] > 0
    assert result["rss_after_build_mb"] <= result["peak_rss_mb"]


def test_cli_text_table(tiny_recipe, capsys):
    from sepkit.cli import main

    assert main(["complexity", str(tiny_recipe), "--seconds", "0.25", "--repeats", "1", "--no-memory"]) == 0
    out = capsys.readouterr().out
    for word in ("params_separation", "separator", "FLOPs", " M", "not measured"):
        assert word in out, word


def test_cli_bad_recipe_exits_2(sepkit_cli):
    proc = sepkit_cli("complexity", "no/such/recipe.yaml", "--json")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr and "sepkit: error:" in proc.stderr and "not found" in proc.stderr


@pytest.mark.parametrize(
    "args", [("--seconds", "0"), ("--repeats", "0"), ("model.separator.nonsense=1",), ("model=3",)]
)
def test_cli_bad_input_exits_2(tiny_recipe, capsys, args):
    from sepkit.cli import main

    assert main(["complexity", str(tiny_recipe), *args, "--no-memory"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sepkit: error:") and "Traceback" not in err
