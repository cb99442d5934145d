"""Gaussian noise on a frozen text encoder's embeddings while training (``train.system.text_noise``).

A separator conditioned on a frozen text encoder sees, for each sound class, only the embeddings of the
wordings its corpus has; asked in other words, it gets an embedding off that cloud. Perturbing the
conditioning during training widens what the separator treats as "this class" around every training
wording. ``NoisyTextEmbeddings`` wraps an ``encode_text`` callable: while ``active``, each description's
embedding (tokens and pooled vector alike) gets ``e + s * rms(e) * n``, n ~ N(0, I), with one scale
s ~ U(0, ``scale``) per description, so a share of every batch stays nearly clean; rms(e) is the
description's own root-mean-square over its (valid) features, so the noise is relative to the
embedding's size whatever the encoder. At inference (``active`` False) embeddings pass unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sepkit.interfaces import TextEmbedding


class NoisyTextEmbeddings:
    """``encode_text`` (texts -> ``TextEmbedding``) with relative Gaussian noise while ``active``.

    ``scale``: the largest noise-to-embedding RMS ratio drawn (0 disables it). Draws use torch's global
    RNG, which the trainer seeds and checkpoints (a resumed run draws the same noise).
    """

    def __init__(self, encode_text: Callable[[list[str]], TextEmbedding], scale: float) -> None:
        if scale < 0:
            raise ValueError(f"text_noise must be >= 0, got {scale}")
        self.encode_text = encode_text
        self.scale = float(scale)
        self.active = False

    def __call__(self, texts: list[str]) -> TextEmbedding:
        e = self.encode_text(texts)
        if not self.active or self.scale == 0:
            return e
        return add_relative_noise(e, self.scale)


def add_relative_noise(e: TextEmbedding, scale: float) -> TextEmbedding:
    """``e`` with noise ``s * rms * N(0, I)``, s ~ U(0, scale) per row; tokens: [B, L, C] masked by
    ``mask`` [B, L] (padding stays zero), pooled: [B, C]."""
    pooled = e.pooled.float()
    batch = pooled.shape[0]
    s = torch.rand(batch, device=pooled.device) * scale
    pooled_rms = pooled.pow(2).mean(-1, keepdim=True).sqrt()
    noisy_pooled = pooled + s[:, None] * pooled_rms * torch.randn_like(pooled)
    tokens = e.tokens.float()
    valid = e.mask[..., None].to(tokens.dtype)
    count = (valid.sum((1, 2)) * tokens.shape[-1]).clamp_min(1)
    token_rms = ((tokens.pow(2) * valid).sum((1, 2)) / count).sqrt()
    noisy_tokens = tokens + (s * token_rms)[:, None, None] * torch.randn_like(tokens) * valid
    return TextEmbedding(
        tokens=noisy_tokens.to(e.tokens.dtype), mask=e.mask, pooled=noisy_pooled.to(e.pooled.dtype)
    )
