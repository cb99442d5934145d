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


def kaldi_fbank_features(wave: Tensor, num_mel_bins: int = 128) -> Tensor:
    """One clip: wave float [samples] at 16 kHz -> log-mel fbank float32 [frames, num_mel_bins], un-normalised.

    The clip's mean is removed first, as the official loader does; frames = 1 + (samples - 400) // 160.
    """
    import torchaudio.compliance.kaldi as kaldi

    wave = wave.float()
    if wave.shape[-1] < WINDOW_SAMPLES:
        wave = F.pad(wave, (0, WINDOW_SAMPLES - wave.shape[-1]))
    wave = wave - wave.mean()
    return kaldi.fbank(
        wave[None],
        htk_compat=True,
        sample_frequency=SAMPLE_RATE,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=num_mel_bins,
        dither=0.0,
        frame_shift=FRAME_SHIFT_MS,
        frame_length=FRAME_LENGTH_MS,
    )


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
