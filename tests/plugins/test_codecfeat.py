"""codec-latents (HSM-TSS Ours_acoustic): contracts of both components, shapes and rates, the exact
encode -> decode round trip, refused codecs, and the two Ours_acoustic recipes (build, one local step)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from sepkit_codecfeat import TINY

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, CodecFrames
from sepkit.plugins import get_registry
from sepkit.testing import AudioEncoderContract, DecoderContract

REPO = Path(__file__).resolve().parents[2]
TINY_CODEC = yaml.safe_load(TINY)["codec"]  # tfcodec: 4 groups x 64 codes of 32 values, 50 Hz, 16 kHz
FULL = "recipes/hsm_tss_ours_acoustic.yaml"
MINI = "recipes/mini/hsm_tss_ours_acoustic.yaml"
NO_CODEC_WEIGHTS = ["model.audio_encoder.codec.checkpoint=null"]  # the mini TF-Codec file may be absent


class TestCodecLatentsEncoder(AudioEncoderContract):
    name = "codec-latents"


class TestCodecLatentsDecoder(DecoderContract):
    name = "codec-latents"


def build(kind: str, codec: dict | None = None, seed: int = 0):
    torch.manual_seed(seed)
    return get_registry().build(kind, {"name": "codec-latents", "codec": codec or TINY_CODEC}).eval()


@pytest.fixture(scope="module")
def shared_codec(tmp_path_factory):
    """A tiny TF-Codec section whose weights are a file, so encoder and decoder hold the same codec."""
    codec = get_registry().build("codec", {"name": "tfcodec", **TINY_CODEC})
    path = tmp_path_factory.mktemp("codec") / "tfcodec.pt"
    torch.save(codec.state_dict(), path)
    return {**TINY_CODEC, "checkpoint": str(path)}


def ragged(seconds=(1.0, 0.4375)):
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([round(s * 16000) for s in seconds])
    wave = 0.1 * torch.randn(len(seconds), int(lengths.max()), generator=g)
    return wave * (torch.arange(wave.shape[1])[None] < lengths[:, None]), lengths


# --- shapes and rates ------------------------------------------------------------------------------
def test_frames_are_the_codecs_latents_at_its_frame_rate(shared_codec):
    encoder = build("audio_encoder", shared_codec)
    assert (encoder.sample_rate, encoder.frame_rate, encoder.output_dim) == (16000, 50.0, 4 * 32)  # 4 groups x 32
    assert encoder.representation == "codec_latents"
    wave, lengths = ragged()
    with torch.no_grad():
        features = encoder.encode_audio(wave, lengths)
        coded = encoder.codec.encode(wave, lengths)
    assert features.frames.shape == (2, 51, 128) and features.frame_rate == 50.0 and features.pooled is None
    assert torch.equal(features.frames, coded.latents) and torch.equal(features.lengths, coded.lengths)
    assert features.lengths.tolist() == [51, 23]
    decoder = build("decoder", shared_codec)
    assert (decoder.sample_rate, decoder.frame_rate, decoder.input_dim) == (16000, 50.0, 128)
    assert decoder.consumes == encoder.representation


def test_full_size_tfcodec_sizes():
    """TF-Codec at full size: 16 groups x 120 = 1920-d at 50 Hz; 513 frames per 10.24 s, 501 per 10 s."""
    encoder = build("audio_encoder", {"name": "tfcodec"})
    assert encoder.output_dim == 1920 and encoder.frame_rate == 50.0
    lengths = torch.tensor([163840, 160000])
    assert encoder.codec.net.code_frames(lengths).tolist() == [513, 501]


# --- encode -> decode ------------------------------------------------------------------------------
def test_decoding_the_encoders_own_latents_is_codec_decode_of_its_codes(shared_codec):
    encoder, decoder = build("audio_encoder", shared_codec, seed=1), build("decoder", shared_codec, seed=2)
    wave, lengths = ragged()
    with torch.no_grad():
        features = encoder.encode_audio(wave, lengths)
        codes = encoder.codec.encode(wave, lengths).codes
        reference = decoder.codec.decode(codes)
        out = decoder.decode(features)
    assert torch.equal(decoder.codes(features), codes)
    assert out.shape == reference.shape == (2, (4 * 51 - 1) * 80)
    valid = (features.lengths * 320).tolist()  # samples of each row's frames (16000 / 50)
    assert torch.equal(out[0], reference[0])  # the full row: nothing past its end
    assert torch.equal(out[1, : valid[1]], reference[1, : valid[1]]) and not out[1, valid[1] :].any()
    with torch.no_grad():
        assert decoder.decode(features, num_samples=16000).shape == (2, 16000)


def test_nearest_codes_picks_each_groups_nearest_vector():
    from sepkit_codecfeat.codec_space import nearest_codes

    books = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]], [[5.0, 5.0], [0.0, -1.0], [0.0, 1.0]]])  # [2, 3, 2]
    frames = torch.tensor([[[0.9, 1.2, 0.1, 0.8], [-1.5, 0.2, 4.0, 6.0]]])  # [1, 2 frames, 2 groups x 2]
    assert nearest_codes(frames, books).tolist() == [[[1, 2], [2, 0]]]  # [1, G, F]


def test_decoder_rejects_features_of_another_width():
    decoder = build("decoder")
    with pytest.raises(SepkitError, match=r"codec-latents.*\[batch, frames, 128\].*got"):
        decoder.decode(AudioFeatures(torch.zeros(1, 5, 96), torch.tensor([5]), 50.0))


# --- codecs that cannot be used ----------------------------------------------------------------
@pytest.mark.parametrize(
    "codec",
    [
        {"name": "mulaw"},
        {"name": "encodec", "hidden_size": 16, "num_filters": 4, "upsampling_ratios": [4, 4, 4], "num_lstm_layers": 1,
         "codebook_size": 64},
    ],
    ids=["mulaw", "encodec"],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["audio_encoder", "decoder"])
def test_codecs_without_group_codebooks_are_refused(kind, codec):
    with pytest.raises(SepkitError, match=rf"codec-latents.*{codec['name']!r}.*no per-group codebooks.*'codebooks'"):
        build(kind, codec)


def test_a_codec_without_latents_is_a_clear_error(monkeypatch):
    encoder = build("audio_encoder")
    wave, lengths = ragged()
    codes = torch.zeros(2, 4, 51, dtype=torch.long)
    monkeypatch.setattr(encoder.codec, "encode", lambda w, n: CodecFrames(codes, torch.tensor([51, 23])))
    with pytest.raises(SepkitError, match=r"returned no latents \(CodecFrames.latents\)"):
        encoder.encode_audio(wave, lengths)
    wide = CodecFrames(codes, torch.tensor([51, 23]), latents=torch.zeros(2, 51, 100))
    monkeypatch.setattr(encoder.codec, "encode", lambda w, n: wide)
    with pytest.raises(SepkitError, match=r"latents \(2, 51, 100\), expected \(2, 51, 128\)"):
        encoder.encode_audio(wave, lengths)


def test_the_codec_stays_frozen_and_in_eval_mode():
    for kind in ("audio_encoder", "decoder"):
        component = build(kind).train()
        assert component.training and not component.codec.training
        assert not any(p.requires_grad for p in component.codec.parameters())


# --- the recipes -----------------------------------------------------------------------------------
def pipeline(recipe: str, overrides=()):
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    torch.manual_seed(0)
    return SeparationPipeline.from_recipe(load_recipe(str(REPO / recipe), list(overrides)))


@pytest.mark.parametrize(
    "recipe, overrides, seconds, width",
    [(FULL, [], 10.24, 1920), (MINI, NO_CODEC_WEIGHTS, 4.0, 640)],
    ids=["full", "mini"],
)
def test_ours_acoustic_recipes_build(recipe, overrides, seconds, width):
    p = pipeline(recipe, overrides)
    audio, sep, dec = p.audio_encoder, p.separator, p.decoder
    assert type(audio).__name__ == "CodecLatentEncoder" and type(dec).__name__ == "CodecLatentDecoder"
    assert sep.global_stage is None and sep.input_dim == dec.input_dim == audio.output_dim == width
    assert sep.consumes == sep.produces == "codec_latents"
    frames = int(audio.codec.net.code_frames(torch.tensor([round(seconds * 16000)])))
    assert sep.config.num_patches == frames  # one position per codec frame of an inference chunk
    assert p.settings.chunk_seconds == seconds
    assert dec.config.codec == audio.config.codec  # one codec section for both
    assert not any(param.requires_grad for param in (*audio.parameters(), *dec.parameters()))


def test_mini_ours_acoustic_trains_a_local_step_and_separates():
    """One hsm local-stage step on the mini recipe (random codec), then the pipeline end to end."""
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = load_recipe(str(REPO / MINI), NO_CODEC_WEIGHTS)
    torch.manual_seed(0)
    system = build_system(recipe, load_train_config(recipe))
    optimizer, _ = system.optimizers(system.train_cfg)["main"]
    wave, lengths = ragged((1.0, 0.6))
    batch = {"mixture": wave, "target": 0.5 * wave, "lengths": lengths, "description": ["a dog", "rain"],
             "task": torch.tensor([0, 1])}  # fmt: skip
    system.train()
    before = system.separator.patch_out.weight.detach().clone()
    loss = system(batch, 0)["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    assert not torch.equal(before, system.separator.patch_out.weight)
    assert system.checkpoint_state() and all(k.startswith("separator.") for k in system.checkpoint_state())
    p = pipeline(MINI, NO_CODEC_WEIGHTS).eval()
    with torch.no_grad():
        out = p(wave, lengths, ["a dog", "rain"], torch.tensor([0, 1]))
    assert out.shape == wave.shape and torch.isfinite(out).all()
