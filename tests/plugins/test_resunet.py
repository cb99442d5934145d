"""The resunet30 plugin: AudioSep's ResUNet30 at full size, equal to the official model, loading its checkpoints."""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.plugins import get_registry
from sepkit.testing import SeparatorContract
from sepkit_resunet.official import (
    load_official_state_dict,
    official_key_shapes,
    read_official_checkpoint,
    torchlibrosa_key_shapes,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REPO = Path(__file__).resolve().parents[2]
TINY = {"input_dim": 129, "query_dim": 16, "base_channels": 4}  # n_fft 256; the registry example

# Parameter counts of the official model, measured on github.com/Audio-AGI/AudioSep at commit 944583f
# (models/resunet.py) with torch 2.9.1 and torchlibrosa 0.1.0:
#     m = ResUNet30(input_channels=1, output_channels=1, condition_size=512)
#     sum(p.numel() for p in m.parameters())                                  -> 39_034_949
#     ... of names base.stft.* / base.istft.* (torchlibrosa DFT convs, frozen)  -> 12_587_008
#     sum(p.numel() for p in m.parameters() if p.requires_grad)               -> 26_447_941
#     ... of base.decoder_block<N>.bn2.* and film.decoder_block<N>->beta2.*   ->    824_000 (never used in forward)
OFFICIAL_TOTAL = 39_034_949
OFFICIAL_TORCHLIBROSA = 12_587_008
OFFICIAL_TRAINABLE = 26_447_941
OFFICIAL_UNUSED = 824_000
SEPKIT_FULL_SIZE = 25_623_941  # = OFFICIAL_TRAINABLE - OFFICIAL_UNUSED


def load_fixture_script():
    """``tests/fixtures/make_resunet30_parity.py`` as a module (the seeded-weights procedure lives there)."""
    spec = importlib.util.spec_from_file_location("make_resunet30_parity", FIXTURES / "make_resunet30_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(**options):
    return get_registry().build("separator", {"name": "resunet30", **options}).eval()


def query_for(condition: torch.Tensor) -> TextEmbedding:
    return TextEmbedding(condition[:, None], torch.ones(condition.shape[0], 1, dtype=torch.bool), condition)


def random_frames(batch: int, frames: int, bins: int, seed: int = 0) -> AudioFeatures:
    g = torch.Generator().manual_seed(seed)
    spec = torch.randn(batch, frames, bins, generator=g, dtype=torch.complex64)
    return AudioFeatures(spec, torch.full((batch,), frames, dtype=torch.long), 100.0)


class TestResUNet30(SeparatorContract):
    name = "resunet30"  # config: the registry example (TINY)
    # Opt-out, reason: AudioSep's ResUNet30 reads no lengths. Padded frames pass bn0 (non-zero there), the time
    # axis is zero-padded to a multiple of 32 after bn0 and a 6-level UNet's receptive field spans every frame,
    # exactly as in the official code this port matches (golden output below); masking each layer to the
    # valid frames would change the official model's output. Measured: rows of 25 / 32 frames batched to 40
    # differ from alone by 2% / 28% (relative L2), max abs 0.083 / 2.4.
    padding_invariant = False


# --- architecture -------------------------------------------------------------------
def test_full_size_matches_official_parameter_count():
    separator = build(input_dim=1025, query_dim=512)
    assert separator.channels == (32, 64, 128, 256, 384, 384)
    assert separator.time_multiple == 32
    assert OFFICIAL_TRAINABLE == OFFICIAL_TOTAL - OFFICIAL_TORCHLIBROSA
    assert sum(p.numel() for p in separator.parameters()) == SEPKIT_FULL_SIZE == OFFICIAL_TRAINABLE - OFFICIAL_UNUSED
    # The official key layout derived from sepkit's modules accounts for every official parameter.
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    shapes = {**official_key_shapes(separator), **torchlibrosa_key_shapes(2048)}
    parameters = {k: s for k, s in shapes.items() if not k.endswith(buffers) and k != "base.istft.ola_window"}
    assert sum(math.prod(s) for s in parameters.values()) == OFFICIAL_TOTAL


@pytest.mark.parametrize("channels", [1, 8, 33])
def test_channel_bias_on_channels_last_maps_equals_the_plain_broadcast(channels):
    from sepkit.layers.resunet import add_channel_bias

    g = torch.Generator().manual_seed(channels)
    x = torch.randn(3, channels, 6, 10, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
    bias = torch.randn(3, channels, 1, 1, generator=g, requires_grad=True)
    grad = torch.randn(3, channels, 6, 10, generator=g)
    got = add_channel_bias(x, bias)
    want = x + bias
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    if channels > 1:  # a 1-channel map is both layouts; otherwise the output keeps x's layout
        assert got.is_contiguous(memory_format=torch.channels_last)
    got_grads = torch.autograd.grad(got, (x, bias), grad)
    want_grads = torch.autograd.grad(want, (x, bias), grad)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("threads", [1, 2])
def test_norm_film_act_equals_the_plain_ops_in_either_layout_path(threads):
    import copy

    import torch.nn.functional as F

    from sepkit.layers.resunet import LEAKY_SLOPE, norm_film_act

    g = torch.Generator().manual_seed(threads)
    x = torch.randn(2, 8, 6, 10, generator=g).contiguous(memory_format=torch.channels_last).requires_grad_()
    bias = torch.randn(2, 8, 1, 1, generator=g, requires_grad=True)
    grad = torch.randn(2, 8, 6, 10, generator=g).contiguous(memory_format=torch.channels_last)
    bn = torch.nn.BatchNorm2d(8)
    bn_plain = copy.deepcopy(bn)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # 8 channels on 2 threads: computed channels-first and handed back
    try:
        got = norm_film_act(x, bn, bias)
    finally:
        torch.set_num_threads(before)
    want = F.leaky_relu(bn_plain(x) + bias, LEAKY_SLOPE)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(bn.running_var, bn_plain.running_var)
    got_grads = torch.autograd.grad(got, (x, bias), grad)
    want_grads = torch.autograd.grad(want, (x, bias), grad)
    assert got_grads[0].is_contiguous(memory_format=torch.channels_last)  # the gradient comes back in x's layout
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b)


def test_every_feature_map_of_the_unet_is_channels_last():
    separator = build(**TINY)
    layouts = {}
    for name, module in separator.named_modules():
        # bn0 normalises a transposed [B, bins, T, 1] input; pre_conv's output is made channels-last after it
        if isinstance(module, torch.nn.Conv2d | torch.nn.BatchNorm2d) and name not in ("bn0", "pre_conv"):
            module.register_forward_hook(
                lambda m, i, o, name=name: layouts.update({name: o.is_contiguous(memory_format=torch.channels_last)})
            )
    with torch.no_grad():
        separator.separate(random_frames(2, 40, 129), query_for(torch.randn(2, 16)), torch.zeros(2, dtype=torch.long))
    assert len(layouts) > 50 and [n for n, ok in layouts.items() if not ok] == []  # mixed layouts: bf16 1.3x slower


def test_magnitude_mask_is_capped_and_frames_are_kept():
    separator = build(**TINY)
    mixture = random_frames(2, 37, 129)  # 37 frames: padded to 64 inside, cropped back
    with torch.no_grad():
        out = separator.separate(mixture, query_for(torch.randn(2, 16)), torch.zeros(2, dtype=torch.long))
    assert out.frames.shape == mixture.frames.shape and out.frames.dtype == torch.complex64
    assert bool((out.frames.abs() <= mixture.frames.abs() * (1 + 1e-5) + 1e-6).all())  # sigmoid mask <= 1
    assert bool((out.frames[..., -1] == 0).all())  # the dropped top bin comes back with zero logits: no output
    assert torch.equal(out.lengths, mixture.lengths)


def test_query_changes_the_output():
    separator = build(**TINY)
    mixture = random_frames(1, 40, 129)
    tasks = torch.zeros(1, dtype=torch.long)
    with torch.no_grad():
        a = separator.separate(mixture, query_for(torch.randn(1, 16)), tasks).frames
        b = separator.separate(mixture, query_for(torch.randn(1, 16)), tasks).frames
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("options", [{"input_dim": 1024}, {"input_dim": 97}, {"channel_multipliers": [1, 2, 4]}])
def test_bad_sizes_are_clear_errors(options):
    with pytest.raises(SepkitError, match="resunet30"):
        build(**{**TINY, **options})


# --- parity with the official code (golden fixture) -------------------------------------
def test_golden_parity_with_official_resunet30():
    """wave -> stft -> resunet30 -> istft equals the official ``ResUNet30(...)['waveform']`` stored in the fixture.

    Weights: ``random_official_state`` of the fixture script (seeded, official key names), loaded
    through ``sepkit_resunet.official``. The fixture was made against AudioSep's own code by
    ``tests/fixtures/make_resunet30_parity.py``; see its docstring.
    """
    fixture = torch.load(FIXTURES / "resunet30_parity.pt", weights_only=True)
    script = load_fixture_script()
    assert fixture["seed"] == script.SEED and fixture["sample_rate"] == script.SAMPLE_RATE
    expected = fixture["expected"]
    assert expected.std() > 1e-2, "the golden output is degenerate"
    models = script.build_sepkit(fixture["seed"])
    got = script.sepkit_output(models, fixture["mixture"], fixture["condition"])
    assert got.shape == expected.shape
    diff = (got - expected).abs().max().item()
    assert diff < fixture["tolerance"], f"max abs difference {diff:.3g} from the official output"


# --- official checkpoints ---------------------------------------------------------------
def official_layout_state(separator, seed: int = 3) -> dict:
    """Random weights in AudioSep's Lightning layout: ss_model.* incl. torchlibrosa keys, and query_encoder.*."""
    script = load_fixture_script()
    state = {f"ss_model.{k}": v for k, v in script.random_official_state(official_key_shapes(separator), seed).items()}
    n_fft = 2 * (separator.input_dim - 1)
    g = torch.Generator().manual_seed(seed)
    state.update({f"ss_model.{k}": torch.randn(s, generator=g) for k, s in torchlibrosa_key_shapes(n_fft).items()})
    state["query_encoder.model.text_branch.embeddings.word_embeddings.weight"] = torch.randn(10, 8, generator=g)
    state["query_encoder.model.audio_projection.0.weight"] = torch.randn(8, 8, generator=g)
    return state


def save_lightning(path: Path, state: dict) -> Path:
    torch.save(
        {
            "epoch": 391,
            "global_step": 3920000,
            "pytorch-lightning_version": "2.0.0",
            "state_dict": state,
            "loops": {},
            "callbacks": {},
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0]}]}],
            "lr_schedulers": [{"base_lrs": [1e-3], "last_epoch": 3920000}],
        },
        path,
    )
    return path


def assert_loaded(separator, state: dict) -> None:
    from sepkit_resunet.official import to_official_key

    for key, value in separator.state_dict().items():
        assert torch.equal(value, state[f"ss_model.{to_official_key(key)}"]), key


def test_loads_official_lightning_checkpoint(tmp_path):
    separator = build(**TINY)
    state = official_layout_state(separator)
    path = save_lightning(tmp_path / "audiosep_base_4M_steps.ckpt", state)
    assert separator.load_official_checkpoint(str(path)) is True
    assert_loaded(separator, state)
    parts = read_official_checkpoint(path)
    assert set(parts.query_encoder) == {
        "model.text_branch.embeddings.word_embeddings.weight",
        "model.audio_projection.0.weight",
    }
    assert parts.meta == {"epoch": 391, "global_step": 3920000}
    assert "base.stft.conv_real.weight" in parts.dropped and "base.decoder_block1.bn2.running_var" in parts.dropped
    assert "film.decoder_block6->beta2.weight" in parts.dropped


def test_loads_bare_resunet30_state_dict(tmp_path):
    separator = build(**TINY)
    state = official_layout_state(separator)
    bare = {k.removeprefix("ss_model."): v for k, v in state.items() if k.startswith("ss_model.")}
    torch.save(bare, tmp_path / "resunet30.pth")
    assert separator.load_official_checkpoint(str(tmp_path / "resunet30.pth")) is True
    assert_loaded(separator, state)


def test_missing_official_key_is_listed(tmp_path):
    separator = build(**TINY)
    state = official_layout_state(separator)
    del state["ss_model.base.encoder_block3.conv_block1.conv2.weight"]
    del state["ss_model.film.decoder_block2->conv_block2->beta1.bias"]
    path = save_lightning(tmp_path / "missing.ckpt", state)
    with pytest.raises(SepkitError, match="2 missing keys") as info:
        separator.load_official_checkpoint(str(path))
    assert "ss_model.base.encoder_block3.conv_block1.conv2.weight" in str(info.value)
    assert "ss_model.film.decoder_block2->conv_block2->beta1.bias" in str(info.value)


@pytest.mark.parametrize("extra", ["ss_model.base.extra_block.weight", "ss_model.film.extra->beta1.weight"])
def test_unknown_official_key_is_listed(tmp_path, extra):
    separator = build(**TINY)
    state = official_layout_state(separator)
    state[extra] = torch.zeros(3)
    path = save_lightning(tmp_path / "extra.ckpt", state)
    with pytest.raises(SepkitError, match="unexpected keys") as info:
        separator.load_official_checkpoint(str(path))
    assert extra in str(info.value)


def test_key_outside_separator_and_query_encoder_is_an_error(tmp_path):
    separator = build(**TINY)
    state = official_layout_state(separator)
    state["loss_module.weight"] = torch.zeros(1)
    with pytest.raises(SepkitError, match="loss_module.weight"):
        separator.load_official_checkpoint(str(save_lightning(tmp_path / "odd.ckpt", state)))


def test_mis_shaped_official_weights_are_an_error(tmp_path):
    separator = build(**TINY)
    path = save_lightning(tmp_path / "wide.ckpt", official_layout_state(build(**{**TINY, "query_dim": 24})))
    with pytest.raises(SepkitError, match="mis-shaped"):
        separator.load_official_checkpoint(str(path))


def test_other_files_are_not_claimed(tmp_path):
    separator = build(**TINY)
    before = {k: v.clone() for k, v in separator.state_dict().items()}
    torch.save({"state_dict": {"separator.proj_in.weight": torch.zeros(2)}, "recipe": {}}, tmp_path / "other.ckpt")
    assert separator.load_official_checkpoint(str(tmp_path / "other.ckpt")) is False
    assert all(torch.equal(before[k], v) for k, v in separator.state_dict().items())


def test_pickled_objects_are_refused_with_a_hint(tmp_path):
    separator = build(**TINY)
    torch.save({"state_dict": {}, "hparams": argparse.Namespace(lr=1e-3)}, tmp_path / "pickled.ckpt")
    with pytest.raises(SepkitError, match="weights_only=True"):
        separator.load_official_checkpoint(str(tmp_path / "pickled.ckpt"))


def test_official_state_dict_in_memory():
    separator = build(**TINY)
    state = official_layout_state(separator)
    parts = load_official_state_dict(separator, state)
    assert len(parts.query_encoder) == 2
    assert_loaded(separator, state)


# --- the recipe ---------------------------------------------------------------------------
def test_audiosep_recipe_shows_and_builds(sepkit_cli):
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    proc = sepkit_cli("recipe", "show", REPO / "recipes" / "audiosep.yaml", "--resolved")
    assert proc.returncode == 0, proc.stderr
    pipeline = SeparationPipeline.from_recipe(load_recipe("audiosep"))
    separator = pipeline.separator
    assert type(separator).__name__ == "ResUNet30Separator"
    assert separator.input_dim == 1025 and separator.channels == (32, 64, 128, 256, 384, 384)
    assert separator.query_dim == pipeline.text_encoder.embed_dim
    assert pipeline.sample_rate == 32000 and pipeline.audio_encoder.frame_rate == 100.0
    assert "separator" in pipeline.stored_kinds and "text_encoder" not in pipeline.stored_kinds


def test_pipeline_and_separate_load_an_official_checkpoint_through_the_separator(tmp_path, sepkit_cli):
    """`sepkit separate --ckpt <AudioSep .ckpt>`: not a sepkit checkpoint, so the recipe's separator reads it."""
    from sepkit.pipeline import build_pipeline
    from sepkit.recipe import load_recipe

    recipe_path = tmp_path / "tiny_audiosep.yaml"
    recipe_path.write_text(
        "model:\n"
        "  text_encoder: {name: minilm, freeze: true, max_length: 16}\n"
        "  audio_encoder: {name: stft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
        "  separator: {name: resunet30, base_channels: 4}\n"
        "  decoder: {name: istft, n_fft: 256, hop_length: 64, sample_rate: 16000}\n"
        "inference: {chunk_seconds: 2.0, overlap_seconds: 0.25}\n"
    )
    recipe = load_recipe(str(recipe_path))
    separator = build(input_dim=129, query_dim=384, base_channels=4)
    state = official_layout_state(separator)
    ckpt = save_lightning(tmp_path / "audiosep_base_4M_steps.ckpt", state)
    pipeline = build_pipeline(recipe, checkpoint=str(ckpt))
    assert_loaded(pipeline.separator, state)

    import soundfile as sf

    sf.write(tmp_path / "mix.wav", 0.1 * torch.randn(8000).numpy(), 16000)
    proc = sepkit_cli(
        "separate", tmp_path / "mix.wav", "-q", "extract the violin", "--recipe", recipe_path, "--ckpt", ckpt,
        "-o", tmp_path / "out.wav",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sf.info(tmp_path / "out.wav").frames == 8000

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    bad = sepkit_cli("separate", tmp_path / "mix.wav", "-q", "violin", "--recipe", recipe_path, "--ckpt", other,
                     "-o", tmp_path / "bad.wav")  # fmt: skip
    assert bad.returncode == 2 and "no component of this recipe" in bad.stderr and not (tmp_path / "bad.wav").exists()
