"""SGN's source class tokens and category-aware grouping (Mo & Tian 2024, arXiv 2407.03736).

- ``ClassTokenTransformer``: learnable class tokens ``c_i`` [C, D], one per sound category, are
  prepended to the mixture's patch features ``f_p`` [B, P, D] and refined jointly by transformer
  self-attention layers (padding patches masked out).
- ``CategoryAwareGrouping``: a similarity ``A`` [B, P, C] between the (normalised) patch features and
  class tokens, softmax over the classes (each patch is shared out among the categories), then
  per class the A-weighted mean of the patch features, projected and added to its token:
  ``g_i = c_i + W Σ_p A_pi f_p / Σ_p A_pi`` [B, C, D], the category-wise source representations
  that guide the decoder.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class ClassTokenTransformer(nn.Module):
    """patches [B, P, D], valid bool [B, P] -> (class tokens [B, C, D], patches [B, P, D]) after self-attention."""

    def __init__(self, num_classes: int, dim: int, layers: int, heads: int) -> None:
        """``num_classes`` 0: no learnable tokens; ``forward`` is then given them."""
        super().__init__()
        self.class_tokens = nn.Parameter(torch.randn(num_classes, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, patches: Tensor, valid: Tensor, tokens: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``tokens`` [B, C', D], if given, stand in for the learnable class tokens (SGN's ablation: one token
        made from the text query)."""
        batch = patches.shape[0]
        lead = self.class_tokens.expand(batch, -1, -1) if tokens is None else tokens
        classes = lead.shape[1]
        tokens = torch.cat((lead, patches), dim=1)
        pad = torch.cat((torch.zeros(batch, classes, dtype=torch.bool, device=valid.device), ~valid), dim=1)
        out = self.norm(self.layers(tokens, src_key_padding_mask=pad))
        return out[:, :classes], out[:, classes:]


class CategoryAwareGrouping(nn.Module):
    """class tokens [B, C, D], patches [B, P, D], valid [B, P] -> (g [B, C, D], assignment A [B, P, C])."""

    def __init__(self, dim: int, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, tokens: Tensor, patches: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        similarity = F.normalize(patches, dim=-1) @ F.normalize(tokens, dim=-1).transpose(1, 2)
        assignment = torch.softmax(similarity / self.temperature, dim=-1) * valid[..., None]  # [B, P, C]
        pooled = assignment.transpose(1, 2) @ patches / assignment.sum(1)[..., None].clamp_min(1e-6)
        return tokens + self.project(pooled), assignment
