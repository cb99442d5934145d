"""Self- and cross-attention over a U-Net feature map, conditioned on text tokens.

``TextAttentionBlock`` treats each (time, frequency) cell of a feature map ``[B, C, T, F]``
as a token of width C (time-major order) and applies, each pre-norm and residual::

    x = x + SelfAttention(LN(x))                       keys: the valid cells (time < length)
    x = x + CrossAttention(LN(x), text)                keys/values: projected text tokens [B, N, C]
    x = x + MLP(LN(x))                                 C -> 4C -> C, GELU

as in the attention layers of text-conditioned diffusion U-Nets, which OpenSep's separator
follows ("U-Net with self-attention and cross-attention layers", sec. 3.3). Attention runs
through ``scaled_dot_product_attention`` (its FLOPs are counted by ``sepkit complexity``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiHeadAttention(nn.Module):
    """queries [B, L, dim] attend to keys/values [B, S, kv_dim]; ``key_mask`` bool [B, S] (True: attend)."""

    def __init__(self, dim: int, kv_dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(kv_dim, 2 * dim, bias=False)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor, key_mask: Tensor) -> Tensor:
        b, length, dim = x.shape
        q = self.to_q(x).view(b, length, self.heads, -1).transpose(1, 2)
        k, v = self.to_kv(context).view(b, context.shape[1], 2, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = key_mask[:, None, None, :].to(x.device)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(b, length, dim))


class TextAttentionBlock(nn.Module):
    """feature map [B, C, T, F] + text tokens [B, N, text_dim] -> [B, C, T, F] (see the module docstring)."""

    def __init__(self, channels: int, text_dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(channels)
        self.self_attention = MultiHeadAttention(channels, channels, heads)
        self.norm2 = nn.LayerNorm(channels)
        self.cross_attention = MultiHeadAttention(channels, text_dim, heads)
        self.norm3 = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels))

    def forward(self, x: Tensor, valid_frames: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """x [B, C, T, F]; valid_frames long [B] (time steps of x that hold audio); text [B, N, D], text_mask [B, N]."""
        b, c, t, f = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(b, t * f, c)
        cells = (torch.arange(t, device=x.device)[None] < valid_frames[:, None]).repeat_interleave(f, dim=1)
        h = self.norm1(tokens)
        tokens = tokens + self.self_attention(h, h, cells)
        text_mask = text_mask | ~text_mask.any(dim=1, keepdim=True)  # a row without tokens attends to all
        tokens = tokens + self.cross_attention(self.norm2(tokens), text, text_mask)
        tokens = tokens + self.mlp(self.norm3(tokens))
        return tokens.reshape(b, t, f, c).permute(0, 3, 1, 2)
