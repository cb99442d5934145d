"""The non-autoregressive (NAR) transformer both HSM-TSS separation stages are built from.

A plain pre-norm transformer encoder: every token attends to every valid token (no causal
mask), ``padding`` marks the tokens no one attends to. Each block is::

    x = x + Attention(LayerNorm(x))      # multi-head self-attention, biases on q/k/v and output
    x = x + FFN(LayerNorm(x))            # Linear(D, r D) -> GELU -> Linear(r D, D)

and the stack ends with a LayerNorm. Parameters per block: 12 D^2 + 13 D for r = 4
(``block_parameters``), so 7.09 M at D = 768.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.dropout import Dropout, attention_with_dropout


def block_parameters(dim: int, ffn_ratio: float = 4.0) -> int:
    """Parameters of one ``Block`` of width ``dim``: attention 4 D^2 + 4 D, FFN 2 r D^2 + r D + D, 2 LayerNorms 4 D."""
    hidden = int(dim * ffn_ratio)
    return (4 * dim * dim + 4 * dim) + (2 * dim * hidden + hidden + dim) + 4 * dim


class SelfAttention(nn.Module):
    """Multi-head self-attention over [B, L, D] with a key padding mask."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """x: [B, L, D]; keep: bool [B, L], True for tokens that may be attended to -> [B, L, D]."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attend = keep[:, None, None, :]  # [B, 1, 1, L]: the same keys for every head and query
        if self.training and self.dropout > 0:
            out = attention_with_dropout(q, k, v, attend, self.dropout)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """One pre-norm transformer block: [B, L, D] -> [B, L, D]."""

    def __init__(self, dim: int, heads: int, ffn_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = int(dim * ffn_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), Dropout(dropout), nn.Linear(hidden, dim), Dropout(dropout)
        )
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), keep))
        return x + self.ffn(self.norm2(x))


class NARTransformer(nn.Module):
    """``depth`` pre-norm blocks of width ``dim`` and a final LayerNorm.

    forward(x [B, L, dim], keep bool [B, L]) -> [B, L, dim]. Outputs at positions where
    ``keep`` is False are computed but depend on nothing else attending to them.
    """

    def __init__(self, dim: int, depth: int, heads: int, ffn_ratio: float = 4.0, dropout: float = 0.1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, ffn_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, keep: Tensor) -> Tensor:
        """x: [B, L, dim]; keep: bool [B, L] (every row needs at least one True) -> [B, L, dim]."""
        for block in self.blocks:
            x = block(x, keep)
        return self.norm(x)


def padding_keep(lengths: Tensor, width: int) -> Tensor:
    """bool [B, width]: True on the first ``lengths[b]`` positions of row b."""
    return torch.arange(width, device=lengths.device)[None] < lengths[:, None]
