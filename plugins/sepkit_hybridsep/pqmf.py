"""Pseudo-QMF filter bank (Nguyen 1994 cosine modulation of a Kaiser-windowed prototype, as MB-MelGAN uses).

``PQMF(subbands=4, taps=62, cutoff=0.142, beta=9.0)``:

- prototype h[n] (n = 0..taps): ideal low-pass sinc with cut-off ``cutoff * pi`` times a Kaiser(beta) window;
- analysis  h_k[n] = 2 h[n] cos((2k + 1) pi / (2M) (n - taps / 2) + (-1)^k pi / 4),
- synthesis g_k[n] = 2 h[n] cos((2k + 1) pi / (2M) (n - taps / 2) - (-1)^k pi / 4), k = 0..M-1.

``analysis``: wave [B, T] -> sub-bands [B, M, ceil(T / M)] (filter, then keep every M-th sample; band k
covers k * sr / (2M) ... (k + 1) * sr / (2M), at sr / M Hz). ``synthesis``: [B, M, L] -> [B, M * L]
(zero-stuff by M, filter, sum). The defaults reconstruct to about -40 dB (near-perfect, not perfect).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def prototype_filter(taps: int, cutoff: float, beta: float) -> np.ndarray:
    """float64 [taps + 1]: Kaiser-windowed ideal low-pass (cut-off ``cutoff`` * pi rad/sample)."""
    if taps % 2:
        raise ValueError(f"PQMF taps must be even, got {taps}")
    n = np.arange(taps + 1) - taps / 2
    with np.errstate(invalid="ignore"):
        ideal = np.sin(math.pi * cutoff * n) / (math.pi * n)
    ideal[taps // 2] = cutoff
    return ideal * np.kaiser(taps + 1, beta)


class PQMF(nn.Module):
    """M-band pseudo-QMF analysis / synthesis (fixed buffers, no parameters)."""

    def __init__(self, subbands: int = 4, taps: int = 62, cutoff: float = 0.142, beta: float = 9.0) -> None:
        super().__init__()
        self.subbands, self.taps = subbands, taps
        h = prototype_filter(taps, cutoff, beta)
        n = np.arange(taps + 1) - taps / 2
        analysis = np.zeros((subbands, taps + 1))
        synthesis = np.zeros((subbands, taps + 1))
        for k in range(subbands):
            phase = (2 * k + 1) * math.pi / (2 * subbands) * n
            analysis[k] = 2 * h * np.cos(phase + (-1) ** k * math.pi / 4)
            synthesis[k] = 2 * h * np.cos(phase - (-1) ** k * math.pi / 4)
        self.register_buffer("analysis_filter", torch.from_numpy(analysis).float()[:, None], persistent=False)
        self.register_buffer("synthesis_filter", torch.from_numpy(synthesis).float()[None], persistent=False)
        stuff = torch.zeros(subbands, subbands, subbands)
        for k in range(subbands):
            stuff[k, k, 0] = 1.0
        self.register_buffer("stuffing", stuff, persistent=False)

    def analysis(self, wave: Tensor) -> Tensor:
        """wave [B, T] -> [B, M, ceil(T / M)] (T padded with zeros to a multiple of M)."""
        m = self.subbands
        wave = F.pad(wave, (0, (-wave.shape[-1]) % m))[:, None]
        wave = F.pad(wave, (self.taps // 2, self.taps // 2))
        return F.conv1d(wave, self.analysis_filter.to(wave.dtype), stride=m)

    def synthesis(self, bands: Tensor) -> Tensor:
        """[B, M, L] -> wave [B, M * L]."""
        m = self.subbands
        up = F.conv_transpose1d(bands, self.stuffing.to(bands.dtype) * m, stride=m)
        up = F.pad(up, (self.taps // 2, self.taps // 2))
        return F.conv1d(up, self.synthesis_filter.to(bands.dtype))[:, 0]
