"""The PANNs log-mel front end with the official numerics, on ``torch.stft``.

The official CNN14 (qiuqiangkong/audioset_tagging_cnn, ``pytorch/models.py``) builds its
input with torchlibrosa: ``Spectrogram`` (a DFT as two Conv1d layers: centred frames,
reflection padding of ``n_fft // 2`` at both ends, periodic Hann window, power 2) and
``LogmelFilterBank`` (``power @ melW`` with ``melW = librosa.filters.mel(sr, n_fft, n_mels,
fmin, fmax).T``, i.e. Slaney mel scale and Slaney area normalisation, then
``10 log10(max(x, amin)) - 10 log10(max(amin, ref))`` with ``ref = 1``, ``amin = 1e-10``,
``top_db = None``). ``LogMelFrontEnd`` computes the same with an FFT.

The mel matrix is a persistent buffer ``mel_weight`` [n_fft // 2 + 1, n_mels] (the official
``logmel_extractor.melW``); loading an official checkpoint replaces it with the
checkpoint's own matrix. The STFT has no state: the official conv weights are the windowed
DFT basis, which ``official.py`` checks against ``stft_basis`` and drops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

AMIN = 1e-10
REF = 1.0


@dataclass(frozen=True)
class FrontEndSettings:
    """The official front-end parameters of one CNN14 checkpoint family."""

    sample_rate: int
    window_size: int  # n_fft = win_length
    hop_size: int
    mel_bins: int
    fmin: float
    fmax: float


FRONTENDS = {
    # Cnn14_16k_mAP=0.438.pth (model type Cnn14_16k asserts exactly these values)
    16000: FrontEndSettings(16000, 512, 160, 64, 50.0, 8000.0),
    # Cnn14_mAP=0.431.pth (the 32 kHz defaults of pytorch/main.py and inference.py)
    32000: FrontEndSettings(32000, 1024, 320, 64, 50.0, 14000.0),
}


def _hz_to_slaney_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    mel = hz / f_sp
    above = hz >= min_log_hz
    mel[above] = min_log_mel + np.log(hz[above] / min_log_hz) / logstep
    return mel


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    hz = mel * f_sp
    above = mel >= min_log_mel
    hz[above] = min_log_hz * np.exp(logstep * (mel[above] - min_log_mel))
    return hz


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """float32 [n_fft // 2 + 1, n_mels]: triangular Slaney-scale filters with area normalisation.

    Equal to ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
    fmax=fmax).T`` (librosa's defaults ``htk=False, norm="slaney"``; computed in float64,
    returned as float32 like librosa).
    """
    bin_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    mel_lo, mel_hi = _hz_to_slaney_mel(np.array([fmin, fmax], dtype=np.float64))
    edges = _slaney_mel_to_hz(np.linspace(mel_lo, mel_hi, n_mels + 2))
    widths = np.diff(edges)
    offsets = edges[:, None] - bin_hz[None, :]  # [n_mels + 2, bins]
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.T.astype(np.float32)


def periodic_hann(n: int) -> np.ndarray:
    """float64 [n]: ``0.5 - 0.5 cos(2 pi k / n)`` (scipy/librosa ``get_window("hann", n, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def stft_basis(n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """The official STFT conv weights, float64 [n_fft // 2 + 1, 1, n_fft] each (real, imag).

    Row k is the periodic-Hann-windowed DFT kernel ``w[n] exp(-2 pi i k n / n_fft)``.
    """
    k = np.arange(n_fft // 2 + 1)[:, None]
    n = np.arange(n_fft)[None, :]
    phase = 2 * np.pi * ((k * n) % n_fft) / n_fft
    window = periodic_hann(n_fft)[None, :]
    return (np.cos(phase) * window)[:, None, :], (-np.sin(phase) * window)[:, None, :]


class LogMelFrontEnd(nn.Module):
    """wave float [B, T] -> log-mel float [B, 1 + T // hop, mel_bins] in dB (official CNN14 numerics).

    Always computed in float32 with autocast off. Rows must have more than ``n_fft // 2``
    samples (reflection padding); ``Cnn14`` pads shorter input first.
    """

    def __init__(self, settings: FrontEndSettings) -> None:
        super().__init__()
        self.settings = settings
        self.n_fft = settings.window_size
        self.hop = settings.hop_size
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)
        mel = slaney_mel_filterbank(
            settings.sample_rate, settings.window_size, settings.mel_bins, settings.fmin, settings.fmax
        )
        self.register_buffer("mel_weight", torch.from_numpy(mel))

    def power_spectrogram(self, wave: Tensor) -> Tensor:
        """[B, T] -> |STFT|^2 float32 [B, frames, n_fft // 2 + 1]."""
        spec = torch.stft(
            wave.float(),
            self.n_fft,
            hop_length=self.hop,
            win_length=self.n_fft,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return (spec.real**2 + spec.imag**2).transpose(1, 2)

    def forward(self, wave: Tensor) -> Tensor:
        with torch.autocast(device_type=wave.device.type, enabled=False):
            mel = torch.matmul(self.power_spectrogram(wave), self.mel_weight.float())
            return 10.0 * torch.log10(mel.clamp_min(AMIN)) - 10.0 * math.log10(max(AMIN, REF))
