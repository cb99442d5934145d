"""``CodecLM``: the autoregressive acoustic-token transformer of HSM-TSS (H3, paper sec. III-E, IV-C).

The sequence of one row is ``[prefix | BOS | a_0 ... a_{T-2}]``; the outputs at the T acoustic
positions are the logits of ``a_0 ... a_{T-1}`` (teacher forcing; at inference ``a_{t-1}`` is the
code just generated). Embeddings:

- prefix: the local semantic features as conditioning tokens, ``prefix_in``-wide
  (8 x 768 = 6144 per AudioMAE time step, or 768 per patch), projected to ``dim`` by one Linear,
  plus a learned position embedding ``prefix_pos`` [max_prefix, dim].
- acoustic step t: the sum over the G groups of the group's code embedding
  (``code_embedding``, one table of K rows per group, stored as [G * K, dim]); step 0 is the learned
  ``bos`` vector instead. Plus a learned position embedding ``step_pos`` [max_steps, dim]
  (its own table: acoustic position t is t in every row, whatever the row's prefix length).
- ``aligned`` (*ours*, off by default: the paper conditions through the prefix alone): acoustic step t also
  gets ``aligned_proj`` of the prefix token covering its time, index floor(t * prefix_per_step) (clamped to the
  prefix), added to its input, so the frame being predicted sees its own features without first learning
  where they are in the prefix. ``prefix_per_step``: prefix tokens per acoustic step (their rates' ratio).
- output: G heads, each logits over the K codes of its group (``head_weight`` [G, K, dim],
  ``head_bias`` [G, K]); all G groups of a step are predicted at once, as in UniCodec.
  ``tie_heads`` uses the code embedding tables as head weights (only the biases stay), saving
  G * K * dim parameters (16.8 M at 16 x 1024 codes and dim 1024).

Attention (prefix-LM): prefix tokens attend to each other in both directions (the conditioning
is known in full before generation), acoustic positions attend to every prefix token and causally
to the acoustic positions up to themselves; no position attends to a prefix token past its row's
valid length (``prefix_valid``). So the prefix is encoded once (``prefill``) and each generated
step costs one query over the cache (``step``).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.errors import SepkitError

from .kv_cache import KVCache
from .transformer import CausalTransformer


class CodecLM(nn.Module):
    """prefix [B, P, prefix_in] + codes long [B, G, T] -> logits [B, G, T, K] (see module docstring)."""

    def __init__(
        self,
        prefix_in: int,
        num_groups: int,
        codebook_size: int,
        dim: int = 1024,
        depth: int = 12,
        heads: int = 8,
        ffn_mult: int = 4,
        dropout: float = 0.1,
        max_prefix: int = 64,
        max_steps: int = 512,
        tie_heads: bool = False,
        aligned: bool = False,
        prefix_per_step: float = 1.0,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise SepkitError(f"codec-ar: dim {dim} must be divisible by heads {heads}")
        self.num_groups, self.codebook_size, self.dim = num_groups, codebook_size, dim
        self.max_prefix, self.max_steps, self.tie_heads = max_prefix, max_steps, tie_heads
        self.prefix_proj = nn.Linear(prefix_in, dim)
        self.aligned_proj = nn.Linear(prefix_in, dim) if aligned else None
        self.prefix_per_step = float(prefix_per_step)
        self.prefix_pos = nn.Parameter(torch.zeros(max_prefix, dim))
        self.step_pos = nn.Parameter(torch.zeros(max_steps, dim))
        self.bos = nn.Parameter(torch.zeros(dim))
        self.code_embedding = nn.Embedding(num_groups * codebook_size, dim)
        self.transformer = CausalTransformer(dim, depth, heads, ffn_mult, dropout)
        self.head_weight = None if tie_heads else nn.Parameter(torch.zeros(num_groups, codebook_size, dim))
        self.head_bias = nn.Parameter(torch.zeros(num_groups, codebook_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """GPT-2 style: normal(0, 0.02) weights and embeddings, zero biases, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        for param in (self.prefix_pos, self.step_pos, self.bos, self.code_embedding.weight):
            nn.init.normal_(param, std=0.02)
        if self.head_weight is not None:
            nn.init.normal_(self.head_weight, std=0.02)
        nn.init.zeros_(self.head_bias)

    # --- embeddings and heads -------------------------------------------------------------
    def embed_prefix(self, prefix: Tensor) -> Tensor:
        """prefix [B, P, prefix_in] -> [B, P, dim] (projection + position)."""
        p = prefix.shape[1]
        if p > self.max_prefix:
            raise SepkitError(
                f"codec-ar: {p} prefix tokens but the model has positions for {self.max_prefix}; "
                "feed at most max_seconds of features (set inference.chunk_seconds) or raise max_seconds"
            )
        return self.prefix_proj(prefix) + self.prefix_pos[:p]

    def embed_steps(self, codes: Tensor, start: int, with_bos: bool) -> Tensor:
        """Inputs of acoustic positions ``start ...``: [BOS,] sum_g E_g[codes[:, g, t]] + step_pos -> [B, n, dim].

        codes: long [B, G, n'] (n' may be 0); with ``with_bos`` the BOS vector comes first (n = n' + 1).
        """
        b, g, n = codes.shape
        parts = [self.bos.expand(b, 1, self.dim)] if with_bos else []
        if n > 0:
            offsets = torch.arange(g, device=codes.device)[None, :, None] * self.codebook_size
            flat = (codes + offsets).permute(0, 2, 1).reshape(b * n, g)
            parts.append(F.embedding_bag(flat, self.code_embedding.weight, mode="sum").view(b, n, self.dim))
        x = torch.cat(parts, dim=1)
        end = start + x.shape[1]
        if end > self.max_steps:
            raise SepkitError(
                f"codec-ar: {end} acoustic steps but the model has positions for {self.max_steps}; "
                "decode at most max_seconds (set inference.chunk_seconds) or raise max_seconds"
            )
        return x + self.step_pos[start:end]

    def aligned_inputs(self, prefix: Tensor, start: int, n: int) -> Tensor:
        """[B, n, dim]: ``aligned_proj`` of the prefix token covering each acoustic step ``start ... start + n - 1``."""
        steps = torch.arange(start, start + n, device=prefix.device, dtype=torch.float64)
        index = torch.floor(steps * self.prefix_per_step + 1e-9).long().clamp(0, prefix.shape[1] - 1)
        return self.aligned_proj(prefix[:, index])

    def logits(self, hidden: Tensor) -> Tensor:
        """hidden [B, n, dim] -> logits [B, G, n, K]."""
        weight = self.head_weight
        if weight is None:
            weight = self.code_embedding.weight.view(self.num_groups, self.codebook_size, self.dim)
        return torch.einsum("bnd,gkd->bgnk", hidden, weight) + self.head_bias[None, :, None, :]

    # --- teacher-forced forward --------------------------------------------------------------
    def forward(self, prefix: Tensor, prefix_valid: Tensor, codes: Tensor) -> Tensor:
        """prefix [B, P, prefix_in], prefix_valid bool [B, P], codes long [B, G, T] -> logits [B, G, T, K].

        Logits at t predict ``codes[:, :, t]`` from the prefix and ``codes[:, :, :t]``.
        """
        p, t = prefix.shape[1], codes.shape[-1]
        steps = self.embed_steps(codes[..., : t - 1], 0, with_bos=True)
        if self.aligned_proj is not None:
            steps = steps + self.aligned_inputs(prefix, 0, t)
        x = torch.cat([self.embed_prefix(prefix), steps], dim=1)
        hidden = self.transformer(x, prefix_lm_mask(prefix_valid, t))
        return self.logits(hidden[:, p:])

    # --- generation with a KV cache ----------------------------------------------------------
    def new_cache(self, batch: int, prefix_len: int, steps: int, device) -> KVCache:
        return KVCache(len(self.transformer.blocks), batch, prefix_len + steps, device)

    def prefill(self, prefix: Tensor, prefix_valid: Tensor, cache: KVCache) -> None:
        """Encode the prefix into an empty ``cache`` (bidirectional among prefix tokens); with ``aligned`` the
        cache also keeps the prefix for the steps' aligned inputs."""
        p = prefix.shape[1]
        cache.prefix = prefix if self.aligned_proj is not None else None
        cache.set_key_valid(prefix_valid)
        mask = prefix_lm_mask(prefix_valid, 0)
        self.transformer(self.embed_prefix(prefix), mask, cache)
        cache.advance(p)

    def step(self, codes: Optional[Tensor], position: int, cache: KVCache) -> Tensor:
        """Logits [B, G, K] of acoustic step ``position`` given the previous step's codes long [B, G].

        ``codes`` None (position 0): the input is BOS.
        """
        if codes is None:
            empty = torch.zeros(cache.batch, self.num_groups, 0, dtype=torch.long, device=self.bos.device)
            x = self.embed_steps(empty, position, with_bos=True)
        else:
            x = self.embed_steps(codes[..., None], position, with_bos=False)
        if self.aligned_proj is not None:
            x = x + self.aligned_inputs(cache.prefix, position, 1)
        mask = cache.visible(1)[:, None, None, :]
        hidden = self.transformer(x, mask, cache)
        cache.advance(1)
        return self.logits(hidden)[:, :, 0]


def prefix_lm_mask(prefix_valid: Tensor, steps: int) -> Tensor:
    """bool [B, 1, P + steps, P + steps]: prefix keys visible to all if valid, acoustic keys causally."""
    b, p = prefix_valid.shape
    n = p + steps
    device = prefix_valid.device
    to_prefix = prefix_valid[:, None, :].expand(b, n, p)
    causal = torch.ones(steps, steps, dtype=torch.bool, device=device).tril()
    to_steps = torch.cat([torch.zeros(p, steps, dtype=torch.bool, device=device), causal], dim=0)
    return torch.cat([to_prefix, to_steps[None].expand(b, n, steps)], dim=2)[:, None]
