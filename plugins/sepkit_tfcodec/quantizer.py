"""Group vector quantisation with frame combining, as TF-Codec's bottleneck is laid out.

The encoder gives ``latent_dim`` channels every STFT hop (5 ms). ``combine`` consecutive hops
(4: 20 ms) are stacked, and the channels are cut into ``groups`` equal slices; each group's
vector (``combine * latent_dim / groups`` values: 4 * 480 / 16 = 120 at full size) is replaced
by its nearest entry of that group's own codebook of ``codebook_size`` codes. So one code frame
carries ``groups`` indices every ``combine`` hops.

Training: straight-through estimator with the VQ-VAE codebook and commitment losses
(van den Oord et al. 2017; ``losses``), where TF-Codec uses Gumbel-softmax over distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Quantized:
    """quantized float [B, latent_dim, N] (straight-through), codes long [B, G, N / combine],
    embeddings float [B, N / combine, G * code_dim] (the chosen code vectors),
    codebook_loss / commitment_loss: scalar tensors."""

    quantized: Tensor
    codes: Tensor
    embeddings: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor


class GroupVectorQuantizer(nn.Module):
    """latents float [B, latent_dim, N] (N a multiple of ``combine``) <-> codes long [B, groups, N / combine]."""

    def __init__(self, latent_dim: int, groups: int, codebook_size: int, combine: int) -> None:
        super().__init__()
        if latent_dim % groups:
            raise ValueError(f"latent_dim {latent_dim} is not divisible by groups {groups}")
        self.latent_dim, self.groups, self.codebook_size, self.combine = latent_dim, groups, codebook_size, combine
        self.code_dim = combine * latent_dim // groups
        self.codebooks = nn.Parameter(torch.empty(groups, codebook_size, self.code_dim).uniform_(-1.0, 1.0))

    def _group(self, latents: Tensor) -> Tensor:
        """[B, D, N] -> [B, N / combine, G, code_dim]."""
        b, d, n = latents.shape
        x = latents.transpose(1, 2).reshape(b, n // self.combine, self.combine, self.groups, d // self.groups)
        return x.permute(0, 1, 3, 2, 4).reshape(b, n // self.combine, self.groups, self.code_dim)

    def _ungroup(self, grouped: Tensor) -> Tensor:
        """[B, F, G, code_dim] -> [B, D, F * combine]."""
        b, f = grouped.shape[:2]
        x = grouped.reshape(b, f, self.groups, self.combine, -1).permute(0, 1, 3, 2, 4)
        return x.reshape(b, f * self.combine, self.latent_dim).transpose(1, 2)

    def embed(self, codes: Tensor) -> Tensor:
        """codes long [B, G, F] -> code vectors float [B, F, G, code_dim]."""
        index = torch.arange(self.groups, device=codes.device)[None, :, None]
        return self.codebooks[index, codes].permute(0, 2, 1, 3)

    def forward(self, latents: Tensor) -> Quantized:
        x = self._group(latents)  # [B, F, G, c]
        distances = (
            x.pow(2).sum(-1, keepdim=True)
            - 2 * torch.einsum("bfgc,gkc->bfgk", x, self.codebooks)
            + self.codebooks.pow(2).sum(-1)[None, None]
        )
        codes = distances.argmin(-1).permute(0, 2, 1)  # [B, G, F]
        chosen = self.embed(codes)
        codebook_loss = F.mse_loss(chosen, x.detach())
        commitment_loss = F.mse_loss(x, chosen.detach())
        straight = x + (chosen - x).detach()
        return Quantized(
            quantized=self._ungroup(straight),
            codes=codes,
            embeddings=chosen.flatten(2),
            codebook_loss=codebook_loss,
            commitment_loss=commitment_loss,
        )

    def decode(self, codes: Tensor) -> Tensor:
        """codes long [B, G, F] -> quantised latents float [B, latent_dim, F * combine]."""
        return self._ungroup(self.embed(codes))
