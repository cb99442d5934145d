"""FA: frequency-axis attention, one conformer layer run along the frequency bins of every frame.

x [B, C, T, F] -> [B, C, T, F]: the sequence is the F bins of one frame, C-wide. Conformer layer
(Gulati et al. 2020): x + FFN/2, x + MHSA, x + conv module (pointwise 2C + GLU, depthwise conv with
``kernel`` (9 in Hybrid-Sep) along frequency, BatchNorm, SiLU, pointwise), x + FFN/2, LayerNorm.
Positions along frequency come from a learned per-bin embedding (up to ``max_bins``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FeedForward(nn.Module):
    def __init__(self, dim: int, mult: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mult * dim), nn.SiLU(), nn.Linear(mult * dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ConvModule(nn.Module):
    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.batch_norm = nn.BatchNorm1d(dim)
        self.pointwise_out = nn.Conv1d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:  # [N, L, D]
        h = F.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)
        h = F.silu(self.batch_norm(self.depthwise(h)))
        return self.pointwise_out(h).transpose(1, 2)


class ConformerLayer(nn.Module):
    """seq [N, L, D] -> [N, L, D]."""

    def __init__(self, dim: int, heads: int, kernel: int, ffn_mult: int = 4) -> None:
        super().__init__()
        self.ffn1 = FeedForward(dim, ffn_mult)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.conv = ConvModule(dim, kernel)
        self.ffn2 = FeedForward(dim, ffn_mult)
        self.out_norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = x + 0.5 * self.ffn1(x)
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.conv(x)
        x = x + 0.5 * self.ffn2(x)
        return self.out_norm(x)


class FrequencyAttention(nn.Module):
    """FA module: x [B, C, T, F] -> [B, C, T, F], a conformer layer along F (C must divide by ``heads``)."""

    def __init__(self, channels: int, heads: int = 8, kernel: int = 9, ffn_mult: int = 4, max_bins: int = 1024) -> None:
        super().__init__()
        self.position = nn.Parameter(torch.zeros(max_bins, channels))
        nn.init.normal_(self.position, std=0.02)
        self.layer = ConformerLayer(channels, heads, kernel, ffn_mult)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, f = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b * t, f, c) + self.position[:f]
        return self.layer(seq).reshape(b, t, f, c).permute(0, 3, 1, 2)
