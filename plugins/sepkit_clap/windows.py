"""CLAP's audio input: 48 kHz mono cut into 10 s windows, each repeat-padded as LAION-CLAP pads.

LAION-CLAP's (non-fusion) models embed exactly 10 s at 48 kHz (480,000 samples). A shorter clip
is repeated a whole number of times and zero-padded to 10 s (``data_filling='repeatpad'`` of
laion_clap's ``get_audio_features``). A longer clip is cut here into consecutive 10 s windows, the
last one repeat-padded; LAION-CLAP instead embeds one random 10 s crop, which would make embeddings
non-deterministic.
"""

from __future__ import annotations

import torch
import torchaudio.functional as AF
from torch import Tensor

CLAP_SAMPLE_RATE = 48000
WINDOW_SECONDS = 10
WINDOW = CLAP_SAMPLE_RATE * WINDOW_SECONDS  # samples


def to_clap_rate(wave: Tensor, lengths: Tensor, sample_rate: int) -> tuple[Tensor, Tensor]:
    """wave float [B, T] at ``sample_rate``, lengths long [B] -> the same at 48 kHz (torchaudio's resample)."""
    if sample_rate == CLAP_SAMPLE_RATE:
        return wave, lengths
    resampled = AF.resample(wave, sample_rate, CLAP_SAMPLE_RATE)
    scaled = (lengths.to(torch.long) * CLAP_SAMPLE_RATE + sample_rate - 1) // sample_rate
    return resampled, scaled.clamp(max=resampled.shape[-1])


def repeat_pad(segment: Tensor, size: int = WINDOW) -> Tensor:
    """segment float [n] (n <= size) -> [size]: repeated floor(size / n) times, then zero-padded."""
    n = segment.shape[-1]
    if n == 0:
        return segment.new_zeros(size)
    return torch.nn.functional.pad(segment.repeat(size // n), (0, size - (size // n) * n))


def window_count(lengths: Tensor, size: int = WINDOW) -> Tensor:
    """long [B]: windows of ``size`` samples covering each row (at least one)."""
    return ((lengths.to(torch.long) + size - 1) // size).clamp(min=1)


def cut_windows(wave: Tensor, lengths: Tensor, size: int = WINDOW) -> tuple[Tensor, Tensor]:
    """wave float [B, T] at 48 kHz, lengths long [B] -> windows float [W, size], counts long [B] (W = counts.sum()).

    Row b contributes ``counts[b]`` consecutive windows of its valid samples, in order.
    """
    counts = window_count(lengths, size)
    windows = []
    for row, n, count in zip(wave, lengths.tolist(), counts.tolist()):
        for start in range(0, count * size, size):
            windows.append(repeat_pad(row[start : min(n, start + size)], size))
    return torch.stack(windows), counts
