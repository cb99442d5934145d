"""clap-laion-patches (HSM-TSS Ours_local_CLAP): the audio-encoder contract, HTSAT's pre-pooling token grid
(layout, rates, lengths), the LAION/AudioSep checkpoints clap-laion reads, and the two Ours_local_CLAP recipes
(build; one hsm local step and one codec-ar step on the mini one)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from sepkit_clap import TINY_LAION

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import AudioEncoderContract
from sepkit.testing.contracts import perturb_state

REPO = Path(__file__).resolve().parents[2]
FULL = "recipes/hsm_tss_ours_local_clap.yaml"
MINI = "recipes/mini/hsm_tss_ours_local_clap.yaml"
NO_CODEC_WEIGHTS = ["model.decoder.codec.checkpoint=null"]  # the mini TF-Codec file may be absent


class TestClapLaionPatches(AudioEncoderContract):
    name = "clap-laion-patches"


def build(seed: int = 0, **config):
    torch.manual_seed(seed)
    section = {"name": "clap-laion-patches", "amodel": "HTSAT-tiny", "sample_rate": 16000, **config}
    return get_registry().build("audio_encoder", section).eval()


@pytest.fixture(scope="module")
def patches():
    return build()


def htsat_of_window(encoder, window):
    """laion_clap's own HTSAT forward of one 10 s window at 48 kHz -> its output dict."""
    with torch.no_grad():
        return encoder.model.audio_branch({"waveform": window[None]}, mixup_lambda=None, device=window.device)


# --- the token grid --------------------------------------------------------------------------------
def test_grid_sizes_rates_and_lengths(patches):
    assert (patches.output_dim, patches.mel_patches, patches.time_steps) == (768, 2, 32)  # HTSAT-tiny
    assert patches.frame_rate == 6.4 and patches.representation == "clap_patches"
    wave = 0.1 * torch.randn(3, 16000 * 12, generator=torch.Generator().manual_seed(0))
    lengths = torch.tensor([16000 * 12, 16000 * 4, 16000])
    with torch.no_grad():
        out = patches.encode_audio(wave, lengths)
    # 12 s: two windows, 39 steps of 312.5 ms; 4 s: 13 steps (12.8 rounded up); 1 s: 4 steps (3.2)
    assert out.lengths.tolist() == [78, 26, 8] and out.frames.shape == (3, 78, 768)
    assert out.frame_rate == 6.4 and out.pooled.shape == (3, 512)
    torch.testing.assert_close(out.pooled.norm(dim=-1), torch.ones(3))


def test_tokens_are_htsats_last_layer_before_pooling(patches):
    """The 64 tokens of a window average to HTSAT's clip embedding; pooled is CLAP's projection of it."""
    wave = 0.1 * torch.randn(1, 16000 * 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = patches.encode_audio(wave, torch.tensor([16000 * 4]))
        window = F.pad(torchaudio_resample(wave[0]), (0, 480000 - 48000 * 4))  # zero-padded 10 s at 48 kHz
        official = htsat_of_window(patches, window)
        grid, _ = patches.window_grids(window[None])
        projected = F.normalize(patches.model.audio_projection(official["embedding"]), dim=-1)
    assert out.frames.shape == (1, 26, 768)
    torch.testing.assert_close(grid.flatten(2).mean(-1), official["embedding"], atol=1e-5, rtol=0)
    tokens = grid.permute(0, 3, 2, 1).reshape(1, 64, 768)  # [steps, bands] time-major
    torch.testing.assert_close(out.frames, tokens[:, :26], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.pooled, projected, atol=1e-5, rtol=0)


def torchaudio_resample(wave):
    import torchaudio.functional as AF

    return AF.resample(wave, 16000, 48000)


def grid_change(encoder, clean, changed):
    """Mean |difference| of HTSAT's token grids [C, 2 bands, 32 steps] of two 10 s windows -> [2, 32]."""
    with torch.no_grad():
        grid, _ = encoder.window_grids(torch.stack([clean, changed]))
    return (grid[0] - grid[1]).abs().mean(0)


def test_time_major_layout_follows_the_audio():
    """Silencing 5-6 s changes steps 16-19 (312.5 ms each) most; a 9 kHz tone changes the high band most
    and a 200 Hz tone the low band (random weights: locality comes from the layout, not from training)."""
    encoder = build(amodel="HTSAT-tiny", sample_rate=48000)
    clean = 0.1 * torch.randn(480000, generator=torch.Generator().manual_seed(0))
    silenced = clean.clone()
    silenced[48000 * 5 : 48000 * 6] = 0
    per_step = grid_change(encoder, clean, silenced).mean(0)
    assert set(per_step.topk(4).indices.tolist()) == {16, 17, 18, 19}
    t = torch.arange(480000) / 48000
    high = grid_change(encoder, clean, clean + 0.3 * torch.sin(2 * torch.pi * 9000 * t)).mean(1)
    low = grid_change(encoder, clean, clean + 0.3 * torch.sin(2 * torch.pi * 200 * t)).mean(1)
    assert high[1] > high[0] and low[0] > low[1]


def test_short_rows_are_zero_padded_not_repeated(patches):
    """A row's tokens do not depend on what lies past its end in the batch (its window is zero-padded)."""
    g = torch.Generator().manual_seed(2)
    wave = 0.1 * torch.randn(2, 16000 * 3, generator=g)
    lengths = torch.tensor([16000 * 3, 16000 * 2])
    alone = wave[1:, : 16000 * 2]
    with torch.no_grad():
        both = patches.encode_audio(wave * (torch.arange(wave.shape[1]) < lengths[:, None]), lengths)
        single = patches.encode_audio(alone, torch.tensor([16000 * 2]))
    assert single.lengths.tolist() == [14] and both.lengths.tolist() == [20, 14]
    torch.testing.assert_close(both.frames[1, :14], single.frames[0], atol=1e-5, rtol=0)


def test_no_text_side(patches):
    assert patches.model.text_branch is None and patches.model.text_projection is None
    assert not any(k.startswith("model.text_") for k in patches.state_dict())
    with pytest.raises(SepkitError, match="audio encoder only"):
        patches.encode_text(["violin"])


# --- the same weight files as clap-laion ---------------------------------------------------------
@pytest.fixture(scope="module")
def laion_files(tmp_path_factory):
    """A tiny clap-laion (HTSAT-tiny, one-layer RoBERTa) written in the LAION .pt and AudioSep layouts."""
    from sepkit_clap.official import clap_state_to_file_layout

    torch.manual_seed(3)
    laion = get_registry().build("audio_encoder", {"name": "clap-laion", **yaml.safe_load(TINY_LAION)}).eval()
    perturb_state(laion.model)
    folder = tmp_path_factory.mktemp("clap")
    state = laion.model.state_dict()
    torch.save(
        {"epoch": 45, "state_dict": clap_state_to_file_layout(state, "module.")}, folder / "630k-audioset-best.pt"
    )
    audiosep = clap_state_to_file_layout(state, "query_encoder.model.")
    audiosep["ss_model.base.bn0.weight"] = torch.ones(3)
    torch.save({"state_dict": audiosep, "global_step": 1}, folder / "audiosep.ckpt")
    return laion, folder


@pytest.mark.parametrize("file", ["630k-audioset-best.pt", "audiosep.ckpt"])
def test_reads_laion_and_audiosep_checkpoints(laion_files, file):
    laion, folder = laion_files
    loaded = build(seed=4, checkpoint=str(folder / file))
    assert loaded.trained
    own = loaded.model.state_dict()
    for key, value in laion.model.state_dict().items():
        if not key.startswith(("text_branch.", "text_transform.", "text_projection.")):
            assert torch.equal(own[key], value), key
    wave = 0.1 * torch.randn(1, 16000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():  # the audio side of clap-laion, so the same clip embedding for a full 10 s window
        window = 0.1 * torch.randn(1, 480000, generator=torch.Generator().manual_seed(6))
        assert torch.isfinite(loaded.encode_audio(wave, torch.tensor([16000])).frames).all()
        ours = build(seed=4, checkpoint=str(folder / file), sample_rate=48000).encode_audio(
            window, torch.tensor([480000])
        )
        torch.testing.assert_close(ours.pooled, laion.embed_audio(window), atol=1e-5, rtol=0)


def test_checkpoint_errors(laion_files, tmp_path):
    _, folder = laion_files
    with pytest.raises(SepkitError, match=r"does not match this CLAP model.*Check amodel"):
        build(amodel="HTSAT-base", checkpoint=str(folder / "630k-audioset-best.pt"))
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(SepkitError, match="neither a LAION-CLAP .pt"):
        build(checkpoint=str(other))
    with pytest.raises(SepkitError, match="not found"):
        build(checkpoint=str(tmp_path / "missing.pt"))


# --- the recipes -----------------------------------------------------------------------------------
def pipeline(recipe: str, overrides=()):
    from sepkit.pipeline import SeparationPipeline
    from sepkit.recipe import load_recipe

    torch.manual_seed(0)
    return SeparationPipeline.from_recipe(load_recipe(str(REPO / recipe), list(overrides)))


@pytest.mark.parametrize(
    "recipe, overrides, width, tokens",
    [(FULL, [], 1024, 64), (MINI, NO_CODEC_WEIGHTS, 768, 26)],
    ids=["full", "mini"],
)
def test_ours_local_clap_recipes_build(recipe, overrides, width, tokens):
    p = pipeline(recipe, overrides)
    audio, sep, dec = p.audio_encoder, p.separator, p.decoder
    assert type(audio).__name__ == "ClapPatchEncoder" and not audio.trained  # random weights without checkpoint
    assert sep.global_stage is None and sep.input_dim == dec.input_dim == audio.output_dim == width
    seconds = p.settings.chunk_seconds
    assert int(audio.token_lengths(torch.tensor([round(seconds * 48000)]))) == tokens == sep.config.num_patches
    assert dec.frame_rate == audio.frame_rate == 6.4 and dec.config.mel_patches == audio.mel_patches == 2
    assert tokens // 2 <= dec.lm.max_prefix and int(dec.acoustic_steps(audio_features(tokens))) <= dec.lm.max_steps
    assert not any(param.requires_grad for param in audio.parameters())


def audio_features(tokens: int):
    from sepkit.interfaces import AudioFeatures

    return AudioFeatures(torch.zeros(1, tokens, 1), torch.tensor([tokens]), 6.4)


def batch():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([16000, 9600])
    wave = 0.1 * torch.randn(2, 16000, generator=g) * (torch.arange(16000) < lengths[:, None])
    return {"mixture": wave, "target": 0.5 * wave, "lengths": lengths, "description": ["a dog", "rain"],
            "task": torch.tensor([0, 1])}  # fmt: skip


def train_step(overrides: list[str]):
    """One optimizer step of the system the mini recipe (with ``overrides``) names -> (system, loss)."""
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    recipe = load_recipe(str(REPO / MINI), overrides)
    torch.manual_seed(0)
    system = build_system(recipe, load_train_config(recipe))
    optimizer, _ = system.optimizers(system.train_cfg)["main"]
    system.train()
    loss = system(batch(), 0)["loss"]
    loss.backward()
    optimizer.step()
    return system, float(loss.detach())


def test_mini_ours_local_clap_trains_local_stage_and_codec_ar_and_separates():
    system, loss = train_step(NO_CODEC_WEIGHTS)
    assert loss > 0 and system.local_stage is not None and system.global_stage is None
    assert all(k.startswith("separator.") for k in system.checkpoint_state())
    # codec-ar on the CLAP tokens (the decoder this ablation needs): train.system codec-ar, decoder unfrozen
    decoder_system, ce = train_step([*NO_CODEC_WEIGHTS, "train.system=codec-ar", "model.decoder.freeze=false"])
    assert ce > 0 and decoder_system.decoder.lm.max_steps >= 201  # 4 s of 50 Hz codec frames
    p = pipeline(MINI, NO_CODEC_WEIGHTS).eval()
    b = batch()
    with torch.no_grad():
        out = p(b["mixture"], b["lengths"], b["description"], b["task"])
    assert out.shape == b["mixture"].shape and torch.isfinite(out).all()
