"""The PANNs CNN14 plugin: contract, official checkpoint layout, front-end numerics, parameter count."""

import numpy as np
import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import AudioEncoderContract
from sepkit.testing.pytest_plugin import make_ragged_wave_batch

TINY = 4  # base_channels of the small test model (official: 64)


class TestPannsCnn14(AudioEncoderContract):
    name = "panns-cnn14"
    config = f"base_channels: {TINY}"


def encoder(**config):
    section = {"name": "panns-cnn14", "base_channels": TINY, **config}
    return get_registry().build("audio_encoder", section).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sepkit_panns.official import write_random_checkpoint

    path = tmp_path_factory.mktemp("panns") / "Cnn14_16k_random.pth"
    model = write_random_checkpoint(path, sample_rate=16000, base_channels=TINY, seed=3)
    return path, model


# --- independent computations from the official definitions ---------------------------------
def np_slaney_mel(sr, n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax) (Slaney scale, Slaney norm), transposed: [bins, mels]."""

    def to_mel(f):
        return f * 3 / 200 if f < 1000 else 15 + 27 * np.log(f / 1000) / np.log(6.4)

    def to_hz(m):
        return m * 200 / 3 if m < 15 else 1000 * np.exp(np.log(6.4) / 27 * (m - 15))

    points = [to_hz(m) for m in np.linspace(to_mel(fmin), to_mel(fmax), n_mels + 2)]
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft
    out = np.zeros((bins.size, n_mels))
    for i in range(n_mels):
        lo, mid, hi = points[i : i + 3]
        for j, f in enumerate(bins):
            up, down = (f - lo) / (mid - lo), (hi - f) / (hi - mid)
            out[j, i] = max(0.0, min(up, down)) * 2 / (hi - lo)
    return out


def np_logmel(x, n_fft, hop, mel_w):
    """Centred reflect-padded STFT with a periodic Hann window, power, mel, 10 log10(max(., 1e-10))."""
    x = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * window
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10 * np.log10(np.maximum(power @ mel_w.astype(np.float64), 1e-10))


def official_shapes(n_fft=512, mels=64, classes=527):
    """Key -> shape of the official Cnn14/Cnn14_16k state dict, written out from pytorch/models.py."""

    def bn(prefix, n):
        stats = {f"{prefix}.{s}": (n,) for s in ("weight", "bias", "running_mean", "running_var")}
        return stats | {f"{prefix}.num_batches_tracked": ()}

    shapes = {
        "spectrogram_extractor.stft.conv_real.weight": (n_fft // 2 + 1, 1, n_fft),
        "spectrogram_extractor.stft.conv_imag.weight": (n_fft // 2 + 1, 1, n_fft),
        "logmel_extractor.melW": (n_fft // 2 + 1, mels),
        **bn("bn0", mels),
    }
    widths = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(6):
        block, cin, cout = f"conv_block{i + 1}", widths[i], widths[i + 1]
        shapes[f"{block}.conv1.weight"] = (cout, cin, 3, 3)
        shapes[f"{block}.conv2.weight"] = (cout, cout, 3, 3)
        shapes |= bn(f"{block}.bn1", cout) | bn(f"{block}.bn2", cout)
    shapes |= {"fc1.weight": (2048, 2048), "fc1.bias": (2048,), "fc_audioset.weight": (classes, 2048)}
    shapes["fc_audioset.bias"] = (classes,)
    return shapes


# --- tests ----------------------------------------------------------------------------------
def test_full_size_parameter_count_and_official_layout():
    from sepkit_panns.cnn14 import Cnn14
    from sepkit_panns.frontend import FRONTENDS
    from sepkit_panns.official import module_to_official

    model = Cnn14(FRONTENDS[16000])
    # trainable parameters, as the official count_parameters counts them (frozen STFT/mel excluded): "80.8 M"
    assert sum(p.numel() for p in model.parameters()) == 80_753_615
    official = module_to_official(model.state_dict(), 16000)
    assert {k: tuple(v.shape) for k, v in official.items()} == official_shapes()
    frozen = 2 * 257 * 512 + 257 * 64  # the official module's frozen STFT and mel parameters
    assert sum(v.numel() for k, v in official.items() if "num_batches" not in k and "running" not in k) == (
        80_753_615 + frozen
    )


def test_attributes_and_frame_rate_for_both_official_front_ends():
    for sample_rate, hop in ((16000, 160), (32000, 320)):
        enc = encoder(sample_rate=sample_rate)
        assert enc.sample_rate == sample_rate and enc.output_dim == 32 * TINY
        assert enc.frame_rate == sample_rate / hop / 32 == 3.125
        assert enc.representation == "panns_cnn14"
        lengths = torch.tensor([sample_rate, 2 * sample_rate + 7, sample_rate // 20])
        wave = 0.1 * torch.randn(3, int(lengths.max()))
        with torch.no_grad():
            out = enc.encode_audio(wave, lengths)
        # 1 + n // hop STFT frames, five 2x poolings; a 50 ms clip is padded to one output frame
        assert out.lengths.tolist() == [(1 + sample_rate // hop) // 32, (1 + (2 * sample_rate + 7) // hop) // 32, 1]
        assert out.frames.shape == (3, out.lengths.max(), 32 * TINY) and out.pooled.shape == (3, 32 * TINY)
        assert torch.isfinite(out.frames).all() and (out.frames[2, 1:] == 0).all()
    with pytest.raises(SepkitError, match="16000, 32000"):
        encoder(sample_rate=22050)


def test_default_mel_matrix_is_librosas_slaney_filterbank():
    from sepkit_panns.frontend import FRONTENDS

    for sample_rate, s in FRONTENDS.items():
        got = encoder(sample_rate=sample_rate).cnn.frontend.mel_weight.numpy()
        want = np_slaney_mel(sample_rate, s.window_size, s.mel_bins, s.fmin, s.fmax)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def test_frontend_log_mel_matches_numpy_with_the_checkpoints_mel_matrix(checkpoint, tmp_path):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=False)
    # give the file a distinct mel matrix: the model must use the checkpoint's, not a recomputed one
    mel_w = payload["model"]["logmel_extractor.melW"] * (
        0.5 + torch.rand(257, 64, generator=torch.Generator().manual_seed(1))
    )
    payload["model"]["logmel_extractor.melW"] = mel_w
    changed = tmp_path / "changed_mel.pth"
    torch.save(payload, changed)
    enc = encoder(checkpoint=str(changed))
    x = (0.1 * np.random.default_rng(0).standard_normal(16000 + 123)).astype(np.float32)
    x[:4000] = 0  # a silent stretch exercises the 1e-10 floor
    with torch.no_grad():
        got = enc.cnn.frontend(torch.from_numpy(x)[None])[0].numpy()
    want = np_logmel(x, 512, 160, mel_w.numpy())
    assert got.shape == want.shape == (1 + x.size // 160, 64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_official_layout_checkpoint_round_trip(checkpoint):
    path, model = checkpoint
    payload = torch.load(path, weights_only=False)
    assert set(payload) == {"iteration", "model", "sampler"} and "logmel_extractor.melW" in payload["model"]
    assert isinstance(payload["sampler"]["indexes_per_class"][0], np.ndarray)  # as the official files carry
    enc = encoder(checkpoint=str(path))
    loaded = enc.cnn.state_dict()
    assert set(loaded) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded[key], value), key
    wave, lengths = make_ragged_wave_batch(16000, 3, (0.5, 0.8, 1.1))
    with torch.no_grad():
        out, logits = enc.encode_audio(wave, lengths), enc.logits(wave, lengths)
        for i, n in enumerate(lengths.tolist()):
            direct = model(wave[i : i + 1, :n])
            frames = direct["frames"][0]
            assert out.lengths[i] == frames.shape[0]
            torch.testing.assert_close(out.frames[i, : frames.shape[0]], frames, rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(out.pooled[i], direct["embedding"][0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(logits[i], direct["logits"][0], rtol=1e-5, atol=1e-6)


def test_logits_shape_and_rows_independent_of_batch(checkpoint):
    enc = encoder(checkpoint=str(checkpoint[0]))
    wave, lengths = make_ragged_wave_batch(16000, 3, (0.5, 0.8, 1.1))
    with torch.no_grad():
        logits = enc.logits(wave, lengths)
        alone = enc.logits(wave[1:2, : lengths[1]])
        full = enc.logits(wave)
    assert logits.shape == (3, 527) == full.shape and torch.isfinite(logits).all()
    assert logits.std() > 0.01  # the random tagger is not degenerate
    torch.testing.assert_close(logits[1], alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits[2], full[2], rtol=1e-4, atol=1e-5)  # the longest row is unpadded anyway


def test_mismatching_checkpoint_keys_are_listed(checkpoint, tmp_path):
    path, _ = checkpoint
    payload = torch.load(path, weights_only=False)
    state = payload["model"]
    del state["fc1.bias"]
    state["conv_block7.conv1.weight"] = torch.zeros(1)
    bad = tmp_path / "bad.pth"
    torch.save(payload, bad)
    with pytest.raises(SepkitError, match=r"missing keys: fc1\.bias.*unexpected keys: conv_block7\.conv1\.weight"):
        encoder(checkpoint=str(bad))
    with pytest.raises(SepkitError, match=r"mis-shaped keys: bn0\.weight|mis-shaped keys: conv_block1"):
        encoder(checkpoint=str(path), base_channels=TINY * 2)
    with pytest.raises(SepkitError, match="not found"):
        encoder(checkpoint=str(tmp_path / "missing.pth"))


def test_window_of_the_checkpoint_must_match_the_sample_rate(tmp_path):
    from sepkit_panns.official import write_random_checkpoint

    path = tmp_path / "Cnn14_32k_random.pth"
    write_random_checkpoint(path, sample_rate=32000, base_channels=1, seed=0, sampler_state=False)
    with pytest.raises(SepkitError, match="window of 1024 samples.*set sample_rate: 32000"):
        encoder(checkpoint=str(path), base_channels=1)
    assert encoder(checkpoint=str(path), base_channels=1, sample_rate=32000).sample_rate == 32000
    payload = torch.load(path, weights_only=True)
    payload["model"]["spectrogram_extractor.stft.conv_real.weight"][3, 0, 5] += 0.1
    torch.save(payload, path)
    with pytest.raises(SepkitError, match="not the periodic-Hann DFT basis"):
        encoder(checkpoint=str(path), base_channels=1, sample_rate=32000)


def test_short_and_silent_clips_are_finite():
    enc = encoder()
    wave = torch.zeros(2, 16000)
    wave[1, :800] = 0.1 * torch.randn(800)
    with torch.no_grad():
        out = enc.encode_audio(wave, torch.tensor([16000, 800]))
    assert out.lengths.tolist() == [3, 1]
    assert torch.isfinite(out.frames).all() and torch.isfinite(out.pooled).all()
