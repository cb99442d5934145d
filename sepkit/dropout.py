"""Dropout whose random mask is cheap on CPU, and attention with dropout on its weights.

``torch.nn.functional.dropout`` draws its CPU mask with ``bernoulli_``, one generator call per
element; in the mini HSM-TSS local stage that was a fifth of a training step
(``benchmarks/train_throughput/profiles``). ``dropout`` here draws 64-bit words from the same
generator and cuts each into four 16-bit lanes, each compared with ``p`` (resolution 2^-16), so
a mask costs a quarter of the generator calls: about 1.8x faster forward and backward on a
bf16 activation. Off the CPU it is ``F.dropout`` (GPUs have fused kernels).

The result is distributed as ``F.dropout``'s: every element is kept with probability
``1 - round(p * 65536) / 65536`` and scaled by ``1 / (1 - p)`` in the input's dtype (as
``F.dropout`` does on CPU), so the expectation is the input's. Draws come from torch's default
generator (or the one given), so ``torch.manual_seed`` and the training engine's RNG state make
runs repeatable and resumable.

    keep_mask(shape, p)          -> bool tensor, True with probability 1 - p
    dropout(x, p, training)      -> x with elements zeroed (like F.dropout)
    Dropout(p)                   -> the module (like nn.Dropout)
    attention_with_dropout(q, k, v, attend, p)
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LANES = 4  # 16-bit lanes per 64-bit random word
_LANE_STATES = 1 << 16


def keep_mask(shape: tuple[int, ...], p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """bool tensor of ``shape`` on the CPU, each element True with probability 1 - p (p to 2^-16)."""
    count = math.prod(shape)
    words = torch.empty((count + _LANES - 1) // _LANES, dtype=torch.int64)
    words.random_(-(1 << 63), None, generator=generator)  # all 64 bits uniform
    lanes = words.view(torch.int16)[:count].view(shape)  # uniform over [-32768, 32767]
    return lanes >= round(p * _LANE_STATES) - _LANE_STATES // 2


def check_probability(p: float) -> float:
    """``p`` if it is a dropout probability (0 <= p <= 1), else ValueError (as torch's dropout says)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, got {p}")
    return p


def dropout(x: Tensor, p: float, training: bool = True, generator: Optional[torch.Generator] = None) -> Tensor:
    """``F.dropout(x, p, training)`` with a cheaper mask on CPU: x [...] -> [...], same dtype."""
    check_probability(p)
    if not training or p == 0.0:
        return x
    if p == 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    scale = keep_mask(tuple(x.shape), p, generator).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * scale


class Dropout(nn.Module):
    """``nn.Dropout(p)`` drawing its mask with ``dropout`` (cheaper on CPU); state-dict free like it."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_probability(p)

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def attention_with_dropout(q: Tensor, k: Tensor, v: Tensor, attend: Optional[Tensor], p: float) -> Tensor:
    """softmax(q k^T / sqrt(d), over the keys ``attend`` allows), dropout ``p`` on the weights, times v.

    q [B, H, Lq, d], k and v [B, H, Lk, d]; attend: bool broadcastable to [B, H, Lq, Lk]
    (True = may attend) or None -> [B, H, Lq, d]. The computation of
    ``F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=p)``, written out
    because on CPU that call takes a slow path when ``dropout_p > 0``. Every query needs at
    least one key it may attend to. Use ``F.scaled_dot_product_attention`` when ``p`` is 0.
    """
    scores = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5
    if attend is not None:
        scores = scores.masked_fill(~attend, float("-inf"))
    return dropout(scores.softmax(-1), p, training=True) @ v
