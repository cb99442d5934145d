"""Sub-band spectrograms: PQMF bands -> STFT per band as real/imag channels, and back.

``BandSTFT(pqmf, n_fft, hop)``: wave [B, T] at sr -> spec [B, 2M, frames, n_fft / 2] (channel 2k is the real,
2k + 1 the imaginary part of band k; the Nyquist bin is dropped so the frequency axis halves evenly under the
TRCNN strides; frames = 1 + L // hop for band length L = ceil(T / M), Hann window, centred). ``inverse``
takes the same layout (Nyquist bin restored as zero) back to [B, T].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .pqmf import PQMF


class BandSTFT(nn.Module):
    def __init__(self, pqmf: PQMF, n_fft: int, hop: int) -> None:
        super().__init__()
        self.pqmf, self.n_fft, self.hop = pqmf, n_fft, hop
        self.bins = n_fft // 2
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def channels(self) -> int:
        return 2 * self.pqmf.subbands

    def forward(self, wave: Tensor) -> Tensor:
        bands = self.pqmf.analysis(wave.float())  # [B, M, L]
        b, m, length = bands.shape
        spec = torch.stft(
            bands.reshape(b * m, length), self.n_fft, self.hop, window=self.window, center=True, return_complex=True
        )[:, : self.bins]  # [B*M, bins, frames]
        spec = torch.view_as_real(spec).reshape(b, m, self.bins, -1, 2)  # [B, M, bins, frames, 2]
        return spec.permute(0, 1, 4, 3, 2).reshape(b, 2 * m, -1, self.bins)  # [B, 2M, frames, bins]

    def inverse(self, spec: Tensor, num_samples: int) -> Tensor:
        """spec [B, 2M, frames, bins] -> wave [B, num_samples]."""
        b, _, frames, bins = spec.shape
        m = self.pqmf.subbands
        z = spec.float().reshape(b, m, 2, frames, bins).permute(0, 1, 4, 3, 2).contiguous()
        z = torch.view_as_complex(z).reshape(b * m, bins, frames)
        z = F.pad(z, (0, 0, 0, 1))  # the dropped Nyquist bin, as zero
        length = -(-num_samples // m)
        bands = torch.istft(z, self.n_fft, self.hop, window=self.window, center=True, length=length)
        return self.pqmf.synthesis(bands.reshape(b, m, length))[:, :num_samples]
