"""AET: the audio embedding transformer (Hybrid-Sep stage 1; 32 transformer layers, 8 heads, 512-d).

Maps the CLAP text embedding of the query and the mixture's FE frames to the predicted CLAP audio
embedding of the target::

    tokens = [Linear(query_dim, dim)(text) , output token (learned), FE frames ...]   [B, 2 + N, dim]
    -> 32 pre-norm layers (key padding on padded FE frames) -> output token -> Linear(dim, embed_dim)
    -> L2-normalised (CLAP audio embeddings are unit vectors)                          [B, embed_dim]
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .transformer import TransformerStack


class AudioEmbeddingTransformer(nn.Module):
    def __init__(self, query_dim: int, embed_dim: int, dim: int, layers: int, heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.text = nn.Linear(query_dim, dim)
        self.output_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.normal_(self.output_token, std=0.02)
        self.kind = nn.Parameter(torch.zeros(3, dim))  # segment embeddings: text, output token, FE frames
        nn.init.normal_(self.kind, std=0.02)
        self.transformer = TransformerStack(layers, dim, heads, ffn_dim)
        self.head = nn.Linear(dim, embed_dim)

    def forward(self, text: Tensor, frames: Tensor, padding: Optional[Tensor] = None) -> Tensor:
        """text [B, query_dim], frames [B, N, dim], padding bool [B, N] -> [B, embed_dim] (unit norm)."""
        b = text.shape[0]
        tokens = torch.cat(
            [
                self.text(text)[:, None] + self.kind[0],
                self.output_token.expand(b, -1, -1) + self.kind[1],
                frames + self.kind[2],
            ],
            dim=1,
        )
        if padding is not None:
            padding = F.pad(padding, (2, 0), value=False)
        out = self.transformer(tokens, padding)[:, 1]
        return F.normalize(self.head(out), dim=-1)
