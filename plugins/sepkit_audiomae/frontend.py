"""AudioMAE's input: a Kaldi-compatible log-mel filterbank, padded or cropped to a fixed length, normalised.

As the official data loader (facebookresearch/AudioMAE ``dataset.py``) computes it for
AudioSet, per clip (16 kHz mono float in [-1, 1])::

    wave  = wave - wave.mean()
    fbank = torchaudio.compliance.kaldi.fbank(wave, htk_compat=True, sample_frequency=16000,
                                              use_energy=False, window_type="hanning",
                                              num_mel_bins=128, dither=0.0, frame_shift=10)
    fbank: [1 + (samples - 400) // 160, 128]  (25 ms windows every 10 ms, Kaldi's snip_edges)
    zero-pad (at the end, before normalising) or crop to 1024 frames (10.24 s)
    fbank = (fbank + 4.2677393) / (2 * 4.5689974)       # AudioSet mean and std

A clip shorter than one 25 ms window (400 samples) is zero-padded to it first.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLE_RATE = 16000  # Hz: the official front end is defined at 16 kHz only
FRAME_SHIFT_MS = 10.0
FRAME_LENGTH_MS = 25.0
FRAMES_PER_SECOND = 1000.0 / FRAME_SHIFT_MS  # 100 fbank frames per second
WINDOW_SAMPLES = int(SAMPLE_RATE * FRAME_LENGTH_MS / 1000)  # 400
HOP_SAMPLES = int(SAMPLE_RATE * FRAME_SHIFT_MS / 1000)  # 160
AUDIOSET_MEAN = -4.2677393  # the official norm_stats['audioset']
AUDIOSET_STD = 4.5689974


PREEMPHASIS = 0.97  # Kaldi's default preemphasis_coefficient
FFT_SIZE = 512  # the 400-sample window zero-padded to the next power of two, as Kaldi does
LOG_FLOOR = torch.finfo(torch.float32).eps  # Kaldi's floor before the log (no dither)


@functools.lru_cache(maxsize=4)
def mel_banks(num_mel_bins: int) -> Tensor:
    """Kaldi's triangular mel filters at 16 kHz for a 512-point FFT: float32 [num_mel_bins, 257]."""
    import torchaudio.compliance.kaldi as kaldi

    banks, _ = kaldi.get_mel_banks(num_mel_bins, FFT_SIZE, float(SAMPLE_RATE), 20.0, 0.0, 100.0, -500.0, 1.0)
    return F.pad(banks.float(), (0, 1))  # no weight on the Nyquist bin, as kaldi.fbank


def kaldi_fbank_features(wave: Tensor, num_mel_bins: int = 128) -> Tensor:
    """One clip: wave float [samples] at 16 kHz -> log-mel fbank float32 [frames, num_mel_bins], un-normalised.

    What the official loader gets from ``torchaudio.compliance.kaldi.fbank`` (module docstring),
    computed directly: the clip's mean removed; per 25 ms frame every 10 ms (Kaldi's snip_edges,
    frames = 1 + (samples - 400) // 160): DC offset removed, preemphasis 0.97, Hann window,
    512-point power spectrum, htk mel filters, log with a float32-eps floor. About half the time
    of ``kaldi.fbank``, which also computes frame energies that are not used; equal to it within
    float32 rounding (tests). One clip per call on purpose: the frames of one 10 s clip stay in
    the CPU's cache, a batch of them did not and was slower.
    """
    wave = wave.float()
    if wave.shape[-1] < WINDOW_SAMPLES:
        wave = F.pad(wave, (0, WINDOW_SAMPLES - wave.shape[-1]))
    wave = wave - wave.mean()
    frames = wave.unfold(-1, WINDOW_SAMPLES, HOP_SAMPLES)  # [frames, 400]
    frames = frames - frames.mean(-1, keepdim=True)
    previous = torch.cat((frames[:, :1], frames[:, :-1]), dim=-1)  # x[max(0, j - 1)]
    window = torch.hann_window(WINDOW_SAMPLES, periodic=False, device=wave.device)
    spectrum = torch.fft.rfft((frames - PREEMPHASIS * previous) * window, n=FFT_SIZE)
    power = spectrum.real.square() + spectrum.imag.square()  # [frames, 257]
    return (power @ mel_banks(num_mel_bins).to(wave.device).T).clamp_min(LOG_FLOOR).log()


def fbank_frames(samples: Tensor) -> Tensor:
    """long [B]: fbank frames of clips of ``samples`` samples (before padding or cropping)."""
    samples = samples.to(torch.long).clamp_min(WINDOW_SAMPLES)
    return 1 + torch.div(samples - WINDOW_SAMPLES, HOP_SAMPLES, rounding_mode="floor")


def fit_to_length(fbank: Tensor, target_frames: int) -> Tensor:
    """[frames, mel] -> [target_frames, mel]: zero rows appended, or the first ``target_frames`` kept."""
    frames = fbank.shape[0]
    if frames < target_frames:
        return F.pad(fbank, (0, 0, 0, target_frames - frames))
    return fbank[:target_frames]


def normalise(fbank: Tensor, mean: float = AUDIOSET_MEAN, std: float = AUDIOSET_STD) -> Tensor:
    """(fbank - mean) / (2 * std), the official normalisation (AudioSet statistics by default)."""
    return (fbank - mean) / (2 * std)


def audiomae_input(
    wave: Tensor,
    lengths: Tensor,
    target_frames: int = 1024,
    num_mel_bins: int = 128,
    mean: float = AUDIOSET_MEAN,
    std: float = AUDIOSET_STD,
) -> Tensor:
    """A ragged batch -> the ViT's input image float32 [B, 1, target_frames, num_mel_bins] (time, mel).

    wave float [B, T] at 16 kHz; lengths long [B] valid samples of each row. Each row is
    processed at its own length (its fbank does not depend on the batch).
    """
    rows = []
    for row, n in zip(wave, lengths.tolist()):
        fbank = kaldi_fbank_features(row[: max(int(n), 1)], num_mel_bins)
        rows.append(normalise(fit_to_length(fbank, target_frames), mean, std))
    return torch.stack(rows)[:, None]
