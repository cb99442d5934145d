"""MAE pretraining of the AudioMAE encoder with a small multi-window (MW-MAE style) decoder.

HSM-TSS (sec. III-B1) pretrains AudioMAE "following MW-MAE" with a 4-layer decoder of width
384 and 8 heads, mask ratio 0.8. The pieces, after facebookresearch/AudioMAE ``models_mae``
(masking, loss, parameter names) and Yadav et al., "Masked autoencoders with multi-window
local-global attention are better audio learners" (MW-MAE; reference code
SarthakYadav/mwmae-jax-official), written anew:

    fbank image [B, 1, T, M] -> patch tokens + pos [B, N, D]         (the encoder, ``AudioMAEViT``)
    random masking: keep int(N * (1 - 0.8)) tokens per row (uniform, per row)
    encoder blocks + ``norm`` on CLS + visible tokens
    decoder_embed Linear(D, 384); mask_token at the masked places; unshuffle; drop CLS
    + decoder_pos_embed (fixed sin-cos, same grid convention as the encoder's)
    decoder_blocks x 4: pre-norm blocks whose attention is ``MultiWindowSelfAttention``
    decoder_norm, decoder_pred Linear(384, p*p)                     -> [B, N, 256] patch predictions
    loss: MSE to the per-patch normalised target patches (mean 0, var 1 per patch, "norm_pix"),
          averaged over masked patches (and, by default, only those holding audio, see below)

Multi-window attention: each decoder head attends within non-overlapping windows of
consecutive tokens of its own size (1-D over the time-major token order), with a learnt
relative-position bias per windowed head; size 0 (or N) is a global head. The default sizes
for N = 512 (64 time x 8 mel patches) and 8 heads are ``(4, 8, 16, 32, 64, 128, 0, 0)``: six
local heads whose windows are half a 160 ms step (4 of its 8 mel patches), one step, 2, 4, 8
and 16 steps (0.16-2.56 s), and two global heads, the same pattern as MW-MAE's
``(2, 5, 10, 25, 50, 125, 0, 0)`` for its 250 patches. Every size must divide N.

Padding: the encoder always sees ``target_frames`` (10.24 s), zero-padded as the official
loader does. ``loss_on_padding=False`` (default) leaves masked patches that lie wholly past a
clip's end out of the loss (the official code, trained on 10 s AudioSet clips, includes them);
on short clips (sepkit-mini's 4 s) they would otherwise be most of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .vit import LAYER_NORM_EPS, AudioMAEViT, TransformerBlock, init_like_mae, sincos_2d_table

DEFAULT_WINDOWS = (4, 8, 16, 32, 64, 128, 0, 0)


class MultiWindowSelfAttention(nn.Module):
    """Self-attention whose head h attends within windows of ``window_sizes[h]`` consecutive tokens.

    x [B, N, D] -> [B, N, D]. A window size of 0 or N is global attention. Windowed heads add a
    learnt relative-position bias (``relative_position_bias.<h>``, 2w - 1 values). N must be a
    multiple of every window size.
    """

    def __init__(self, dim: int, num_heads: int, window_sizes: tuple[int, ...], num_tokens: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder width {dim} is not divisible by {num_heads} heads")
        if len(window_sizes) != num_heads:
            raise ValueError(f"{len(window_sizes)} window sizes given for {num_heads} heads; give one per head")
        bad = [w for w in window_sizes if w < 0 or (w and num_tokens % w)]
        if bad:
            raise ValueError(
                f"window sizes {bad} do not divide the {num_tokens} patch tokens; use divisors of {num_tokens} "
                "(or 0 for a global head)"
            )
        self.num_heads = num_heads
        self.window_sizes = tuple(0 if w in (0, num_tokens) else int(w) for w in window_sizes)
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias = nn.ParameterDict(
            {str(h): nn.Parameter(torch.zeros(2 * w - 1)) for h, w in enumerate(self.window_sizes) if w}
        )
        for table in self.relative_position_bias.values():
            nn.init.trunc_normal_(table, std=0.02)

    def bias(self, head: int, window: int) -> Tensor:
        """[window, window]: the bias of query i for key j is table[j - i + window - 1]."""
        index = torch.arange(window)
        return self.relative_position_bias[str(head)][index[None, :] - index[:, None] + window - 1]

    def forward(self, x: Tensor) -> Tensor:
        batch, tokens, dim = x.shape
        if any(w and tokens % w for w in self.window_sizes):
            raise ValueError(f"{tokens} tokens are not a multiple of the window sizes {self.window_sizes}")
        head_dim = dim // self.num_heads
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, head_dim).permute(2, 3, 0, 1, 4)
        heads = []
        for h, w in enumerate(self.window_sizes):
            if not w:  # global head
                heads.append(F.scaled_dot_product_attention(q[h], k[h], v[h]))
                continue
            shape = (batch, tokens // w, w, head_dim)
            out = F.scaled_dot_product_attention(
                q[h].reshape(shape), k[h].reshape(shape), v[h].reshape(shape), attn_mask=self.bias(h, w).to(x.dtype)
            )
            heads.append(out.reshape(batch, tokens, head_dim))
        return self.proj(torch.stack(heads, dim=2).reshape(batch, tokens, dim))


def patchify(image: Tensor, patch_size: int) -> Tensor:
    """image [B, 1, T, M] -> patches [B, (T/p) * (M/p), p*p], in the encoder's token order (time-major).

    Each patch is flattened time-major too (official ``patchify``: 'nchpwq->nhwpqc').
    """
    batch, _, frames, mels = image.shape
    p = patch_size
    x = image.reshape(batch, frames // p, p, mels // p, p)
    return x.permute(0, 1, 3, 2, 4).reshape(batch, (frames // p) * (mels // p), p * p)


def unpatchify(patches: Tensor, patch_size: int, grid: tuple[int, int]) -> Tensor:
    """The inverse of ``patchify``: [B, N, p*p] -> image [B, 1, T, M] for grid (T/p, M/p)."""
    batch, p = patches.shape[0], patch_size
    x = patches.reshape(batch, grid[0], grid[1], p, p).permute(0, 1, 3, 2, 4)
    return x.reshape(batch, 1, grid[0] * p, grid[1] * p)


def random_masking(batch: int, tokens: int, mask_ratio: float, generator: Optional[torch.Generator], device) -> tuple:
    """Per-row uniform random masking, as the official ``random_masking``.

    Returns (keep [B, n_keep] indices of visible tokens, restore [B, N] the inverse permutation,
    mask float [B, N]: 1 = masked, 0 = visible), n_keep = int(N * (1 - mask_ratio)).
    """
    keep_count = int(tokens * (1 - mask_ratio))
    if generator is None:
        noise = torch.rand(batch, tokens, device=device)
    else:
        noise = torch.rand(batch, tokens, generator=generator, device=generator.device).to(device)
    shuffle = noise.argsort(dim=1)
    restore = shuffle.argsort(dim=1)
    mask = torch.ones(batch, tokens, device=device)
    mask[:, :keep_count] = 0
    return shuffle[:, :keep_count], restore, mask.gather(1, restore)


@dataclass
class MAEOutput:
    """loss: scalar; pred [B, N, p*p] (normalised-patch space if norm_pix_loss); mask [B, N] (1 = masked);
    target [B, N, p*p] the loss target; weight [B, N] the per-patch loss weight (masked and counted)."""

    loss: Tensor
    pred: Tensor
    mask: Tensor
    target: Tensor
    weight: Tensor


class MaskedAutoencoder(nn.Module):
    """An ``AudioMAEViT`` encoder with the MW-MAE decoder and the MAE loss.

    State-dict keys: ``encoder.<official encoder keys>`` and the official decoder names
    ``mask_token``, ``decoder_pos_embed`` [1, 1 + N, d] (row 0, the CLS slot, is unused: the
    decoder drops CLS as AudioMAE's local-attention decoder does), ``decoder_embed``,
    ``decoder_blocks.N.{norm1, attn.qkv, attn.proj, attn.relative_position_bias.<h>, norm2, mlp}``,
    ``decoder_norm``, ``decoder_pred``. ``official_state_dict`` drops the ``encoder.`` prefix,
    giving a ``pretrained.pth``-style dict that ``audiomae`` loads (its decoder keys are dropped).
    """

    def __init__(
        self,
        encoder: AudioMAEViT,
        decoder_dim: int = 384,
        decoder_depth: int = 4,
        decoder_heads: int = 8,
        window_sizes: tuple[int, ...] = DEFAULT_WINDOWS,
        mask_ratio: float = 0.8,
        norm_pix_loss: bool = True,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if encoder.final_norm != "norm":
            raise ValueError("MAE pretraining needs an encoder with the per-token final norm (final_norm: norm)")
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        patches = encoder.num_patches
        self.decoder_embed = nn.Linear(encoder.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        table = sincos_2d_table(decoder_dim, (encoder.grid[1], encoder.grid[0]))
        self.decoder_pos_embed = nn.Parameter(table, requires_grad=False)
        self.decoder_blocks = nn.ModuleList(
            TransformerBlock(
                decoder_dim,
                decoder_heads,
                mlp_ratio,
                attn=MultiWindowSelfAttention(decoder_dim, decoder_heads, tuple(window_sizes), patches),
            )
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=LAYER_NORM_EPS)
        self.decoder_pred = nn.Linear(decoder_dim, encoder.patch_size**2)
        nn.init.normal_(self.mask_token, std=0.02)
        for name, module in self.named_modules():
            if name.startswith("decoder_"):
                init_like_mae(module)

    def decode(self, latent: Tensor, restore: Tensor) -> Tensor:
        """latent [B, 1 + n_keep, D] (CLS + visible, encoder-normed) -> patch predictions [B, N, p*p]."""
        x = self.decoder_embed(latent)[:, 1:]  # drop CLS
        batch, tokens = restore.shape
        fill = self.mask_token.expand(batch, tokens - x.shape[1], -1)
        x = torch.cat([x, fill], dim=1).gather(1, restore[..., None].expand(-1, -1, x.shape[2]))
        x = x + self.decoder_pos_embed[:, 1:]
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def target(self, image: Tensor) -> Tensor:
        """The loss target [B, N, p*p]: image patches, normalised per patch if ``norm_pix_loss``."""
        patches = patchify(image, self.encoder.patch_size)
        if self.norm_pix_loss:
            mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
            patches = (patches - mean) / (var + 1e-6).sqrt()
        return patches

    def forward(
        self,
        image: Tensor,
        valid_patches: Optional[Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> MAEOutput:
        """image [B, 1, T, M] (the normalised fbank); valid_patches bool [B, N] (patches that count in the loss,
        None = all); generator: the masking's random source (None = torch's global one)."""
        tokens = self.encoder.embed(image)
        batch, count, dim = tokens.shape
        keep, restore, mask = random_masking(batch, count, self.mask_ratio, generator, image.device)
        visible = tokens.gather(1, keep[..., None].expand(-1, -1, dim))
        latent = self.encoder.norm(self.encoder.run_blocks(visible))
        pred = self.decode(latent, restore)
        target = self.target(image)
        weight = mask if valid_patches is None else mask * valid_patches.to(mask.dtype)
        per_patch = (pred - target).pow(2).mean(dim=-1)
        loss = (per_patch * weight).sum() / weight.sum().clamp_min(1)
        return MAEOutput(loss=loss, pred=pred, mask=mask, target=target, weight=weight)

    def official_state_dict(self) -> dict[str, Tensor]:
        """The weights in the official ``pretrained.pth`` naming (``model`` dict): encoder keys unprefixed."""
        return {key.removeprefix("encoder."): value for key, value in self.state_dict().items()}

    def load_official_state_dict(self, state: dict[str, Tensor], where: str) -> None:
        """Load a dict in the ``official_state_dict`` naming, strictly (key problems are listed)."""
        from sepkit.checkpoint import load_state_dict_checked

        own = set(self.state_dict())
        renamed = {key if key in own else f"encoder.{key}": value for key, value in state.items()}
        load_state_dict_checked(self, renamed, where)


__all__ = ["DEFAULT_WINDOWS", "MAEOutput", "MaskedAutoencoder", "MultiWindowSelfAttention", "patchify", "unpatchify"]
