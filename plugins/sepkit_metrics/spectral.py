"""Spectral metrics as audioldm-eval 0.0.3 computes them: LSD and mel PSNR.

``LSD`` (log-spectral distance): magnitude STFT with ``n_fft = int(2048 * sr / 44100)``
(743 at 16 kHz), hop ``sr / 100``, periodic Hann window, centred frames with zero
padding; per frame ``sqrt(mean over bins of (log10(S^2 / (S_hat + 1e-12)^2 + 1e-12))^2)``,
averaged over frames. Lower is better.

``MelPSNR``: 64-bin magnitude mel spectrogram (n_fft 512, hop 160, fmin 50 Hz,
fmax 8000 Hz, Slaney scale and norm, centred with reflection padding), scaled as
``clip((20 log10(max(M, 1e-5)) + 80) / 100, 0, 1)``; ``PSNR = 10 log10(1 / MSE)`` (peak 1).

audioldm-eval first mean-removes and peak-normalises both clips and trims 1120
samples from the start of the estimate (an offset of its vocoder). That
preprocessing is off by default here (``audioldm_preprocess: true`` turns it on);
result tables say which was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from sepkit.interfaces import Metric

AUDIOLDM_OFFSET = 1120  # samples trimmed from the estimate by audioldm-eval


def audioldm_preprocess(estimate: Tensor, reference: Tensor) -> tuple[Tensor, Tensor]:
    """Mean removal, peak normalisation and the 1120-sample estimate trim of audioldm-eval; [B, T] each."""

    def normalise(x: Tensor) -> Tensor:
        x = x - x.mean(-1, keepdim=True)
        return x / x.abs().amax(-1, keepdim=True).clamp_min(1e-8)

    estimate = normalise(estimate)[:, AUDIOLDM_OFFSET:]
    reference = normalise(reference)
    n = min(estimate.shape[-1], reference.shape[-1])
    return estimate[:, :n], reference[:, :n]


def lsd_stft_magnitude(wave: Tensor, sample_rate: int) -> Tensor:
    """wave float [B, T] -> magnitude float64 [B, frames, bins] with audioldm-eval's LSD settings."""
    n_fft = int(2048 * sample_rate / 44100)
    hop = sample_rate // 100
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64, device=wave.device)
    spec = torch.stft(
        wave.double(), n_fft, hop_length=hop, window=window, center=True, pad_mode="constant", return_complex=True
    )
    return spec.abs().transpose(1, 2)


def lsd_frame_distances(estimate: Tensor, reference: Tensor, sample_rate: int) -> Tensor:
    """float64 [B, frames]: per frame, the RMS over bins of the log10 power ratio (LSD before the frame mean)."""
    s = lsd_stft_magnitude(reference, sample_rate)
    e = lsd_stft_magnitude(estimate, sample_rate)
    log_ratio = torch.log10(s**2 / (e + 1e-12) ** 2 + 1e-12)
    return torch.sqrt((log_ratio**2).mean(-1))


def log_spectral_distance(estimate: Tensor, reference: Tensor, sample_rate: int) -> Tensor:
    """float64 [B]: mean over frames of ``lsd_frame_distances``."""
    return lsd_frame_distances(estimate, reference, sample_rate).mean(-1)


class LSD(Metric):
    """Log-spectral distance (audioldm-eval 0.0.3), lower is better."""

    higher_is_better = False

    @dataclass
    class Config:
        audioldm_preprocess: bool = False

    def score(self, estimate, reference, sample_rate, mixture=None):
        if self.config.audioldm_preprocess:
            estimate, reference = audioldm_preprocess(estimate, reference)
        return log_spectral_distance(estimate, reference, sample_rate)


class MelPSNR(Metric):
    """PSNR of scaled 64-bin log-mel spectrograms (audioldm-eval 0.0.3), dB."""

    @dataclass
    class Config:
        audioldm_preprocess: bool = False

    def scaled_log_mel(self, wave: Tensor, sample_rate: int) -> Tensor:
        """wave [B, T] -> float [B, 64, frames] in [0, 1].

        Reflection padding needs more than n_fft / 2 = 256 samples: a shorter wave is zero-padded
        to 257 first (estimate and reference alike, so a 1-sample pair still gets a score).
        """
        import torchaudio

        if wave.shape[-1] <= 256:
            wave = torch.nn.functional.pad(wave, (0, 257 - wave.shape[-1]))

        mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=512,
            hop_length=160,
            f_min=50.0,
            f_max=8000.0,
            n_mels=64,
            power=1.0,
            norm="slaney",
            mel_scale="slaney",
            center=True,
            pad_mode="reflect",
        ).to(wave.device)
        magnitude = mel(wave.float())
        return ((20 * torch.log10(magnitude.clamp_min(1e-5)) + 80) / 100).clamp(0, 1)

    def score(self, estimate, reference, sample_rate, mixture=None):
        if self.config.audioldm_preprocess:
            estimate, reference = audioldm_preprocess(estimate, reference)
        a = self.scaled_log_mel(estimate, sample_rate).double()
        b = self.scaled_log_mel(reference, sample_rate).double()
        mse = ((a - b) ** 2).mean(dim=(-2, -1)).clamp_min(1e-12)
        return 10 * torch.log10(1 / mse)
