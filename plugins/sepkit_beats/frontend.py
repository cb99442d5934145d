"""BEATs' input: a Kaldi-compatible 128-bin log-mel filterbank of 16 kHz audio, normalised.

As ``BEATs.preprocess`` (microsoft/unilm ``beats/BEATs.py``) computes it, per clip::

    fbank = torchaudio.compliance.kaldi.fbank(wave * 2**15, num_mel_bins=128, sample_frequency=16000,
                                              frame_length=25, frame_shift=10)   # Kaldi defaults otherwise:
                                              # povey window, pre-emphasis 0.97, DC removal, no dither
    fbank: [1 + (samples - 400) // 160, 128]   (25 ms windows every 10 ms, snip_edges)
    fbank = (fbank - 15.41663) / (2 * 6.55582)  # AudioSet statistics of the released models

The patch embedding (16 x 16, stride 16) then sees ``frames // 16`` whole 160 ms steps. *Ours*
(``pad_last_patch``, default on): a clip's last partial step is kept by zero-padding its wave to
whole steps, which is what the official batch code does to every row but the longest (it pads the
batch with zeros and masks only patches that are entirely padding); off, the partial step is
dropped as the official code does for a single clip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SAMPLE_RATE = 16000  # Hz: BEATs is trained on 16 kHz AudioSet only
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FRAMES_PER_SECOND = SAMPLE_RATE / HOP_SAMPLES  # 100 fbank frames per second
WAVE_SCALE = 2**15  # the official code feeds int16-range samples to Kaldi's fbank
FBANK_MEAN = 15.41663
FBANK_STD = 6.55582


def fbank_frames(samples: Tensor) -> Tensor:
    """long [B]: fbank frames of clips of ``samples`` samples (a clip shorter than 25 ms gives one)."""
    samples = samples.to(torch.long).clamp_min(WINDOW_SAMPLES)
    return 1 + torch.div(samples - WINDOW_SAMPLES, HOP_SAMPLES, rounding_mode="floor")


def patch_steps(samples: Tensor, patch: int = 16, pad_last_patch: bool = True) -> Tensor:
    """long [B]: 160 ms time steps (patch rows) BEATs sees for clips of ``samples`` samples (at least 1)."""
    frames = fbank_frames(samples)
    if pad_last_patch:
        return torch.div(frames + patch - 1, patch, rounding_mode="floor")
    return torch.div(frames, patch, rounding_mode="floor").clamp_min(1)


def kaldi_fbank(wave: Tensor, num_mel_bins: int = 128) -> Tensor:
    """One clip: wave float [samples] in [-1, 1] at 16 kHz -> un-normalised log-mel [frames, num_mel_bins]."""
    import torchaudio.compliance.kaldi as kaldi

    wave = wave.float()
    if wave.shape[-1] < WINDOW_SAMPLES:
        wave = F.pad(wave, (0, WINDOW_SAMPLES - wave.shape[-1]))
    return kaldi.fbank(
        wave[None] * WAVE_SCALE,
        num_mel_bins=num_mel_bins,
        sample_frequency=SAMPLE_RATE,
        frame_length=WINDOW_SAMPLES * 1000 / SAMPLE_RATE,
        frame_shift=HOP_SAMPLES * 1000 / SAMPLE_RATE,
    )


def beats_input(
    wave: Tensor,
    lengths: Tensor,
    num_mel_bins: int = 128,
    patch: int = 16,
    mean: float = FBANK_MEAN,
    std: float = FBANK_STD,
    pad_last_patch: bool = True,
) -> tuple[Tensor, Tensor]:
    """A ragged batch -> (fbank float32 [B, 1, steps * patch, num_mel_bins], steps long [B]).

    wave float [B, T] at 16 kHz, lengths long [B]. Each row's fbank is computed from its own valid
    samples (zero-padded to whole 160 ms steps with ``pad_last_patch``), normalised as
    (fbank - mean) / (2 * std), cut to whole steps, and zero-padded (after normalising) to the
    longest row; ``steps`` says how many steps of each row are real.
    """
    steps = patch_steps(lengths, patch, pad_last_patch)
    rows = []
    for row, n, s in zip(wave, lengths.tolist(), steps.tolist()):
        valid = row[: max(int(n), 1)]
        need = WINDOW_SAMPLES + HOP_SAMPLES * (s * patch - 1)  # samples giving exactly s * patch frames
        if valid.shape[-1] < need:
            valid = F.pad(valid, (0, need - valid.shape[-1]))
        fbank = kaldi_fbank(valid, num_mel_bins)[: s * patch]
        rows.append((fbank - mean) / (2 * std))
    width = int(steps.max()) * patch
    batch = torch.stack([F.pad(r, (0, 0, 0, width - r.shape[0])) for r in rows])
    return batch[:, None], steps.to(wave.device)
