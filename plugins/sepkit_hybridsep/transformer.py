"""Pre-norm transformer encoder layers for the FE and the AET (Hybrid-Sep Table 1: 8 heads, 512-d).

x [B, N, D], key_padding bool [B, N] (True = padding) -> [B, N, D]. Each layer:
x + MHSA(LN(x)), then x + FFN(LN(x)) with FFN = Linear(D, ffn_dim), GELU, Linear(ffn_dim, D).
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn


class TransformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding: Optional[Tensor] = None) -> Tensor:
        h = self.norm1(x)
        x = x + self.dropout(self.attn(h, h, h, key_padding_mask=key_padding, need_weights=False)[0])
        return x + self.dropout(self.fc2(F.gelu(self.fc1(self.norm2(x)))))


class TransformerStack(nn.Module):
    def __init__(self, layers: int, dim: int, heads: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerLayer(dim, heads, ffn_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, key_padding: Optional[Tensor] = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_padding)
        return self.norm(x)
