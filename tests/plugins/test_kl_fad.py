"""KL, FAD and AFSim against independent numpy/scipy computations and known values."""

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry
from sepkit.testing import MetricContract

SR = 16000
TINY = {"name": "panns-cnn14", "base_channels": 4}
RNG = np.random.default_rng(7)
REF = (0.1 * RNG.standard_normal((3, 2 * SR))).astype(np.float32)
REF[2] *= np.linspace(0, 1, 2 * SR, dtype=np.float32) ** 2  # a swelling clip, unlike the others
EST = (REF + 0.05 * RNG.standard_normal(REF.shape)).astype(np.float32)


class TestKLContract(MetricContract):
    name = "kl"
    config = "allow_random_weights: true\nencoder: {name: panns-cnn14, base_channels: 4}"


class TestFADContract(MetricContract):
    name = "fad"
    config = "allow_random_weights: true\nencoder: {name: panns-cnn14, base_channels: 1}"


def build(name, **config):
    return get_registry().build("metric", {"name": name, **config})


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    """A random-weight CNN14 in the official file layout (the real one is not available offline)."""
    from sepkit_panns.official import write_random_checkpoint

    path = tmp_path_factory.mktemp("kl") / "Cnn14_16k_random.pth"
    write_random_checkpoint(path, sample_rate=SR, base_channels=TINY["base_channels"], seed=11)
    return str(path)


@pytest.fixture(scope="module")
def kl(tagger):
    return build("kl", encoder=TINY, checkpoint=tagger)


# --- KL -------------------------------------------------------------------------------------
def np_kl(logits_ref, logits_est):
    """KL(ref || est) of softmax distributions, per row, in float64."""

    def log_softmax(z):
        z = np.asarray(z, dtype=np.float64)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    lr, le = log_softmax(logits_ref), log_softmax(logits_est)
    return np.sum(np.exp(lr) * (lr - le), axis=1)


def tagger_logits(metric, wave):
    with torch.no_grad():
        return metric.encoder.logits(torch.as_tensor(wave)).numpy()


def test_kl_matches_numpy_from_the_taggers_logits(kl):
    got = kl.score(torch.from_numpy(EST), torch.from_numpy(REF), SR).numpy()
    want = np_kl(tagger_logits(kl, REF), tagger_logits(kl, EST))
    assert got.dtype == np.float64 and got.shape == (3,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert (want > 1e-6).all()  # the comparison is not between zeros
    assert kl.higher_is_better is False and kl.needs_mixture is False


def test_kl_resamples_to_the_taggers_rate(kl):
    ref32 = AF.resample(torch.from_numpy(REF), SR, 32000)
    est32 = AF.resample(torch.from_numpy(EST), SR, 32000)
    got = kl.score(est32, ref32, 32000).numpy()
    back = [AF.resample(x, 32000, SR) for x in (ref32, est32)]
    np.testing.assert_allclose(got, np_kl(tagger_logits(kl, back[0]), tagger_logits(kl, back[1])), rtol=1e-9)


def test_kl_known_values(kl):
    ref = torch.from_numpy(REF)
    assert (kl.score(ref, ref, SR) == 0).all()  # identical clips
    silence = torch.zeros(SR * 2)
    estimate = torch.stack([silence, silence, ref[0], 2 * ref[1]])
    target = torch.stack([silence, ref[0], silence, ref[1]])
    values = kl.score(estimate, target, SR)
    assert torch.isfinite(values).all() and (values >= -1e-12).all()
    assert abs(float(values[0])) < 1e-12  # silence against silence
    assert values[3] > 0  # +6 dB shifts the log-mel input: KL is not scale-invariant


def test_kl_refuses_without_the_official_weights(tagger):
    with pytest.raises(SepkitError, match=r"Cnn14_16k_mAP=0\.438\.pth.*'checkpoint'"):
        build("kl")
    with pytest.raises(SepkitError, match="official PANNs CNN14 weights"):
        build("kl", encoder=TINY)
    assert build("kl", encoder=TINY, allow_random_weights=True).encoder.output_dim == 128
    assert build("kl", encoder={**TINY, "checkpoint": tagger}).encoder.config.checkpoint == tagger


def test_kl_needs_a_tagger():
    with pytest.raises(SepkitError, match="no logits"):
        build("kl", encoder={"name": "stft", "n_fft": 64, "hop_length": 32})


# --- FAD ------------------------------------------------------------------------------------
def np_frechet(x, y):
    """FAD from the definition, without scipy.linalg.sqrtm: tr sqrt(S1 S2) = sum sqrt(eig(S1^1/2 S2 S1^1/2))."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(0), y.mean(0)
    sx = (x - mx).T @ (x - mx) / (len(x) - 1)
    sy = (y - my).T @ (y - my) / (len(y) - 1)
    w, v = np.linalg.eigh(sx)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root @ sy @ root), 0, None)).sum()
    return float((mx - my) @ (mx - my) + np.trace(sx) + np.trace(sy) - 2 * cross)


def np_stft_magnitudes(x, n_fft, hop):
    """The frames the 'stft' encoder gives, as magnitudes: centred, reflect-padded, periodic Hann."""
    x = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    return np.abs(np.fft.rfft(np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * window, axis=1))


def test_frechet_distance_matches_an_independent_computation():
    from sepkit_metrics.fad import fad_from_embeddings

    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 12)) @ rng.standard_normal((12, 12))
    b = 0.7 * rng.standard_normal((300, 12)) @ rng.standard_normal((12, 12)) + 0.5
    np.testing.assert_allclose(fad_from_embeddings(a, b), np_frechet(a, b), rtol=1e-8)
    assert abs(fad_from_embeddings(a, a)) < 1e-9 * np.trace(np.cov(a, rowvar=False))  # a set against itself
    assert abs(fad_from_embeddings(a + 3, a) - 3**2 * 12) < 1e-8  # a pure mean shift
    singular = rng.standard_normal((5, 12))  # fewer frames than dimensions: singular covariances
    assert np.isfinite(fad_from_embeddings(singular, b)) and np.isfinite(fad_from_embeddings(singular, singular))
    with pytest.raises(SepkitError, match="at least 2"):
        fad_from_embeddings(a[:1], b)


def test_fad_metric_with_any_audio_encoder_matches_numpy():
    n_fft, hop = 30, 15
    fad = build("fad", encoder={"name": "stft", "n_fft": n_fft, "hop_length": hop, "sample_rate": SR})
    est, ref = EST[:, : SR // 2], REF[:, : SR // 2]
    want = np_frechet(
        np.concatenate([np_stft_magnitudes(x, n_fft, hop) for x in est]),
        np.concatenate([np_stft_magnitudes(x, n_fft, hop) for x in ref]),
    )
    got = fad.score(torch.from_numpy(est), torch.from_numpy(ref), SR)
    assert got.dtype == torch.float64 and got.shape == (3,) and (got == got[0]).all()
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)
    # whole sets batch by batch: accumulate + compute equals the FAD of the concatenated set
    fad.accumulate(torch.from_numpy(est[:2]), torch.from_numpy(ref[:2]), SR)
    fad.accumulate(torch.from_numpy(est[2:]), torch.from_numpy(ref[2:]), SR)
    np.testing.assert_allclose(fad.compute(), want, rtol=1e-5)
    fad.reset()
    with pytest.raises(SepkitError, match="before any accumulate"):
        fad.compute()
    assert abs(float(fad.score(torch.from_numpy(ref), torch.from_numpy(ref), SR)[0])) < 1e-9
    assert fad.higher_is_better is False


def test_fad_with_panns_frames(tagger):
    fad = build("fad", encoder=TINY, checkpoint=tagger)
    ref, est = torch.from_numpy(REF[:, :SR]), torch.from_numpy(EST[:, :SR])
    # the embeddings are every valid conv_block6 frame of every clip
    with torch.no_grad():
        features = fad.encoder.encode_audio(ref, torch.full((3,), ref.shape[1]))
    assert np.allclose(fad.embed(ref, SR), features.frames.reshape(-1, 128).double().numpy())
    # 9 frames of 128 dimensions: singular covariances, still about 0 for a set against itself
    assert abs(float(fad.score(ref, ref, SR)[0])) < 1e-4
    assert float(fad.score(est, ref, SR)[0]) > 0.1
    silence = torch.zeros_like(ref)
    assert torch.isfinite(fad.score(silence, silence, SR)).all() and torch.isfinite(fad.score(silence, ref, SR)).all()
    with pytest.raises(SepkitError, match=r"Cnn14_16k_mAP=0\.438\.pth"):
        build("fad")


# --- AFSim ----------------------------------------------------------------------------------
def test_afsim_fails_with_a_clear_message():
    with pytest.raises(
        SepkitError, match="AFSim needs an audio-foundation-model embedding plugin .*not available offline"
    ):
        build("afsim")
    assert "afsim" in [e.name for e in get_registry().entries("metric")]
