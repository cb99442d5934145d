"""HSM-TSS's separation losses (eqs. 5-8) and the joint fine-tuning switcher, per example.

- ``global_loss``: L_global = lambda1 (1 - cos(G_hat, G_tgt)) + lambda2 mean|G_hat - G_tgt| (eqs. 5-7;
  the L1 term is the mean absolute difference over the C_g channels).
- ``local_l1``: L_local = mean |S_hat - S_tgt| over the valid patch tokens and their channels (eq. 8).
- ``switch_global``: per example, the ground-truth G_tgt with probability p_gt, else the prediction
  G_hat (sec. III-D, as AudioLDM 2).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def global_cosine(pred: Tensor, target: Tensor) -> Tensor:
    """pred, target: [B, C_g] -> float [B], cosine similarity (computed in float32)."""
    return F.cosine_similarity(pred.float(), target.float(), dim=-1, eps=1e-8)


def global_loss(pred: Tensor, target: Tensor, lambda1: float = 1.0, lambda2: float = 1.0) -> Tensor:
    """pred, target: [B, C_g] -> float [B]: lambda1 (1 - cos) + lambda2 mean absolute difference."""
    l1 = (pred.float() - target.float()).abs().mean(-1)
    return lambda1 * (1 - global_cosine(pred, target)) + lambda2 * l1


def local_l1(pred: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """pred, target: [B, N, C_s]; lengths: long [B] valid tokens -> float [B], mean |pred - target| over them."""
    valid = (torch.arange(pred.shape[1], device=pred.device)[None] < lengths.to(pred.device)[:, None]).float()
    per_token = (pred.float() - target.float()).abs().mean(-1)  # [B, N]
    return (per_token * valid).sum(1) / valid.sum(1).clamp_min(1)


def switch_global(
    g_tgt: Tensor, g_hat: Tensor, p_gt: float, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor]:
    """Per row, G_tgt with probability ``p_gt`` else G_hat.

    g_tgt, g_hat: [B, C_g]. Returns (G [B, C_g], use_gt bool [B]). The draw is on the CPU
    (``generator`` is a CPU generator, or torch's global one), so it is the same on any device.
    """
    draw = torch.rand(g_tgt.shape[0], generator=generator).to(g_tgt.device)
    use_gt = draw < p_gt
    return torch.where(use_gt[:, None], g_tgt.to(g_hat.dtype), g_hat), use_gt


__all__ = ["global_cosine", "global_loss", "local_l1", "switch_global"]
