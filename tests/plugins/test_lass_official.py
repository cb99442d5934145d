"""LASS-Net's released checkpoint (``LASSNet.pt``) read by ``bert`` + ``lass-resunet``, and parity with its code."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from sepkit_lass.official import (
    from_official_key,
    load_official_state_dict,
    official_key_shapes,
    read_official_checkpoint,
    separator_to_official_key,
    text_encoder_to_official_key,
)

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]
TINY_BERT = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
             "vocab_size": 300}  # fmt: skip
TINY_SEP = {"input_dim": 129, "query_dim": 16, "cond_dim": 8, "base_channels": 2}
# recipes/lass.yaml at the tiny sizes above (n_fft 256 -> 129 bins; query_dim follows the encoder)
TINY_OVERRIDES = [
    *(f"model.text_encoder.{k}={v}" for k, v in TINY_BERT.items()),
    "model.audio_encoder.n_fft=256",
    "model.audio_encoder.hop_length=128",
    "model.separator.cond_dim=8",
    "model.separator.base_channels=2",
]


def load_fixture_script():
    """``tests/fixtures/make_lass_parity.py`` as a module (the seeded-weights procedure lives there)."""
    spec = importlib.util.spec_from_file_location("make_lass_parity", FIXTURES / "make_lass_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = load_fixture_script()


def tiny_parts():
    registry = get_registry()
    text_encoder = registry.build("text_encoder", {"name": "bert", "append_sep": False, **TINY_BERT}).eval()
    separator = registry.build("separator", {"name": "lass-resunet", **TINY_SEP}).eval()
    return text_encoder, separator


def release(text_encoder, separator, seed: int = 3) -> dict:
    """Seeded random weights for these components in the release's layout: {"model": {"module.<key>": ...}}."""
    return SCRIPT.release_layout(SCRIPT.random_official_state(official_key_shapes(text_encoder, separator), seed))


def assert_loaded(text_encoder, separator, model: dict) -> None:
    for key, value in text_encoder.state_dict().items():
        assert torch.equal(value, model["module." + text_encoder_to_official_key(key)]), key
    for key, value in separator.state_dict().items():
        assert torch.equal(value, model["module." + separator_to_official_key(key)]), key


# --- key mapping --------------------------------------------------------------------------
def test_full_size_key_layout_is_the_references():
    """Every key of ``DataParallel(LASSNet).state_dict()`` (read from the reference by the fixture script) maps
    onto sepkit's full-size bert + lass-resunet with its shape, and every sepkit key maps back onto it."""
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    listing = json.loads((FIXTURES / "lass_official_keys.json").read_text())
    reference = {k.removeprefix("module."): tuple(v) for k, v in listing["keys"].items()}
    assert all(k.startswith("module.") for k in listing["keys"]) and len(reference) == 695
    pipeline = SeparationPipeline.from_recipe(load_recipe("lass"))
    text_encoder, separator = pipeline.text_encoder, pipeline.separator
    assert official_key_shapes(text_encoder, separator) == reference  # sepkit -> official, shapes included
    own = {"text_encoder": text_encoder.state_dict(), "separator": separator.state_dict()}
    for key, shape in reference.items():  # official -> sepkit
        kind, ours = from_official_key(key)
        assert tuple(own[kind][ours].shape) == shape, key
    assert sum(len(v) for v in own.values()) == len(reference)
    assert set(SCRIPT.release_layout({})["model"]) == set(listing["legacy_keys"])  # the transformers 4.13 buffer


def test_film_and_query_projection_keys_are_renamed():
    assert separator_to_official_key("query_projection.weight") == "text_embedder.linear_layer.0.weight"
    assert (separator_to_official_key("decoder_block3.conv_block2.film_res.2.bias")
            == "UNet.decoder_block3.conv_block2.film_res.linear.2.bias")  # fmt: skip
    assert separator_to_official_key("encoder_block1.conv_block1.bn1.running_var") == (
        "UNet.encoder_block1.conv_block1.bn1.running_var"
    )
    assert text_encoder_to_official_key("model.encoder.layer.0.attention.self.query.weight") == (
        "text_embedder.bert_layer.encoder.layer.0.attention.self.query.weight"
    )
    assert from_official_key("UNet.conv_block7.film1.linear.0.weight") == ("separator", "conv_block7.film1.0.weight")
    assert from_official_key("UNet.conv_block7.film1.0.weight") is None  # the reference's FiLM MLP is Film.linear
    assert from_official_key("text_embedder.linear_layer.1.weight") is None  # the ReLU has no weights
    assert from_official_key("ss_model.base.encoder_block1.conv_block1.bn1.weight") is None


# --- parity with the reference code (golden fixture) ---------------------------------------
@pytest.mark.slow
def test_golden_parity_with_the_reference_lassnet():
    """recipes/lass.yaml's pipeline equals LASS-Net's own code (``make_lass_parity.py``, see its docstring):
    the mask of ``LASSNet(|X|, '[CLS] ' + caption)`` and the wave of ``utils/stft.py``'s inverse of mask x |X|."""
    fixture = torch.load(FIXTURES / "lass_parity.pt", weights_only=True)
    assert fixture["seed"] == SCRIPT.SEED and fixture["sample_rate"] == SCRIPT.SAMPLE_RATE
    expected = fixture["expected_mask"], fixture["expected_wave"]
    assert 0.1 < expected[0].std() and expected[1].std() > 1e-2, "the golden output is degenerate"
    pipeline = SCRIPT.build_sepkit(fixture["seed"])
    mask, wave = SCRIPT.sepkit_outputs(pipeline, fixture["mixture"], fixture["captions"])
    assert mask.shape == expected[0].shape and wave.shape == fixture["mixture"].shape
    diffs = SCRIPT.max_abs_diffs((mask, wave), expected)
    assert all(diffs[k] < fixture["tolerance"][k] for k in diffs), f"max abs differences from the reference {diffs}"


# --- official files --------------------------------------------------------------------------
def test_release_layout_loads_into_both_components(tmp_path):
    text_encoder, separator = tiny_parts()
    payload = release(text_encoder, separator)
    torch.save({**payload, "epoch": 41, "optimizer": {"state": {}, "param_groups": [{"lr": 3e-4}]}}, tmp_path / "a.pt")
    with pytest.warns(UserWarning, match="stand-in"):  # the file holds no tokenizer
        assert text_encoder.load_official_checkpoint(str(tmp_path / "a.pt")) is True
    assert separator.load_official_checkpoint(str(tmp_path / "a.pt")) is True
    assert_loaded(text_encoder, separator, payload["model"])
    parts = read_official_checkpoint(tmp_path / "a.pt")
    assert parts.prefix == "module." and parts.dropped == ["text_embedder.bert_layer.embeddings.position_ids"]


@pytest.mark.parametrize("layout", ["bare", "bare without module."])
def test_bare_state_dicts_load(tmp_path, layout):
    text_encoder, separator = tiny_parts()
    model = release(text_encoder, separator)["model"]
    state = model if layout == "bare" else {k.removeprefix("module."): v for k, v in model.items()}
    torch.save(state, tmp_path / "bare.pt")
    assert separator.load_official_checkpoint(str(tmp_path / "bare.pt")) is True
    load_official_state_dict(text_encoder, None, state)
    assert_loaded(text_encoder, separator, model)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    text_encoder, separator = tiny_parts()
    model = release(text_encoder, separator)["model"]
    del model["module.UNet.decoder_block2.conv_block3.film2.linear.2.weight"]
    del model["module.text_embedder.linear_layer.0.bias"]
    model["module.UNet.encoder_block7.conv_block1.conv1.weight"] = torch.zeros(1)
    torch.save({"model": model}, tmp_path / "odd.pt")
    with pytest.raises(SepkitError, match="2 missing keys") as info:
        separator.load_official_checkpoint(str(tmp_path / "odd.pt"))
    message = str(info.value)
    assert "module.UNet.decoder_block2.conv_block3.film2.linear.2.weight" in message
    assert "module.text_embedder.linear_layer.0.bias" in message
    assert "1 unexpected keys: module.UNet.encoder_block7.conv_block1.conv1.weight" in message
    del model["module.text_embedder.bert_layer.encoder.layer.0.output.dense.bias"]
    with pytest.raises(SepkitError, match="1 missing keys: module.text_embedder.bert_layer.encoder.layer.0.output"):
        load_official_state_dict(text_encoder, None, model)


def test_keys_outside_the_layout_are_an_error(tmp_path):
    text_encoder, separator = tiny_parts()
    model = release(text_encoder, separator)["model"]
    model["module.loss.weight"] = torch.zeros(1)
    model["module.UNet.conv_block7.film1.0.weight"] = torch.zeros(1)  # not the reference's Film.linear spelling
    torch.save({"model": model}, tmp_path / "extra.pt")
    for module in (text_encoder, separator):
        with pytest.raises(SepkitError, match="2 keys are not in LASS-Net's layout") as info:
            module.load_official_checkpoint(str(tmp_path / "extra.pt"))
        assert "module.loss.weight" in str(info.value) and "module.UNet.conv_block7.film1.0.weight" in str(info.value)


def test_mis_shaped_weights_are_an_error(tmp_path):
    text_encoder, separator = tiny_parts()
    wider = get_registry().build("separator", {"name": "lass-resunet", **TINY_SEP, "cond_dim": 12})
    torch.save(release(text_encoder, wider), tmp_path / "wide.pt")
    with pytest.raises(SepkitError, match="mis-shaped"):
        separator.load_official_checkpoint(str(tmp_path / "wide.pt"))


def test_other_files_are_not_claimed(tmp_path):
    text_encoder, separator = tiny_parts()
    torch.save({"state_dict": {"ss_model.base.encoder_block1.conv_block1.bn1.weight": torch.ones(2)}}, tmp_path / "a")
    torch.save({"model": {"encoder.weight": torch.ones(2)}}, tmp_path / "b")
    for name in ("a", "b"):
        assert text_encoder.load_official_checkpoint(str(tmp_path / name)) is False
        assert separator.load_official_checkpoint(str(tmp_path / name)) is False


def test_pickled_objects_are_refused_with_the_command_that_keeps_the_weights(tmp_path):
    text_encoder, separator = tiny_parts()
    payload = release(text_encoder, separator)
    torch.save({**payload, "args": argparse.Namespace(lr=3e-4)}, tmp_path / "LASSNet.pt")
    with pytest.raises(SepkitError, match="weights_only=True") as info:
        separator.load_official_checkpoint(str(tmp_path / "LASSNet.pt"))
    assert "torch.save({'model': c['model']}" in str(info.value)


# --- through the pipeline: sepkit.load and sepkit separate ------------------------------------
@pytest.mark.slow
def test_full_size_release_file_loads_through_sepkit_load(tmp_path):
    import sepkit
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    shapes = SeparationPipeline.from_recipe(load_recipe("lass"))
    payload = release(shapes.text_encoder, shapes.separator, seed=5)
    torch.save(payload, tmp_path / "LASSNet.pt")
    with pytest.warns(UserWarning, match="stand-in"):
        system = sepkit.load("lass", checkpoint=str(tmp_path / "LASSNet.pt"))
    assert system.trained
    assert_loaded(system.pipeline.text_encoder, system.pipeline.separator, payload["model"])


@pytest.mark.slow
def test_separate_cli_loads_the_release_layout_and_names_a_missing_key(tmp_path, sepkit_cli):
    import soundfile as sf

    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    pipeline = SeparationPipeline.from_recipe(load_recipe("lass", TINY_OVERRIDES))
    payload = release(pipeline.text_encoder, pipeline.separator)
    torch.save(payload, tmp_path / "LASSNet.pt")
    sf.write(tmp_path / "mix.wav", 0.1 * torch.randn(8000).numpy(), 16000)
    run = ["separate", tmp_path / "mix.wav", *TINY_OVERRIDES, "-q", "extract the dog barking", "--recipe", "lass"]
    proc = sepkit_cli(*run, "--ckpt", tmp_path / "LASSNet.pt", "-o", tmp_path / "dog.wav")
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "dog.wav").frames == 8000

    del payload["model"]["module.UNet.after_conv2.bias"]
    torch.save(payload, tmp_path / "broken.pt")
    bad = sepkit_cli(*run, "--ckpt", tmp_path / "broken.pt", "-o", tmp_path / "bad.wav")
    assert bad.returncode == 2, bad.stderr
    assert "1 missing keys: module.UNet.after_conv2.bias" in bad.stderr and not (tmp_path / "bad.wav").exists()
