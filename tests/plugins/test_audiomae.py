"""The AudioMAE plugin: contract, fbank front end, token layout, official checkpoint layout, MAE pretraining."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import AudioEncoderContract, SystemContract
from sepkit.testing.pytest_plugin import make_ragged_wave_batch

REPO = Path(__file__).resolve().parents[2]
TINY = {"embed_dim": 64, "depth": 2, "num_heads": 4, "target_frames": 128, "num_mel_bins": 32}
TINY_VIT = {"image_size": (128, 32), "patch_size": 16, "embed_dim": 64, "depth": 2, "num_heads": 4}


class TestAudioMAE(AudioEncoderContract):
    name = "audiomae"
    config = "\n".join(f"{k}: {v}" for k, v in TINY.items())


class TestMAESystem(SystemContract):
    name = "mae"


def encoder(**config):
    return get_registry().build("audio_encoder", {"name": "audiomae", **TINY, **config}).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sepkit_audiomae.official import write_random_checkpoint

    path = tmp_path_factory.mktemp("audiomae") / "pretrained.pth"
    return path, write_random_checkpoint(path, seed=3, **TINY_VIT)


# --- independent computations ------------------------------------------------------------------
def np_kaldi_fbank(x: np.ndarray, mels: int, sr: int = 16000) -> np.ndarray:
    """Kaldi's fbank (snip_edges, DC removal, pre-emphasis 0.97, symmetric Hann, 512-point power spectrum,
    Kaldi mel banks from 20 Hz to Nyquist, natural log floored at float32 epsilon), in float64 numpy."""
    win, hop, n_fft = 400, 160, 512
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), win)[::hop].copy()
    frames -= frames.mean(axis=1, keepdims=True)
    previous = np.concatenate([frames[:, :1], frames[:, :-1]], axis=1)
    frames = frames - 0.97 * previous
    frames *= 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
    power = np.abs(np.fft.rfft(frames, n=n_fft, axis=1)) ** 2  # [frames, 257]

    def mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    low, high = mel(20.0), mel(sr / 2)
    delta = (high - low) / (mels + 1)
    bin_mel = mel(np.arange(n_fft // 2) * sr / n_fft)
    banks = np.zeros((mels, n_fft // 2 + 1))
    for m in range(mels):
        left, center, right = low + m * delta, low + (m + 1) * delta, low + (m + 2) * delta
        up, down = (bin_mel - left) / (center - left), (right - bin_mel) / (right - center)
        banks[m, : n_fft // 2] = np.maximum(0.0, np.minimum(up, down))
    return np.log(np.maximum(power @ banks.T, np.finfo(np.float32).eps))


def np_official_pos_embed(dim: int, grid: tuple[int, int]) -> np.ndarray:
    """AudioMAE's get_2d_sincos_pos_embed_flexible(dim, grid, cls_token=True), written out in numpy."""

    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gw, gh = np.meshgrid(np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32))
    table = np.concatenate([one_d(dim // 2, gw), one_d(dim // 2, gh)], axis=1)
    return np.concatenate([np.zeros([1, dim]), table], axis=0)


def official_shapes(dim=768, depth=12, patches=512, patch=16):
    """Key -> shape of the encoder part of the official pretrained.pth (timm ViT names, models_mae)."""
    shapes = {
        "cls_token": (1, 1, dim),
        "pos_embed": (1, patches + 1, dim),
        "patch_embed.proj.weight": (dim, 1, patch, patch),
        "patch_embed.proj.bias": (dim,),
        "norm.weight": (dim,),
        "norm.bias": (dim,),
    }
    for i in range(depth):
        b = f"blocks.{i}"
        shapes |= {f"{b}.norm1.weight": (dim,), f"{b}.norm1.bias": (dim,), f"{b}.norm2.weight": (dim,)}
        shapes |= {f"{b}.norm2.bias": (dim,), f"{b}.attn.qkv.weight": (3 * dim, dim), f"{b}.attn.qkv.bias": (3 * dim,)}
        shapes |= {f"{b}.attn.proj.weight": (dim, dim), f"{b}.attn.proj.bias": (dim,)}
        shapes |= {f"{b}.mlp.fc1.weight": (4 * dim, dim), f"{b}.mlp.fc1.bias": (4 * dim,)}
        shapes |= {f"{b}.mlp.fc2.weight": (dim, 4 * dim), f"{b}.mlp.fc2.bias": (dim,)}
    return shapes


# --- front end ---------------------------------------------------------------------------------
def test_fbank_matches_an_independent_kaldi_computation():
    from sepkit_audiomae.frontend import kaldi_fbank_features

    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal(16000 + 123)).astype(np.float32)
    x[:3000] = 0.02  # a constant stretch: after DC removal its frames hit the log floor
    got = kaldi_fbank_features(torch.from_numpy(x), num_mel_bins=128).numpy()
    want = np_kaldi_fbank(x - x.mean(), 128)  # the official loader removes the clip's mean first
    assert got.shape == want.shape == (1 + (x.size - 400) // 160, 128)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("samples", [400, 401, 16000 + 123, 64000])
def test_fbank_equals_torchaudio_kaldi_fbank_as_the_official_loader_calls_it(samples):
    import torchaudio.compliance.kaldi as kaldi
    from sepkit_audiomae.frontend import kaldi_fbank_features

    x = 0.1 * torch.randn(samples, generator=torch.Generator().manual_seed(samples))
    x[: samples // 4] = 0.02  # a constant stretch reaches the log floor
    want = kaldi.fbank(
        (x - x.mean())[None], htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
        num_mel_bins=128, dither=0.0, frame_shift=10.0, frame_length=25.0,
    )  # fmt: skip
    got = kaldi_fbank_features(x, num_mel_bins=128)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_model_input_is_padded_or_cropped_then_normalised_with_audioset_stats():
    enc = encoder()
    x = 0.1 * torch.randn(2, 16000)
    lengths = torch.tensor([16000, 5000])
    image = enc.fbank(x, lengths)
    assert image.shape == (2, 1, 128, 32)
    for row, n in enumerate(lengths.tolist()):
        raw = np_kaldi_fbank((x[row, :n] - x[row, :n].mean()).numpy(), 32)
        padded = np.zeros((128, 32))
        padded[: min(128, raw.shape[0])] = raw[:128]  # zeros appended before normalising, as the official loader
        want = (padded + 4.2677393) / (2 * 4.5689974)
        np.testing.assert_allclose(image[row, 0].numpy(), want, rtol=1e-4, atol=2e-3)
    assert enc.seconds == 1.28 and encoder(target_frames=1024).seconds == 10.24


# --- token layout, lengths, long inputs -----------------------------------------------------------
def test_tokens_are_time_major_and_lengths_cover_the_clip():
    enc = encoder()
    vit = enc.vit
    image = torch.randn(1, 1, 128, 32)
    base = vit.embed(image)
    bumped = image.clone()
    bumped[0, 0, 16 * 5 + 3, 16 * 1 + 7] += 1.0  # fbank frame 83, mel bin 23: time step 5, mel band 1
    changed = (vit.embed(bumped) - base).abs().sum(-1)[0].nonzero().flatten().tolist()
    assert changed == [5 * 2 + 1]  # token n = time step * mel patches + mel band
    assert enc.frame_rate == 12.5 and encoder(target_frames=1024, num_mel_bins=128).frame_rate == 50.0
    # lengths: whole 160 ms steps covering 1 + (n - 400) // 160 fbank frames, times the mel patches
    lengths = torch.tensor([100, 400, 2959, 2960, 8000, 40000])
    assert enc.token_lengths(lengths).tolist() == [2, 2, 2, 4, 6, 16]
    with torch.no_grad():
        out = enc.encode_audio(0.1 * torch.randn(6, 40000), lengths)
    assert out.frames.shape == (6, 16, 64) and out.lengths.tolist() == [2, 2, 2, 4, 6, 16]
    assert enc.patch_grid(out.frames).shape == (6, 8, 2, 64)


def test_inputs_longer_than_the_window_are_cropped_like_the_official_loader():
    enc = encoder()
    head = 0.1 * torch.randn(1, 400 + 127 * 160)  # exactly 128 fbank frames
    head -= head.mean()
    tail = 0.1 * torch.randn(1, 8000)
    tail = torch.cat([tail, -tail], dim=1)  # zero mean: the whole clip's mean stays the head's
    long = torch.cat([head, tail], dim=1)
    with torch.no_grad():
        a = enc.encode_audio(head, torch.tensor([head.shape[1]]))
        b = enc.encode_audio(long, torch.tensor([long.shape[1]]))
    assert a.lengths.tolist() == b.lengths.tolist() == [16]
    torch.testing.assert_close(a.frames, b.frames, rtol=1e-4, atol=1e-4)


def test_rows_do_not_depend_on_the_batch_and_pooling_options():
    enc = encoder()
    wave, lengths = make_ragged_wave_batch(16000, 3, (0.5, 0.8, 1.1))
    with torch.no_grad():
        out = enc.encode_audio(wave, lengths)
        alone = enc.encode_audio(wave[:1, : lengths[0]], lengths[:1])
    torch.testing.assert_close(out.frames[0], alone.frames[0], rtol=1e-5, atol=1e-5)
    assert out.pooled.shape == (3, 64)
    mean = encoder(pooling="mean")
    mean.load_state_dict(enc.state_dict())
    with torch.no_grad():
        pooled = mean.encode_audio(wave, lengths).pooled
    n = int(out.lengths[1])
    torch.testing.assert_close(pooled[1], out.frames[1, :n].mean(0), rtol=1e-5, atol=1e-6)
    with pytest.raises(SepkitError, match="pooling"):
        encoder(pooling="max")
    with pytest.raises(SepkitError, match="multiples of patch_size"):
        encoder(target_frames=100)


def test_position_table_is_the_official_sincos_grid_on_mel_by_time():
    from sepkit_audiomae.vit import sincos_2d_table

    table = sincos_2d_table(768, (8, 64))
    np.testing.assert_allclose(table[0].numpy(), np_official_pos_embed(768, (8, 64)), atol=1e-6)
    assert torch.equal(
        encoder(target_frames=1024, num_mel_bins=128, embed_dim=32).vit.pos_embed[0], sincos_2d_table(32, (8, 64))[0]
    )
    assert not encoder().vit.pos_embed.requires_grad  # fixed, as in the official model


# --- full size ---------------------------------------------------------------------------------
def test_full_size_vit_b16_parameter_count_and_official_layout():
    from sepkit_audiomae.vit import count_parameters, vit_b16_parameter_count

    start = time.perf_counter()
    enc = get_registry().build("audio_encoder", {"name": "audiomae"}).eval()
    # ViT-B/16 on one input channel: 85,254,144 trainable + the fixed 513 x 768 pos_embed (393,984)
    assert count_parameters(enc.vit) == vit_b16_parameter_count() == 85_254_144
    assert count_parameters(enc.vit, trainable_only=False) == 85_648_128
    assert {k: tuple(v.shape) for k, v in enc.vit.state_dict().items()} == official_shapes()
    assert enc.output_dim == 768 and enc.frame_rate == 50.0 and enc.num_patches == 512
    with torch.no_grad():
        out = enc.encode_audio(0.1 * torch.randn(1, 16000), torch.tensor([16000]))
    assert out.frames.shape == (1, 512, 768) and out.lengths.tolist() == [56] and out.pooled.shape == (1, 768)
    assert time.perf_counter() - start < 60


# --- official checkpoint layout ----------------------------------------------------------------
def test_official_layout_checkpoint_round_trip(checkpoint, caplog):
    path, model = checkpoint
    payload = torch.load(path, weights_only=False)
    assert set(payload) == {"model", "epoch", "args"} and "decoder_pred.weight" in payload["model"]
    with caplog.at_level(logging.INFO, logger="sepkit.audiomae"):
        enc = encoder(checkpoint=str(path))
    assert "dropped 8 MAE decoder keys" in caplog.text
    loaded = enc.vit.state_dict()
    assert set(loaded) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value), key  # pos_embed included: taken from the file
    wave, lengths = make_ragged_wave_batch(16000, 3, (0.5, 0.8, 1.1))
    with torch.no_grad():
        out = enc.encode_audio(wave, lengths)
        tokens, cls = model(enc.fbank(wave, lengths))
    torch.testing.assert_close(out.frames, tokens, rtol=0, atol=0)
    torch.testing.assert_close(out.pooled, cls, rtol=0, atol=0)
    fresh = encoder()
    assert fresh.load_official_checkpoint(str(path)) and torch.equal(fresh.vit.cls_token, model.cls_token)
    assert not fresh.load_official_checkpoint(str(path.parent / "missing.pth"))


def test_finetuned_layout_uses_fc_norm_and_drops_the_head(tmp_path, checkpoint, caplog):
    path, model = checkpoint
    state = torch.load(path, weights_only=False)["model"]
    state = {k: v for k, v in state.items() if not k.startswith(("decoder_", "mask_token"))}
    state["fc_norm.weight"], state["fc_norm.bias"] = state.pop("norm.weight"), state.pop("norm.bias")
    state["head.weight"], state["head.bias"] = torch.randn(527, 64), torch.zeros(527)
    finetuned = tmp_path / "finetuned.pth"
    torch.save({"model": state}, finetuned)
    with pytest.raises(SepkitError, match="fine-tuned classifier.*set final_norm: fc_norm"):
        encoder(checkpoint=str(finetuned))
    with caplog.at_level(logging.INFO, logger="sepkit.audiomae"):
        enc = encoder(checkpoint=str(finetuned), final_norm="fc_norm")
    assert "classifier head" in caplog.text
    wave, lengths = make_ragged_wave_batch(16000, 2, (0.5, 1.0))
    with torch.no_grad():
        out = enc.encode_audio(wave, lengths)
        x = model.run_blocks(model.embed(enc.fbank(wave, lengths)))[:, 1:]
    torch.testing.assert_close(out.frames, x)
    norm = torch.nn.functional.layer_norm(x.mean(1), (64,), state["fc_norm.weight"], state["fc_norm.bias"], 1e-6)
    torch.testing.assert_close(out.pooled, norm)
    with pytest.raises(SepkitError, match="set final_norm: norm"):
        encoder(checkpoint=str(path), final_norm="fc_norm")


def test_mismatching_checkpoint_keys_are_named(checkpoint, tmp_path):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=False)
    del payload["model"]["blocks.1.mlp.fc2.bias"]
    payload["model"]["blocks.2.attn.qkv.weight"] = torch.zeros(3)
    bad = tmp_path / "bad.pth"
    torch.save(payload, bad)
    with pytest.raises(SepkitError, match=r"missing keys: blocks\.1\.mlp\.fc2\.bias.*unexpected keys: blocks\.2"):
        encoder(checkpoint=str(bad))
    with pytest.raises(SepkitError, match=r"pos_embed has shape \(1, 17, 64\).*target_frames: 1024"):
        encoder(checkpoint=str(path), target_frames=256)
    with pytest.raises(SepkitError, match="not found"):
        encoder(checkpoint=str(tmp_path / "missing.pth"))
    torch.save({"epoch": 3}, bad)
    with pytest.raises(SepkitError, match="not in the official layout"):
        encoder(checkpoint=str(bad))


# --- MAE pretraining -----------------------------------------------------------------------------
def test_multi_window_attention_is_local_per_head():
    from sepkit_audiomae.mae import MultiWindowSelfAttention

    def depends_on(attn, token):
        x = torch.randn(1, 16, 16, requires_grad=True)
        (grad,) = torch.autograd.grad(attn(x)[0, token].sum(), x)
        return grad[0].abs().sum(-1).nonzero().flatten().tolist()

    torch.manual_seed(0)
    assert depends_on(MultiWindowSelfAttention(16, 2, (4, 4), num_tokens=16), 5) == [4, 5, 6, 7]
    assert depends_on(MultiWindowSelfAttention(16, 2, (8, 2), num_tokens=16), 5) == [0, 1, 2, 3, 4, 5, 6, 7]
    mixed = MultiWindowSelfAttention(16, 2, (4, 0), num_tokens=16)
    assert depends_on(mixed, 5) == list(range(16)) and mixed.window_sizes == (4, 0)
    assert set(mixed.relative_position_bias) == {"0"} and mixed.relative_position_bias["0"].shape == (7,)
    assert MultiWindowSelfAttention(16, 2, (4, 16), num_tokens=16).window_sizes == (4, 0)  # N = global
    with pytest.raises(ValueError, match=r"window sizes \[5\] do not divide the 16"):
        MultiWindowSelfAttention(16, 2, (5, 0), num_tokens=16)
    with pytest.raises(ValueError, match="one per head"):
        MultiWindowSelfAttention(16, 2, (4,), num_tokens=16)


def test_default_windows_divide_the_512_patches_and_full_decoder_size():
    from sepkit_audiomae.mae import DEFAULT_WINDOWS, MaskedAutoencoder
    from sepkit_audiomae.vit import AudioMAEViT, count_parameters

    assert len(DEFAULT_WINDOWS) == 8 and all(w == 0 or 512 % w == 0 for w in DEFAULT_WINDOWS)
    mae = MaskedAutoencoder(AudioMAEViT(depth=0))  # the paper's decoder: 4 layers, 384 wide, 8 heads
    decoder = count_parameters(mae) - count_parameters(mae.encoder)
    d = 384
    block = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d)
    bias_tables = sum(2 * w - 1 for w in DEFAULT_WINDOWS if w)  # 498 per layer
    # decoder_embed, mask_token, 4 blocks with their bias tables, decoder_norm, decoder_pred
    expected = (768 * d + d) + d + 4 * (block + bias_tables) + 2 * d + (d * 256 + 256)
    assert decoder == expected == 7_494_856
    assert len(mae.decoder_blocks) == 4 and mae.decoder_pred.out_features == 256


def test_patchify_round_trip_and_mae_loss_counts_masked_valid_patches():
    from sepkit_audiomae.mae import MaskedAutoencoder, patchify, unpatchify
    from sepkit_audiomae.vit import AudioMAEViT

    image = torch.randn(2, 1, 128, 32)
    patches = patchify(image, 16)
    assert patches.shape == (2, 16, 256) and torch.equal(unpatchify(patches, 16, (8, 2)), image)
    assert torch.equal(patches[0, 3].reshape(16, 16), image[0, 0, 16:32, 16:32])  # token 3: step 1, band 1
    torch.manual_seed(0)
    mae = MaskedAutoencoder(
        AudioMAEViT(**TINY_VIT), decoder_dim=32, decoder_depth=1, decoder_heads=4, window_sizes=(2, 4, 8, 0)
    )
    valid = torch.arange(16)[None] < torch.tensor([[6], [16]])
    out = mae(image, valid, generator=torch.Generator().manual_seed(0))
    assert out.mask.sum(1).tolist() == [13, 13]  # 16 - int(16 * 0.2)
    assert torch.equal(out.weight, out.mask * valid)
    per_patch = (out.pred - out.target).pow(2).mean(-1)
    torch.testing.assert_close(out.loss, (per_patch * out.weight).sum() / out.weight.sum())
    torch.testing.assert_close(out.target.mean(-1), torch.zeros(2, 16), atol=1e-5, rtol=0)  # norm_pix
    again = mae(image, valid, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again.mask, out.mask)
    official = mae.official_state_dict()
    assert {
        "cls_token",
        "blocks.0.attn.qkv.weight",
        "norm.weight",
        "mask_token",
        "decoder_pred.weight",
    } <= official.keys()


def write_corpus(root: Path) -> tuple[Path, Path]:
    """Frozen mixture manifests of 1 s tone + noise pairs (8 train, 2 val)."""
    import soundfile

    from sepkit.data.manifest import InstructionRef, MixtureRecord, SourceRef, write_jsonl

    t = np.arange(16000) / 16000
    for i in range(4):
        soundfile.write(root / f"tone{i}.wav", (0.3 * np.sin(2 * np.pi * 300 * (i + 1) * t)).astype(np.float32), 16000)
        noise = 0.05 * np.random.default_rng(i).standard_normal(t.size)
        soundfile.write(root / f"noise{i}.wav", noise.astype(np.float32), 16000)
    records = {"train": [], "val": []}
    for split, count in (("train", 8), ("val", 2)):
        for n in range(count):
            sources = [
                SourceRef(f"tone{n % 4}", f"tone{n % 4}.wav", gain=1.0, tags=["tone"]),
                SourceRef(f"noise{n % 3}", f"noise{n % 3}.wav", gain=1.0, tags=["noise"]),
            ]
            instructions = [InstructionRef("extract", "extract the tone", "tone", [0])]
            records[split].append(MixtureRecord(f"{split}-{n}", "test", split, 1.0, 16000, sources, instructions))
    write_jsonl(root / "train.jsonl", records["train"])
    write_jsonl(root / "val.jsonl", records["val"])
    return root / "train.jsonl", root / "val.jsonl"


def test_mae_system_trains_through_the_engine_and_its_checkpoint_loads_into_audiomae(tmp_path):
    from sepkit.recipe import load_recipe
    from sepkit.train.engine import Trainer

    train, val = write_corpus(tmp_path)
    overrides = [
        f"data.train.mixtures={train}",
        f"data.val.mixtures={val}",
        "train.steps=40",
        "train.log_every=1",
        "train.val_every=20",
        "train.ckpt_every=20",
        "train.schedule.warmup_steps=2",
    ]
    recipe = load_recipe(str(REPO / "recipes" / "tiny" / "train_mae.yaml"), overrides)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(recipe, out_dir=tmp_path / "run", device="cpu", progress=False).fit()
    finally:
        torch.set_num_threads(before)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["loss"] for x in lines if x["split"] == "train"]
    assert len(losses) == 40 and np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8]), losses
    assert [x["step"] for x in lines if x["split"] == "val"] == [20, 40]
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    state = torch.load(best, weights_only=True)["state_dict"]
    assert "blocks.1.mlp.fc2.bias" in state and "decoder_blocks.1.attn.qkv.weight" in state  # official naming
    enc = get_registry().build(
        "audio_encoder",
        {
            "name": "audiomae",
            "embed_dim": 64,
            "depth": 2,
            "num_heads": 4,
            "target_frames": 256,
            "num_mel_bins": 32,
            "checkpoint": str(best),
        },
    )
    assert torch.equal(enc.vit.blocks[1].mlp.fc2.bias, state["blocks.1.mlp.fc2.bias"])


def test_mae_system_needs_an_audiomae_encoder_and_dividing_windows(tmp_path):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    tiny = str(REPO / "recipes" / "tiny" / "train_mae.yaml")
    recipe = load_recipe(tiny, ["train.system.decoder_window_sizes=[3,4,8,0]"])
    with pytest.raises(SepkitError, match=r"window sizes \[3\] do not divide the 32"):
        build_system(recipe, load_train_config(recipe), get_registry())
    recipe = load_recipe(tiny, ["model.audio_encoder={name: stft}"])
    with pytest.raises(SepkitError, match="set model.audio_encoder: {name: audiomae"):
        build_system(recipe, load_train_config(recipe), get_registry())
