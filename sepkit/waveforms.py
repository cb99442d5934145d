"""Length bookkeeping for decoded waveforms, shared by decoders and the pipeline.

``fit_length``: trim or zero-pad the last axis to a sample count.
``keep_valid_duration``: a decoder's batch output wave [B, T] at ``sample_rate`` made silent past
each row's valid duration (given as feature frames ``lengths`` at ``frame_rate`` frames/s), then
fitted to ``num_samples`` if given. Generative decoders produce audio for the whole padded batch;
this keeps the padding of short rows silent.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def fit_length(wave: Tensor, length: int) -> Tensor:
    """Trim or zero-pad the last axis of ``wave`` to ``length`` samples."""
    if wave.shape[-1] >= length:
        return wave[..., :length]
    return torch.nn.functional.pad(wave, (0, length - wave.shape[-1]))


def keep_valid_duration(
    wave: Tensor, lengths: Tensor, frame_rate: float, sample_rate: int, num_samples: Optional[int] = None
) -> Tensor:
    """wave float [B, T] at ``sample_rate``, lengths long [B] (valid frames at ``frame_rate``) -> [B, T']."""
    seconds = lengths.to(wave.device).double() / float(frame_rate)
    valid = torch.round(seconds * sample_rate).long()
    wave = wave * (torch.arange(wave.shape[-1], device=wave.device)[None] < valid[:, None])
    return wave if num_samples is None else fit_length(wave, num_samples)
