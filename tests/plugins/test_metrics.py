"""Metrics against independent numpy computations written from the reference formulas."""

import numpy as np
import pytest
import torch

from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

SR = 16000
RNG = np.random.default_rng(3)
REF = (0.1 * RNG.standard_normal((2, 4 * SR))).astype(np.float32)
EST = (REF + 0.05 * RNG.standard_normal(REF.shape)).astype(np.float32)
MIX = (REF + 0.1 * RNG.standard_normal(REF.shape)).astype(np.float32)


def metric(name, **config):
    return get_registry().build("metric", {"name": name, **config})


def score(name, est=EST, ref=REF, mix=None, **config):
    mix_t = None if mix is None else torch.from_numpy(mix)
    return metric(name, **config).score(torch.from_numpy(est), torch.from_numpy(ref), SR, mix_t).numpy()


def np_sdr(e, s):
    return 10 * np.log10(max(np.mean(s**2), 1e-10) / max(np.mean((e - s) ** 2), 1e-10))


def np_si_sdr(e, s, zero_mean=False):
    if zero_mean:
        e, s = e - e.mean(), s - s.mean()
    a = np.dot(e, s) / np.dot(s, s)
    return 10 * np.log10(np.sum((a * s) ** 2) / np.sum((e - a * s) ** 2))


def np_stft_mag(x, n_fft, hop, pad_mode="constant"):
    x = np.pad(x.astype(np.float64), n_fft // 2, mode=pad_mode)
    win = np.hanning(n_fft + 1)[:-1]
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop] * win
    return np.abs(np.fft.rfft(frames, axis=1))


def np_lsd(e, s, sr=SR):
    n_fft, hop = int(2048 * sr / 44100), sr // 100
    S, E = np_stft_mag(s, n_fft, hop), np_stft_mag(e, n_fft, hop)
    return np.mean(np.sqrt(np.mean(np.log10(S**2 / (E + 1e-12) ** 2 + 1e-12) ** 2, axis=1)))


def slaney_mel_filters(sr, n_fft, n_mels, fmin, fmax):
    """Slaney-scale triangular filters with area normalisation (as librosa's default 'slaney' norm)."""

    def hz_to_mel(f):
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        m = np.asarray(m, dtype=np.float64)
        lin = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, lin)

    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    filters = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        filters[i] = np.maximum(0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return filters


def np_mel_psnr(e, s):
    fb = slaney_mel_filters(SR, 512, 64, 50, 8000)

    def scaled(x):
        mel = fb @ np_stft_mag(x, 512, 160, pad_mode="reflect").T
        return np.clip((20 * np.log10(np.maximum(mel, 1e-5)) + 80) / 100, 0, 1)

    return 10 * np.log10(1 / np.mean((scaled(e) - scaled(s)) ** 2))


@pytest.mark.parametrize(
    "name, reference",
    [
        ("sdr", lambda e, s, m: np_sdr(e, s)),
        ("sdri", lambda e, s, m: np_sdr(e, s) - np_sdr(m, s)),
        ("si_sdr", lambda e, s, m: np_si_sdr(e, s)),
        ("si_sdri", lambda e, s, m: np_si_sdr(e, s) - np_si_sdr(m, s)),
        ("lsd", lambda e, s, m: np_lsd(e, s)),
        ("psnr", lambda e, s, m: np_mel_psnr(e, s)),
    ],
)
def test_matches_independent_formula(name, reference):
    got = score(name, mix=MIX)
    want = [
        reference(EST[i].astype(np.float64), REF[i].astype(np.float64), MIX[i].astype(np.float64)) for i in range(2)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_si_sdr_matches_fast_bss_eval_and_zero_mean_option():
    import fast_bss_eval

    offset = EST + 0.3
    want = fast_bss_eval.si_sdr(REF.astype(np.float64), offset.astype(np.float64))
    np.testing.assert_allclose(score("si_sdr", est=offset), want, rtol=1e-4)
    zero_mean = score("si_sdr", est=offset, zero_mean=True)
    np.testing.assert_allclose(zero_mean, [np_si_sdr(offset[i], REF[i], zero_mean=True) for i in range(2)], rtol=1e-4)
    assert (zero_mean > score("si_sdr", est=offset)).all()


def test_known_values():
    ceiling = 10 * np.log10(np.mean(REF.astype(np.float64) ** 2, axis=1) / 1e-10)
    np.testing.assert_allclose(score("sdr", est=REF), ceiling, rtol=1e-6)  # identical: the error floor is 1e-10
    assert (score("si_sdr", est=3 * REF) > 90).all()  # scale-invariant
    assert (np.abs(score("sdr", est=2 * REF) - 0.0) < 1e-4).all()  # error equals signal: 0 dB
    assert (np.abs(score("lsd", est=REF)) < 1e-6).all() and (score("psnr", est=REF) > 100).all()
    silence = np.zeros_like(REF)
    for name in ("sdr", "si_sdr", "lsd", "psnr"):
        assert np.isfinite(score(name, est=silence, ref=silence)).all(), name
        assert np.isfinite(score(name, est=REF, ref=silence)).all(), name


def test_bss_sdr_allows_short_filters():
    # a 3-tap FIR of the reference: bss_eval's 512-tap projection absorbs it, plain SDR does not
    filtered = np.stack([np.convolve(r, [0.6, 0.3, 0.1])[: r.size] for r in REF]).astype(np.float32)
    bss = score("bss_sdr", est=filtered)
    assert (bss > 40).all() and (score("sdr", est=filtered) < 15).all()
    noisy = score("bss_sdr", est=EST)
    assert (np.abs(noisy - np.array([np_sdr(EST[i], REF[i]) for i in range(2)])) < 1.0).all()


def test_lsd_audioldm_preprocessing_changes_alignment():
    shifted = np.concatenate([np.zeros((2, 1120), np.float32), REF[:, :-1120]], axis=1) * 0.3 + 0.01
    assert (score("lsd", est=shifted, audioldm_preprocess=True) < 0.01).all()
    assert (score("lsd", est=shifted) > 0.1).all()


def test_improvement_metrics_need_the_mixture():
    with pytest.raises(SepkitError, match="--mixture"):
        score("sdri")
    assert metric("sdri").needs_mixture and not metric("sdr").needs_mixture
    assert metric("lsd").higher_is_better is False and metric("si_sdr").higher_is_better is True


def test_bss_sdr_of_a_silent_estimate_is_nan_and_leaves_the_other_rows_alone():
    """bss_eval's ratio is 0/0 for an all-zero estimate (fast_bss_eval raises on it); the benchmark then
    leaves that score out (a Silence reference row), and a batch's other rows are scored as alone."""
    est = EST.copy()
    est[1] = 0.0
    both = score("bss_sdr", est=est)
    assert np.isnan(both[1]) and np.isfinite(both[0])
    assert abs(both[0] - score("bss_sdr", est=EST)[0]) < 1e-9
