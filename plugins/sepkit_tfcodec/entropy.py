"""The rate of TF-Codec's code indices: a differentiable estimate for training, and the empirical one.

TF-Codec controls its rate with the entropy of the code indices (Jiang et al., "Latent-domain
predictive neural speech coding", TASLP 2023). The paper's text was not at hand; the form below is
read from the authors' code (microsoft/TF-Codec: ``GumbelVectorQuantizer`` in ``models/modules.py``,
``configs/tfcodec_config_train_stage2.yaml``, ``target_entropy: 120`` of '6k_20ms_redundant'):

- each group's vector gets soft assignment probabilities over its codebook,
  ``softmax(-distance / temperature)`` (TF-Codec: ``softmax(-5 * squared distance)``, temperature 0.2);
- averaged over every code frame of the batch they give that group's codeword distribution ``p_g``
  (the batch's marginal); its entropy ``H_g = -sum_k p_g,k log2 p_g,k`` bits is the group's rate
  estimate, and ``sum_g H_g`` the bits per code frame (``rate * frame rate`` = bit/s);
- the rate loss is two-sided and per group, ``sum_g |H_g - target / G|`` (TF-Codec: an L1 loss to
  ``target_entropy / codebook_num`` per group, times 0.01, weighted 0.04 in stage 2: 4e-4 per bit).

Why two-sided and per group (rather than ``max(0, sum_g H_g - target)``): it is TF-Codec's form; it
holds the rate at the budget instead of only capping it (entropy left unused below the target is
quality given away), and a per-group target spreads the bits evenly over the groups.

The estimate is the soft-to-hard relaxation of the empirical index entropy of Agustsson et al.
("Soft-to-hard vector quantization for end-to-end learning compressible representations", NeurIPS
2017): as the temperature goes to 0 the soft assignments become the nearest-code indicators and
``H_g`` the entropy of the batch's code histogram (``empirical_entropy_bits``). Being a batch
statistic it is biased low for small batches (a batch of N code frames shows at most log2 N bits per
group; a 4 x 1.5 s mini batch has 300 frames per group for 256 codes), so a target is a target for the
estimate at the batch size trained with. Here only the encoder sees its gradient: the codebooks are
moving averages (``quantizer``), not trained by gradients as TF-Codec's are.

Shapes: distances float [B, F, G, K] (``GroupVectorQuantizer.distances``), codes long [B, G, F].
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

TEMPERATURE = 0.2  # TF-Codec's softmax(-5 * distance)
TINY = 1e-12  # probabilities are floored here inside the log (0 log 0 = 0, finite gradients)


def soft_assignments(distances: Tensor, temperature: float = TEMPERATURE) -> Tensor:
    """distances float [..., K] -> probabilities float32 [..., K]: ``softmax(-distance / temperature)``."""
    return torch.softmax(-distances.float() / temperature, dim=-1)


def code_distribution(distances: Tensor, temperature: float = TEMPERATURE, mask: Optional[Tensor] = None) -> Tensor:
    """distances float [B, F, G, K] -> float32 [G, K]: each group's soft codeword distribution, the mean of the
    soft assignments over the code frames (those with ``mask`` float/bool [B, F] set, default all)."""
    probs = soft_assignments(distances, temperature)
    if mask is None:
        return probs.mean((0, 1))
    weight = mask.to(probs.dtype)[..., None, None]
    return (probs * weight).sum((0, 1)) / weight.sum().clamp_min(1.0)


def entropy_bits(probabilities: Tensor) -> Tensor:
    """probabilities float [..., K] (rows summing to 1) -> float [...]: ``-sum p log2 p`` (0 log 0 = 0)."""
    return -(probabilities * torch.log2(probabilities.clamp_min(TINY))).sum(-1)


def estimate_rate(distances: Tensor, temperature: float = TEMPERATURE, mask: Optional[Tensor] = None) -> Tensor:
    """distances float [B, F, G, K] -> float32 [G]: each group's estimated entropy in bits per code frame
    (differentiable in the distances); ``.sum()`` is the bits per code frame of all groups."""
    return entropy_bits(code_distribution(distances, temperature, mask))


def rate_loss(group_bits: Tensor, target_bits: float) -> Tensor:
    """group_bits float [G] -> scalar: ``sum_g |H_g - target_bits / G|`` (bits; ``target_bits`` per code frame)."""
    return (group_bits - target_bits / group_bits.shape[-1]).abs().sum()


def frame_mask(frames: Tensor, total: int) -> Tensor:
    """frames long [B] valid code frames -> bool [B, total]."""
    return torch.arange(total, device=frames.device)[None] < frames[:, None]


def code_counts(codes: Tensor, codebook_size: int, frames: Optional[Tensor] = None) -> Tensor:
    """codes long [B, G, F] -> long [G, K]: how often each code occurs, over the first ``frames`` long [B]
    code frames of each row (default all)."""
    b, g, f = codes.shape
    valid = torch.ones(b, f, dtype=torch.bool, device=codes.device) if frames is None else frame_mask(frames, f)
    counts = torch.zeros(g, codebook_size, dtype=torch.long, device=codes.device)
    picked = codes.permute(1, 0, 2)[:, valid]  # [G, valid frames]
    return counts.scatter_add_(1, picked, torch.ones_like(picked))


def empirical_entropy_bits(counts: Tensor) -> Tensor:
    """counts [G, K] -> float64 [G]: the entropy (bits) of each group's code histogram."""
    counts = counts.double()
    return entropy_bits(counts / counts.sum(-1, keepdim=True).clamp_min(1.0))
