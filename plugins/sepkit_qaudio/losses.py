"""Q-Audio's three pretraining losses (BLIP-2's ITC, ITM, ITG) and hard-negative sampling.

Pairs that share a description are positives of each other: ``positive_pairs`` marks them, ITC
spreads its target over them (as ALBEF/BLIP-2 do with image ids) and hard-negative sampling
never picks them. With distinct descriptions ITC is BLIP-2's in-batch cross-entropy.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor


def positive_pairs(texts: list[str], device: Optional[torch.device] = None) -> Tensor:
    """bool [B, B]: True where rows i and j carry the same description (the diagonal always)."""
    index = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    ids = torch.tensor([index[t] for t in texts], device=device)
    return ids[:, None] == ids[None, :]


def _soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """float [B]: -sum_j targets[i, j] * log_softmax(logits)[i, j]."""
    return -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1)


def itc_loss(sim_a2t: Tensor, positives: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """Symmetric in-batch contrastive loss per row, float [B].

    sim_a2t [B, B]: audio i vs text j similarity already divided by the temperature; positives
    bool [B, B]. Targets: uniform over each row's positives, smoothed as ``F.cross_entropy``'s
    ``label_smoothing`` does (BLIP-2: 0.1). Row i's value is the mean of audio i -> texts and
    text i -> audios.
    """
    batch = sim_a2t.shape[0]
    targets = positives.float() / positives.float().sum(-1, keepdim=True)
    targets = (1 - label_smoothing) * targets + label_smoothing / batch
    targets_t = positives.T.float() / positives.T.float().sum(-1, keepdim=True)
    targets_t = (1 - label_smoothing) * targets_t + label_smoothing / batch
    return (_soft_cross_entropy(sim_a2t, targets) + _soft_cross_entropy(sim_a2t.T, targets_t)) / 2


def sample_hard_negatives(
    sim: Tensor, positives: Tensor, generator: Optional[torch.Generator] = None
) -> tuple[Tensor, Tensor]:
    """One negative column per row, drawn with probability softmax(sim[row]) + 1e-4 over non-positives.

    sim [B, C] (anchors x candidates), positives bool [B, C]. Returns (index long [B], valid bool
    [B]); a row whose candidates are all positives has no negative (valid False, index 0).
    """
    with torch.no_grad():
        weights = F.softmax(sim.float(), dim=-1) + 1e-4
        weights = weights.masked_fill(positives, 0.0)
        valid = weights.sum(-1) > 0
        weights = torch.where(valid[:, None], weights, torch.ones_like(weights))
        device = weights.device
        if generator is not None:
            weights = weights.to(generator.device)
        index = torch.multinomial(weights, 1, generator=generator).squeeze(-1).to(device)
    return torch.where(valid, index, torch.zeros_like(index)), valid


def itm_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Matching cross-entropy per pair, float [M]: logits [M, 2], labels long [M] (1 match, 0 not)."""
    return F.cross_entropy(logits.float(), labels, reduction="none")


def itg_loss(logits: Tensor, labels: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """Next-token cross-entropy per row (mean over its labelled tokens), float [B].

    logits [B, N, V]: position i predicts labels[:, i]; labels long [B, N], -100 where unlabelled.
    """
    flat = F.cross_entropy(
        logits.float().flatten(0, 1),
        labels.flatten(),
        ignore_index=-100,
        reduction="none",
        label_smoothing=label_smoothing,
    ).reshape(labels.shape)
    counted = (labels != -100).float()
    return (flat * counted).sum(-1) / counted.sum(-1).clamp_min(1)
