"""Training-only heads of Q-Audio pretraining: ITM classifier, ITG language-model head, [DEC], temperature.

``LMHead`` predicts the frozen text encoder's vocabulary. BLIP-2 ties its LM decoder to the
Q-Former's own word embeddings; Q-Audio has none (its text side reads a frozen encoder), so the
head is tied to the frozen encoder's input embedding table E [V, text_dim] instead:
logits = transform(x) @ E^T + bias, with transform = BERT's (dense, GELU, LayerNorm) followed by
Linear(hidden, text_dim). That costs hidden * (hidden + text_dim) + V parameters instead of a
hidden x V matrix (24.7 M for FLAN-T5's 32,128 pieces).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .qformer import LAYER_NORM_EPS


class LMHead(nn.Module):
    """x [B, N, hidden], table [V, text_dim] -> logits [B, N, V]."""

    def __init__(self, hidden: int, text_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.to_text = nn.Linear(hidden, text_dim)
        self.bias = nn.Parameter(torch.zeros(vocab_size))
        for layer in (self.dense, self.to_text):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, table: Tensor) -> Tensor:
        x = self.to_text(self.norm(F.gelu(self.dense(x))))
        return x @ table.to(x.dtype).T + self.bias.to(x.dtype)


class TrainingHeads(nn.Module):
    """``itm`` Linear(hidden, 2); ``lm`` (``LMHead``); ``dec_token`` [1, 1, hidden] (ITG's first input,
    BLIP-2's [DEC]); ``temp`` the ITC temperature (init 0.07, clamped to [0.001, 0.5] as BLIP-2)."""

    def __init__(self, hidden: int, text_dim: int, vocab_size: int, temperature: float = 0.07) -> None:
        super().__init__()
        self.itm = nn.Linear(hidden, 2)
        nn.init.normal_(self.itm.weight, std=0.02)
        nn.init.zeros_(self.itm.bias)
        self.lm = LMHead(hidden, text_dim, vocab_size)
        self.dec_token = nn.Parameter(torch.empty(1, 1, hidden).normal_(0.0, 0.02))
        self.temp = nn.Parameter(torch.tensor(float(temperature)))
