"""FE: the feature extractor of Hybrid-Sep's stage 1 (an STFT, then 3 transformer layers, 8 heads, 512-d).

wave [B, T] at ``sample_rate`` -> log-magnitude STFT (Hann ``n_fft``, hop ``hop``, centred) [B, frames, n_fft/2 + 1]
-> Linear -> + sinusoidal positions -> transformer (``transformer.TransformerStack``) -> frames [B, frames, dim],
with valid frames 1 + length // hop per row.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .transformer import TransformerStack


def sinusoidal_positions(length: int, dim: int, device=None) -> Tensor:
    """float [length, dim]: sin on even, cos on odd channels (Vaswani et al.)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table


class FeatureExtractor(nn.Module):
    def __init__(self, n_fft: int, hop: int, dim: int, layers: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.input = nn.Linear(n_fft // 2 + 1, dim)
        self.transformer = TransformerStack(layers, dim, heads, ffn_dim)

    def forward(self, wave: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """-> (frames [B, N, dim], key padding bool [B, N])."""
        spec = torch.stft(wave.float(), self.n_fft, self.hop, window=self.window, center=True, return_complex=True)
        x = torch.log1p(spec.abs()).transpose(1, 2)  # [B, N, bins]
        x = self.input(x)
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.device)
        valid = 1 + torch.div(lengths, self.hop, rounding_mode="floor")
        padding = torch.arange(x.shape[1], device=x.device)[None] >= valid[:, None]
        return self.transformer(x, padding), padding
