"""``CausalTransformer``: a pre-norm transformer stack that attends under an explicit boolean mask.

Block: x + Attn(LN(x)), then x + FFN(LN(x)) (FFN: Linear(D, mult * D) -> GELU -> Linear(mult * D, D)),
and a final LayerNorm after the last block. Which key a query may see is the caller's choice (the
prefix-LM mask of ``CodecLM``), passed as ``mask`` bool [B, 1, queries, keys] (True = may attend).
With a ``KVCache`` the new positions' keys and values are written to the cache and the queries
attend over everything cached so far (token-by-token generation).

Parameters per block: 12 D^2 + 13 D with ``ffn_mult`` 4 (qkv 3D^2 + 3D, output D^2 + D, FFN 8D^2 + 5D,
two LayerNorms 4D); plus 2D for the final LayerNorm.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.dropout import Dropout, attention_with_dropout

from .kv_cache import KVCache


class SelfAttention(nn.Module):
    """Multi-head self-attention, x [B, n, D] -> [B, n, D], with an optional KV cache."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor, cache: Optional[KVCache] = None, layer: int = 0) -> Tensor:
        """x [B, n, D]; mask bool [B, 1, n, keys] (keys = n, or cache.length + n with a cache)."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        if self.training and self.dropout > 0:  # written out: SDPA's dropout path is slow on CPU
            y = attention_with_dropout(q, k, v, mask, self.dropout)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, ffn_mult: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_mult * dim), nn.GELU(), nn.Linear(ffn_mult * dim, dim), Dropout(dropout)
        )
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor, cache: Optional[KVCache] = None, layer: int = 0) -> Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask, cache, layer))
        return x + self.ffn(self.norm2(x))


class CausalTransformer(nn.Module):
    """``depth`` pre-norm blocks of width ``dim`` and a final LayerNorm: x [B, n, D] -> [B, n, D]."""

    def __init__(self, dim: int, depth: int, heads: int, ffn_mult: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, ffn_mult, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, mask: Tensor, cache: Optional[KVCache] = None) -> Tensor:
        """mask bool [B, 1, n, keys]; with ``cache`` the caller advances it after this pass."""
        for layer, block in enumerate(self.blocks):
            x = block(x, mask, cache, layer)
        return self.norm(x)
