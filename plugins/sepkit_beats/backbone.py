"""The BEATs transformer, written anew in plain torch with the official parameter names.

After microsoft/unilm ``beats/BEATs.py`` and ``beats/backbone.py`` (fairseq-style, post-norm with
DeepNorm, gated relative position bias)::

    fbank [B, 1, T, 128] (normalised, T = 16 * steps)
    patch_embedding: Conv2d(1, 512, 16, stride 16, no bias) -> [B, 512, steps, 8]
        -> tokens [B, N, 512], N = steps * 8, token n = t * 8 + f (time-major: the 8 mel
           patches of one 160 ms step are consecutive, low to high mel)
    layer_norm (512) -> post_extract_proj Linear(512, 768)
    encoder:
        x = x + pos_conv(x)       Conv1d(768, 768, 128, groups 16, weight norm over dim 2), drop the
                                  last output (even kernel), GELU
        x = layer_norm(x)         (post-norm layout: layer_norm_first false)
        12 x layer:  x = self_attn_layer_norm(alpha * x + attn(x))
                     x = final_layer_norm(alpha * x + fc2(gelu(fc1(x))))
                     alpha = (2 * layers) ** 0.25 with deep_norm (1 otherwise)
        attn: q, k, v, out projections (768, 12 heads); logits q k^T / sqrt(64) plus a relative
              position bias (320 buckets, max distance 800, one table shared by all layers and
              computed once in layer 0), gated per query and head (gru_rel_pos):
              g_a, g_b = sigmoid(sum of 2 groups of 4 of grep_linear(q_head)); gate = g_a * (g_b * grep_a - 1) + 2
    -> frames [B, N, 768]

Padding: tokens of a padded 160 ms step are zeroed before the positional convolution and are
masked as attention keys (the official ``padding_mask`` path).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The released BEATs_iter3 / iter3+ (AS2M) configuration (``cfg`` of the official checkpoints).
ITER3_CONFIG: dict[str, Any] = {
    "input_patch_size": 16,
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "layer_norm_first": False,
    "deep_norm": True,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "finetuned_model": False,
    "predictor_class": 527,
}
ARCHITECTURE_KEYS = tuple(ITER3_CONFIG)


class WeightNormConv1d(nn.Module):
    """Conv1d with weight = weight_g * weight_v / ||weight_v|| (norm over every axis but the last, the kernel axis),
    stored as the official ``nn.utils.weight_norm(conv, dim=2)`` stores it: ``weight_g`` [1, 1, K], ``weight_v``,
    ``bias``."""

    def __init__(self, channels: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        v = torch.empty(channels, channels // groups, kernel)
        nn.init.normal_(v, 0.0, math.sqrt(4.0 / (kernel * channels)))
        self.weight_v = nn.Parameter(v)
        self.weight_g = nn.Parameter(v.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class SamePad(nn.Module):
    """Drop the last time step after an even-kernel convolution (so the output has the input's length)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.remove = 1 if kernel % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[..., : x.shape[-1] - self.remove] if self.remove else x


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device=None) -> Tensor:
    """long [L, L]: T5-style bidirectional log buckets of (key position - query position)."""
    position = torch.arange(length, device=device)
    relative = position[None, :] - position[:, None]
    half = num_buckets // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    exact = half // 2
    large = (
        exact
        + (torch.log(distance.float().clamp_min(1) / exact) / math.log(max_distance / exact) * (half - exact)).long()
    )
    large = large.clamp_max(half - 1)
    return buckets + torch.where(distance < exact, distance, large)


class SelfAttention(nn.Module):
    """Multi-head self-attention with the optional gated relative position bias; x [B, N, D] -> [B, N, D]."""

    def __init__(self, dim: int, heads: int, relative: bool, num_buckets: int, max_distance: int, gated: bool) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.gated = gated
        if relative:
            self.relative_attention_bias = nn.Embedding(num_buckets, heads)
        if gated:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def position_bias(self, length: int, device) -> Tensor:
        """float [H, L, L] from the bucket table."""
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance, device)
        return self.relative_attention_bias(buckets).permute(2, 0, 1)

    def forward(
        self, x: Tensor, key_padding: Optional[Tensor], bias: Optional[Tensor]
    ) -> tuple[Tensor, Optional[Tensor]]:
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)  # [B, H, N, d_h]
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        if bias is None and hasattr(self, "relative_attention_bias"):
            bias = self.position_bias(n, x.device)
        mask = None
        if bias is not None:
            mask = bias[None].expand(b, -1, -1, -1)
            if self.gated:
                gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1)).chunk(2, -1)
                mask = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * mask
        if key_padding is not None:
            pad = torch.zeros(b, 1, 1, n, dtype=q.dtype, device=x.device).masked_fill(
                key_padding[:, None, None], float("-inf")
            )
            mask = pad if mask is None else mask + pad
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d)), bias


class EncoderLayer(nn.Module):
    """One post-norm (DeepNorm) or pre-norm transformer layer with the official names."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.self_attn = SelfAttention(
            dim,
            cfg["encoder_attention_heads"],
            cfg["relative_position_embedding"],
            cfg["num_buckets"],
            cfg["max_distance"],
            cfg["gru_rel_pos"],
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg["encoder_ffn_embed_dim"])
        self.fc2 = nn.Linear(cfg["encoder_ffn_embed_dim"], dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg["layer_norm_first"]
        self.alpha = (2 * cfg["encoder_layers"]) ** 0.25 if cfg["deep_norm"] else 1.0

    def forward(
        self, x: Tensor, key_padding: Optional[Tensor], bias: Optional[Tensor]
    ) -> tuple[Tensor, Optional[Tensor]]:
        if self.layer_norm_first:
            h, bias = self.self_attn(self.self_attn_layer_norm(x), key_padding, bias)
            x = x + h
            return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x)))), bias
        h, bias = self.self_attn(x, key_padding, bias)
        x = self.self_attn_layer_norm(self.alpha * x + h)
        x = self.final_layer_norm(self.alpha * x + self.fc2(F.gelu(self.fc1(x))))
        return x, bias


class TransformerEncoder(nn.Module):
    """tokens [B, N, 768], key_padding bool [B, N] (True = padding) -> [B, N, 768]."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        dim = cfg["encoder_embed_dim"]
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg["conv_pos"], cfg["conv_pos_groups"]), SamePad(cfg["conv_pos"]), nn.GELU()
        )
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg["encoder_layers"]))
        if cfg["relative_position_embedding"]:  # one table shared by every layer, as in the official model
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = self.layers[0].self_attn.relative_attention_bias
        self.layer_norm = nn.LayerNorm(dim)
        self.layer_norm_first = cfg["layer_norm_first"]

    def forward(self, x: Tensor, key_padding: Optional[Tensor] = None) -> Tensor:
        if key_padding is not None:
            x = x.masked_fill(key_padding[..., None], 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        bias = None
        for layer in self.layers:
            x, bias = layer(x, key_padding, bias)
        return self.layer_norm(x) if self.layer_norm_first else x


class BEATsModel(nn.Module):
    """fbank [B, 1, 16 * steps, 128] and step padding -> tokens [B, steps * 8, 768] (official key names)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.cfg = dict(cfg)
        p, embed, dim = cfg["input_patch_size"], cfg["embed_dim"], cfg["encoder_embed_dim"]
        self.patch_size = p
        self.patch_embedding = nn.Conv2d(1, embed, kernel_size=p, stride=p, bias=cfg["conv_bias"])
        self.layer_norm = nn.LayerNorm(embed)
        self.post_extract_proj = nn.Linear(embed, dim) if embed != dim else None
        self.encoder = TransformerEncoder(cfg)
        if cfg["finetuned_model"]:
            self.predictor = nn.Linear(dim, cfg["predictor_class"])

    def forward(self, fbank: Tensor, step_padding: Optional[Tensor] = None) -> Tensor:
        """fbank [B, 1, T, M]; step_padding bool [B, T // 16] (True = padded step) -> [B, (T//16) * (M//16), D]."""
        x = self.patch_embedding(fbank)  # [B, E, steps, mel patches]
        mel_patches = x.shape[-1]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        padding = None
        if step_padding is not None and bool(step_padding.any()):
            padding = step_padding.repeat_interleave(mel_patches, dim=1)
        return self.encoder(x, padding)


def parameter_count(module: nn.Module) -> int:
    """Trainable values, each shared tensor once (the relative position table is shared by every layer)."""
    return sum(p.numel() for p in module.parameters())
