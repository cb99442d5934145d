"""The AudioMAE encoder: a ViT over spectrogram patches, in plain torch with timm's parameter names.

Written anew after ``models_mae.MaskedAutoencoderViT`` (encoder part) and ``models_vit`` of
facebookresearch/AudioMAE, which build on timm's ``VisionTransformer`` / ``Block``:

    image [B, 1, T, M] (time frames x mel bins; 1024 x 128)
    patch_embed.proj: Conv2d(1, D, 16, stride 16) -> [B, D, T/16, M/16] -> tokens [B, N, D]
        N = (T/16) * (M/16) = 64 * 8 = 512, token n = t * (M/16) + f: time-major, the 8 mel
        patches of one 160 ms step are consecutive
    + pos_embed[:, 1:]; prepend cls_token + pos_embed[:, :1]       -> [B, 1 + N, D]
    blocks.0..depth-1: x + attn(norm1(x)); x + mlp(norm2(x))      (pre-norm, LayerNorm eps 1e-6)
        attn: qkv Linear(D, 3D) -> heads -> softmax(q k^T / sqrt(d_head)) v -> proj Linear(D, D)
        mlp:  fc1 Linear(D, 4D) -> GELU (erf) -> fc2 Linear(4D, D)
    final norm: ``norm`` on every token (the MAE pretraining model, pretrained.pth), or
        ``fc_norm`` on the mean of the patch tokens (the fine-tuned classifier, models_vit with
        global_pool; it has no per-token norm)

``pos_embed`` is a fixed (not trained) 2-D sin-cos table built, as the official code does, on
the grid ``patch_hw = (M/16, T/16) = (8, 64)``, which is the transpose of the token layout
(64 x 8): the official checkpoints carry this table and it is loaded from them as is.
ViT-B/16 (D 768, 12 layers, 12 heads, one input channel, 512 patches) has 85,254,144 trainable
parameters here, plus the fixed 513 x 768 = 393,984-value ``pos_embed``: 85,648,128 values in all
(``vit_b16_parameter_count`` derives the first number from the layer shapes). timm's 3-channel
ViT-B/16 at 224 x 224 has 85,798,656 without its head; the difference is the patch projection
(1 vs 3 input channels: 2 * 256 * 768 = 393,216) and the 197- vs 513-row position table.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LAYER_NORM_EPS = 1e-6


def sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """positions float64 [M] -> [M, dim]: sin of positions * 10000^(-k / (dim/2)) for k < dim/2, then cos."""
    if dim % 2:
        raise ValueError(f"sin-cos embedding needs an even width, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.to(torch.float64)[:, None] * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d_table(dim: int, grid: tuple[int, int], cls_token: bool = True) -> Tensor:
    """The official ``get_2d_sincos_pos_embed_flexible(dim, grid, cls_token)`` as float32 [1, (1 +) H*W, dim].

    For grid (H, W) the rows are the H*W cells in row-major order; cell k encodes its column
    k % W in the first half of the channels and its row k // W in the second half; a cls row of
    zeros comes first. AudioMAE passes grid = (mel patches, time patches) = (8, 64).
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    rows, cols = grid
    cell = torch.arange(rows * cols)
    table = torch.cat([sincos_1d(dim // 2, cell % cols), sincos_1d(dim // 2, cell // cols)], dim=1)
    if cls_token:
        table = torch.cat([torch.zeros(1, dim, dtype=table.dtype), table])
    return table.float()[None]


class PatchEmbed(nn.Module):
    """image [B, C, T, M] -> tokens [B, (T/p) * (M/p), D], time-major (timm/AudioMAE ``PatchEmbed_org``)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, image: Tensor) -> Tensor:
        return self.proj(image).flatten(2).transpose(1, 2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (timm ``Attention``): [B, N, D] -> [B, N, D]."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # [B, H, N, d_head]
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 (timm ``Mlp``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block (timm ``Block``): x + attn(norm1(x)), then x + mlp(norm2(x)).

    ``attn`` may be any module mapping [B, N, D] -> [B, N, D] (the MAE decoder passes a multi-window one).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, attn: nn.Module | None = None) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = attn if attn is not None else SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def init_like_mae(module: nn.Module) -> None:
    """The official MAE initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


FINAL_NORMS = ("norm", "fc_norm")


class AudioMAEViT(nn.Module):
    """The AudioMAE encoder; state-dict keys are the official ones (``patch_embed.proj``, ``blocks.N...``).

    image [B, 1, T, M] -> ``forward`` returns (tokens [B, N, D], pooled [B, D]):
    - final_norm "norm":    tokens = norm(x)[:, 1:], pooled = norm(x)[:, 0] (the CLS token)
    - final_norm "fc_norm": tokens = x[:, 1:] (no per-token norm), pooled = fc_norm(mean of x[:, 1:])
    """

    def __init__(
        self,
        image_size: tuple[int, int] = (1024, 128),
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        final_norm: str = "norm",
    ) -> None:
        super().__init__()
        frames, mels = image_size
        if frames % patch_size or mels % patch_size:
            raise ValueError(f"input {frames} x {mels} is not a whole number of {patch_size} x {patch_size} patches")
        if final_norm not in FINAL_NORMS:
            raise ValueError(f"final_norm must be one of {FINAL_NORMS}, got {final_norm!r}")
        self.patch_size = patch_size
        self.grid = (frames // patch_size, mels // patch_size)  # (time patches, mel patches) of the token layout
        self.num_patches = self.grid[0] * self.grid[1]
        self.embed_dim = embed_dim
        self.final_norm = final_norm
        self.patch_embed = PatchEmbed(patch_size, 1, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        table = sincos_2d_table(embed_dim, (self.grid[1], self.grid[0]))  # official grid: (mel, time)
        self.pos_embed = nn.Parameter(table, requires_grad=False)  # fixed, as in the official model
        self.blocks = nn.ModuleList(TransformerBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        setattr(self, final_norm, nn.LayerNorm(embed_dim, eps=LAYER_NORM_EPS))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        weight = self.patch_embed.proj.weight.data
        nn.init.xavier_uniform_(weight.view(weight.shape[0], -1))  # like nn.Linear, as the official code
        nn.init.normal_(self.cls_token, std=0.02)
        self.apply(init_like_mae)

    def embed(self, image: Tensor) -> Tensor:
        """image [B, 1, T, M] -> patch tokens with position [B, N, D] (no CLS yet)."""
        tokens = self.patch_embed(image)
        if tokens.shape[1] != self.num_patches:
            raise ValueError(f"got {tokens.shape[1]} patches, the model has position embeddings for {self.num_patches}")
        return tokens + self.pos_embed[:, 1:]

    def run_blocks(self, tokens: Tensor) -> Tensor:
        """[B, n, D] patch tokens (all or the visible subset) -> [B, 1 + n, D] after CLS and the blocks."""
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        x = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        x = self.run_blocks(self.embed(image))
        if self.final_norm == "norm":
            x = self.norm(x)
            return x[:, 1:], x[:, 0]
        return x[:, 1:], self.fc_norm(x[:, 1:].mean(dim=1))


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Parameters of ``module`` (by default those with requires_grad, i.e. without the fixed pos_embed)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def vit_b16_parameter_count(patches: int = 512, dim: int = 768, depth: int = 12, patch: int = 16) -> int:
    """Trainable parameters of ViT-B/16 with one input channel, from its layer shapes (no pos_embed, no head)."""
    block = (
        2 * 2 * dim + (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (4 * dim * dim + 4 * dim) + (4 * dim * dim + dim)
    )
    return patch * patch * dim + dim + dim + depth * block + 2 * dim  # patch proj, cls, blocks, final norm


__all__ = [
    "AudioMAEViT",
    "PatchEmbed",
    "SelfAttention",
    "TransformerBlock",
    "count_parameters",
    "init_like_mae",
    "sincos_2d_table",
    "vit_b16_parameter_count",
]
