"""Group vector quantisation with frame combining, as TF-Codec's bottleneck is laid out.

The encoder gives ``latent_dim`` channels every STFT hop (5 ms). ``combine`` consecutive hops
(4: 20 ms) are stacked, and the channels are cut into ``groups`` equal slices; each group's
vector (``combine * latent_dim / groups`` values: 4 * 480 / 16 = 120 at full size) is replaced
by its nearest entry of that group's own codebook of ``codebook_size`` codes. So one code frame
carries ``groups`` indices every ``combine`` hops.

Training keeps the codebooks alive the way EnCodec's quantiser does (Defossez et al. 2022;
van den Oord et al. 2017 for the EMA form), where TF-Codec uses Gumbel-softmax over distances:

- the codebooks are buffers updated as exponential moving averages (``decay``) of the encoder
  vectors assigned to each code, not by gradients (so there is no codebook loss);
- on the first training batch every codebook is set to randomly drawn encoder vectors of that
  batch (data initialisation);
- a code whose moving-average use falls below ``dead_code_threshold`` (assignments per step) is
  replaced by a random encoder vector of the current batch.
The encoder gets the straight-through gradient and the commitment loss. With gradient-trained
codebooks initialised uniformly in [-1, 1], our 600-step mini run used 1 to 3 of 256 codes per
group (measured on sepkit-mini validation clips), which is why this form is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class Quantized:
    """quantized float [B, latent_dim, N] (straight-through), codes long [B, G, N / combine],
    embeddings float [B, N / combine, G * code_dim] (the chosen code vectors),
    commitment_loss: scalar tensor (no codebook loss: the codebooks are moving averages),
    distances: float32 [B, N / combine, G, codebook_size] squared Euclidean distances of each group's vector to
    its codebook (differentiable in the latents; the rate estimate of ``entropy`` reads them), or None unless
    asked for (``with_distances=True``)."""

    quantized: Tensor
    codes: Tensor
    embeddings: Tensor
    commitment_loss: Tensor
    distances: Optional[Tensor] = None


TRAINING_STATISTICS = ("cluster_size", "embed_sum", "initialized")


def add_training_statistics(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """Fill the moving-average statistics of a quantiser at ``prefix`` (e.g. ``net.quantizer.``) into
    ``state`` when it has the codebooks but not them (a checkpoint shipped for inference only, or
    one written before the codebooks were moving averages): ``embed_sum`` = the codebooks,
    ``cluster_size`` = 1, ``initialized`` = True, so training further restarts the averages there."""
    books = state.get(prefix + "codebooks")
    if books is None or all(prefix + k in state for k in TRAINING_STATISTICS):
        return state
    state = dict(state)
    state.setdefault(prefix + "embed_sum", books.clone())
    state.setdefault(prefix + "cluster_size", torch.ones(books.shape[:2], dtype=books.dtype))
    state.setdefault(prefix + "initialized", torch.tensor(True))
    return state


class GroupVectorQuantizer(nn.Module):
    """latents float [B, latent_dim, N] (N a multiple of ``combine``) <-> codes long [B, groups, N / combine].

    ``codebooks`` [G, K, code_dim] (a parameter with ``requires_grad=False``). Buffers: ``cluster_size``
    [G, K] and ``embed_sum`` [G, K, code_dim]
    (the moving averages), ``initialized`` (bool, set after the data initialisation).
    """

    def __init__(
        self,
        latent_dim: int,
        groups: int,
        codebook_size: int,
        combine: int,
        decay: float = 0.99,
        dead_code_threshold: float = 0.05,
        epsilon: float = 1e-5,
    ) -> None:
        super().__init__()
        if latent_dim % groups:
            raise ValueError(f"latent_dim {latent_dim} is not divisible by groups {groups}")
        self.latent_dim, self.groups, self.codebook_size, self.combine = latent_dim, groups, codebook_size, combine
        self.code_dim = combine * latent_dim // groups
        self.decay, self.dead_code_threshold, self.epsilon = decay, dead_code_threshold, epsilon
        codebooks = torch.empty(groups, codebook_size, self.code_dim).uniform_(-1.0, 1.0)
        # a Parameter without gradient, so parameter counts include the codebooks as Table IX does
        self.codebooks = nn.Parameter(codebooks, requires_grad=False)
        self.register_buffer("cluster_size", torch.ones(groups, codebook_size))
        self.register_buffer("embed_sum", codebooks.clone())
        self.register_buffer("initialized", torch.tensor(False))

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

    def distances(self, x: Tensor) -> Tensor:
        """x float [B, F, G, code_dim] -> float32 [B, F, G, K]: squared Euclidean distance to each code of the group."""
        x = x.float()
        books = self.codebooks.float().clone()  # a copy: the moving-average update rewrites the codebooks in place
        return (
            x.pow(2).sum(-1, keepdim=True)
            - 2 * torch.einsum("bfgc,gkc->bfgk", x, books)
            + books.pow(2).sum(-1)[None, None]
        )

    def nearest(self, x: Tensor) -> Tensor:
        """x float [B, F, G, code_dim] -> codes long [B, G, F] (Euclidean nearest code of each group)."""
        return self.distances(x).argmin(-1).permute(0, 2, 1)

    @staticmethod
    def _sample(vectors: Tensor, count: int) -> Tensor:
        """vectors [M, c] -> [count, c] drawn at random (with replacement when M < count)."""
        if vectors.shape[0] >= count:
            return vectors[torch.randperm(vectors.shape[0], device=vectors.device)[:count]]
        return vectors[torch.randint(vectors.shape[0], (count,), device=vectors.device)]

    @torch.no_grad()
    def _update(self, x: Tensor, codes: Tensor) -> None:
        """EMA update of the codebooks from x float [B, F, G, c] assigned to codes long [B, G, F]."""
        vectors = x.detach().float().permute(2, 0, 1, 3).reshape(self.groups, -1, self.code_dim)  # [G, M, c]
        if not bool(self.initialized):
            for g in range(self.groups):
                self.codebooks[g] = self._sample(vectors[g], self.codebook_size)
            self.embed_sum.copy_(self.codebooks)
            self.cluster_size.fill_(1.0)
            self.initialized.fill_(True)
            return
        onehot = F.one_hot(codes.permute(1, 0, 2).reshape(self.groups, -1), self.codebook_size).float()  # [G, M, K]
        self.cluster_size.mul_(self.decay).add_(onehot.sum(1), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(torch.einsum("gmk,gmc->gkc", onehot, vectors), alpha=1 - self.decay)
        total = self.cluster_size.sum(-1, keepdim=True)
        smoothed = (self.cluster_size + self.epsilon) / (total + self.codebook_size * self.epsilon) * total
        self.codebooks.copy_(self.embed_sum / smoothed[..., None])
        dead = self.cluster_size < self.dead_code_threshold
        for g in torch.nonzero(dead.any(-1)).flatten().tolist():
            rows = torch.nonzero(dead[g]).flatten()
            fresh = self._sample(vectors[g], rows.numel())
            self.codebooks[g, rows] = fresh
            self.embed_sum[g, rows] = fresh
            self.cluster_size[g, rows] = 1.0

    def forward(self, latents: Tensor, with_distances: bool = False) -> Quantized:
        """``with_distances``: also return the distances the codes were chosen by (before this step's update)."""
        x = self._group(latents)  # [B, F, G, c]
        training = self.training and torch.is_grad_enabled()
        if training and not bool(self.initialized):
            self._update(x, codes=None)  # data initialisation, then assign to the new codes
        distances = self.distances(x)
        codes = distances.argmin(-1).permute(0, 2, 1)
        if training:
            self._update(x, codes)
        chosen = self.embed(codes).to(x.dtype)
        commitment_loss = F.mse_loss(x, chosen.detach())
        straight = x + (chosen - x).detach()
        return Quantized(
            quantized=self._ungroup(straight),
            codes=codes,
            embeddings=chosen.flatten(2),
            commitment_loss=commitment_loss,
            distances=distances if with_distances else None,
        )

    def decode(self, codes: Tensor) -> Tensor:
        """codes long [B, G, F] -> quantised latents float [B, latent_dim, F * combine]."""
        return self._ungroup(self.embed(codes))

    def usage(self, codes: Tensor) -> Tensor:
        """codes long [B, G, F] -> float [G]: the fraction of each group's codebook that occurs in ``codes``."""
        used = torch.zeros(self.groups, self.codebook_size, device=codes.device)
        used.scatter_(1, codes.permute(1, 0, 2).reshape(self.groups, -1), 1.0)
        return used.mean(-1)
