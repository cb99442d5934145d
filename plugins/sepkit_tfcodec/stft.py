"""TF-Codec's input and output transform: a power-law compressed complex STFT at 16 kHz.

``compress``: wave float [B, T] -> float [B, 2, N, n_fft/2 + 1] (real and imaginary parts of
``|X|**power * X/|X|``), Hann window of ``win_length`` samples every ``hop_length`` samples,
centred frames (frame n covers samples ``n*hop - win/2 ... n*hop + win/2``, zero padding at the
ends). TF-Codec's 6 kbps model uses a 20 ms window (320) with a 5 ms hop (80) and power 0.3.
``decompress`` inverts it (``|Y|**(1/power)`` with Y's phase, then the inverse STFT).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CompressedSTFT(nn.Module):
    """wave [B, T] <-> power-law compressed complex spectrum [B, 2, frames, bins]."""

    def __init__(self, win_length: int = 320, hop_length: int = 80, power: float = 0.3, eps: float = 1e-7) -> None:
        super().__init__()
        self.win_length, self.hop_length, self.power, self.eps = win_length, hop_length, power, eps
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    @property
    def bins(self) -> int:
        return self.win_length // 2 + 1

    def compress(self, wave: Tensor) -> Tensor:
        """wave float [B, T] -> float [B, 2, T // hop + 1, bins]."""
        spec = torch.stft(
            wave.float(),
            self.win_length,
            self.hop_length,
            self.win_length,
            self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # [B, bins, N]
        magnitude = spec.abs()
        scale = magnitude.clamp_min(self.eps).pow(self.power - 1.0)  # |X|**p / |X|
        spec = spec * scale
        return torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)

    def decompress(self, features: Tensor) -> Tensor:
        """float [B, 2, N, bins] -> wave float [B, (N - 1) * hop]. Always in float32 (complex bf16 does not exist)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            features = features.float()
            real, imag = features[:, 0].transpose(1, 2), features[:, 1].transpose(1, 2)  # [B, bins, N]
            magnitude = (real.square() + imag.square() + self.eps).sqrt()
            scale = magnitude.pow(1.0 / self.power - 1.0)  # |Y|**(1/p) / |Y|
            spec = torch.complex(real * scale, imag * scale)
            length = (features.shape[2] - 1) * self.hop_length
            return torch.istft(
                spec, self.win_length, self.hop_length, self.win_length, self.window, center=True, length=length
            )
