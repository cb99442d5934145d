"""The BEATs plugin: fbank front end, token layout and lengths, official checkpoint layout, published size."""

from __future__ import annotations

import pytest
import torch
import yaml

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing.pytest_plugin import make_ragged_wave_batch

TINY = {
    "embed_dim": 32,
    "encoder_layers": 2,
    "encoder_embed_dim": 32,
    "encoder_ffn_embed_dim": 64,
    "encoder_attention_heads": 4,
    "conv_pos": 16,
    "conv_pos_groups": 4,
    "num_buckets": 32,
    "max_distance": 64,
}


def encoder(**config):
    return get_registry().build("audio_encoder", {"name": "beats", **TINY, **config}).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sepkit_beats.official import write_random_checkpoint

    path = tmp_path_factory.mktemp("beats") / "BEATs_iter3_plus_AS2M.pt"
    return path, write_random_checkpoint(path, seed=3, **TINY)


def test_fbank_matches_the_official_preprocessing():
    """kaldi fbank of wave * 2^15 (128 bins), (fbank - 15.41663) / (2 * 6.55582), whole 160 ms steps."""
    import torchaudio.compliance.kaldi as kaldi
    from sepkit_beats.frontend import beats_input

    wave = 0.1 * torch.randn(1, 16000 * 2, generator=torch.Generator().manual_seed(0))
    fbank, steps = beats_input(wave, torch.tensor([wave.shape[1]]), pad_last_patch=False)
    official = kaldi.fbank(wave * 2**15, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10)
    official = (official - 15.41663) / (2 * 6.55582)
    assert int(steps) == official.shape[0] // 16 == 12
    torch.testing.assert_close(fbank[0, 0], official[: 12 * 16], rtol=1e-5, atol=1e-5)


def test_token_layout_lengths_and_pooling():
    enc = encoder()
    wave, lengths = make_ragged_wave_batch(16000, 3, (0.5, 0.8, 1.1))
    with torch.no_grad():
        out = enc.encode_audio(wave, lengths)
    # fbank frames 48, 78, 108 -> ceil(/16) = 3, 5, 7 steps of 8 mel patches
    assert out.lengths.tolist() == [24, 40, 56]
    assert out.frames.shape == (3, 56, 32) and out.frame_rate == 50.0
    assert bool((out.frames[0, 24:] == 0).all())
    torch.testing.assert_close(out.pooled[0], out.frames[0, :24].mean(0))
    assert enc.patch_grid(out.frames).shape == (3, 7, 8, 32)
    # a row does not depend on the rows it is batched with (padded steps are masked keys)
    with torch.no_grad():
        alone = enc.encode_audio(wave[:1, : lengths[0]], lengths[:1])
    torch.testing.assert_close(alone.frames[0], out.frames[0, : alone.frames.shape[1]], rtol=1e-4, atol=1e-5)


def test_pad_last_patch_off_drops_the_partial_step():
    enc = encoder(pad_last_patch=False)
    wave, lengths = make_ragged_wave_batch(16000, 2, (0.8, 1.1))
    with torch.no_grad():
        out = enc.encode_audio(wave, lengths)
    assert out.lengths.tolist() == [32, 48]


def test_official_checkpoint_loads_and_gives_its_outputs(checkpoint):
    path, model = checkpoint
    enc = get_registry().build("audio_encoder", {"name": "beats", "checkpoint": str(path)}).eval()
    assert enc.output_dim == 32 and enc.model.cfg["encoder_layers"] == 2  # the architecture came from 'cfg'
    for name, tensor in model.state_dict().items():
        assert torch.equal(enc.model.state_dict()[name], tensor), name
    wave, lengths = make_ragged_wave_batch(16000, 2, (0.6, 0.9))
    with torch.no_grad():
        fbank, steps = enc.fbank(wave, lengths)
        padding = torch.arange(fbank.shape[2] // 16)[None] >= steps[:, None]
        expected = model(fbank, padding)
        got = enc.encode_audio(wave, lengths).frames
    valid = torch.arange(got.shape[1])[None, :, None] < (steps * 8)[:, None, None]
    torch.testing.assert_close(got, expected * valid)


def test_relative_position_table_is_shared_like_the_official_model(checkpoint):
    _, model = checkpoint
    state = model.state_dict()
    tables = [k for k in state if k.endswith("relative_attention_bias.weight")]
    assert len(tables) == 2 and torch.equal(state[tables[0]], state[tables[1]])


def test_checkpoint_with_missing_and_extra_keys_names_them(tmp_path, checkpoint):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=True)
    del payload["model"]["encoder.layers.1.fc2.bias"]
    payload["model"]["encoder.extra.weight"] = torch.zeros(2)
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(SepkitError, match=r"encoder\.layers\.1\.fc2\.bias.*encoder\.extra\.weight"):
        get_registry().build("audio_encoder", {"name": "beats", "checkpoint": str(bad)})


def test_finetuned_classifier_is_dropped_and_bad_layouts_are_named(tmp_path, checkpoint):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=True)
    payload["model"]["predictor.weight"] = torch.zeros(527, 32)
    payload["model"]["predictor.bias"] = torch.zeros(527)
    finetuned = tmp_path / "finetuned.pt"
    torch.save(payload, finetuned)
    get_registry().build("audio_encoder", {"name": "beats", "checkpoint": str(finetuned)})
    torch.save({"state_dict": payload["model"]}, tmp_path / "other.pt")
    with pytest.raises(SepkitError, match=r"official layout \{'cfg': dict, 'model': state_dict\}"):
        get_registry().build("audio_encoder", {"name": "beats", "checkpoint": str(tmp_path / "other.pt")})
    with pytest.raises(SepkitError, match="not found"):
        get_registry().build("audio_encoder", {"name": "beats", "checkpoint": str(tmp_path / "missing.pt")})


def test_published_size_parameter_count():
    """BEATs iter3 at its published size: 90,311,792 parameters (the paper's "90M")."""
    from sepkit_beats.backbone import ITER3_CONFIG, BEATsModel, parameter_count

    with torch.device("meta"):
        model = BEATsModel(ITER3_CONFIG)
    assert parameter_count(model) == 90_311_792


def test_registry_example_builds():
    entry = get_registry().get("audio_encoder", "beats")
    assert yaml.safe_load(entry.example) == TINY
