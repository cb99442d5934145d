"""The consistency-training schedules of adversarial consistent training.

Hybrid-Sep sets the noise level sigma(k) and the weight lambda_consist(k) "the same as the consistency model
experience" (Song et al. 2023, openai/consistency_models, and Song & Dhariwal 2023) without numbers; *ours*
follows consistency training (CT) with audio-scale noise:

- discretisation N(k) = ceil(sqrt(k / K * ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1 (CT's curriculum; s0 = 2, s1 = 150,
  K = the run's steps);
- Karras levels sigma_i = (sigma_min^(1/rho) + i / (N - 1) (sigma_max^(1/rho) - sigma_min^(1/rho)))^rho, i < N(k)
  (rho = 7; sigma in waveform units, default 0.002 ... 0.5, since audio is in [-1, 1], not CT's 80);
- sigma(k): per example a level drawn uniformly from the N(k) levels; both noisy copies of the target use it
  (Algorithm 1: eps_1, eps_2 ~ N(0, sigma(k)));
- lambda_consist(k) = weight * mu(k), mu(k) = exp(s0 log(mu0) / N(k)) CT's EMA decay schedule (mu0 = 0.95),
  which ramps the consistency weight from 0.95 * weight towards weight as the curriculum refines.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def discretisation(step: int, total: int, s0: int = 2, s1: int = 150) -> int:
    """N(k): the number of noise levels at step k of K."""
    frac = min(max(step, 0) / max(total, 1), 1.0)
    return int(math.ceil(math.sqrt(frac * ((s1 + 1) ** 2 - s0**2) + s0**2) - 1) + 1)


def karras_sigmas(levels: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> Tensor:
    """float [levels]: increasing noise levels from sigma_min to sigma_max."""
    ramp = torch.linspace(0, 1, max(levels, 2))
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + ramp * (hi - lo)) ** rho


def ema_decay(step: int, total: int, mu0: float = 0.95, s0: int = 2, s1: int = 150) -> float:
    """mu(k) = exp(s0 log(mu0) / N(k))."""
    return math.exp(s0 * math.log(mu0) / discretisation(step, total, s0, s1))


def sample_sigma(
    batch: int,
    step: int,
    total: int,
    sigma_min: float,
    sigma_max: float,
    rho: float = 7.0,
    s0: int = 2,
    s1: int = 150,
    generator=None,
    device=None,
) -> Tensor:
    """sigma(k): float [batch], one Karras level of the N(k)-level discretisation per example."""
    sigmas = karras_sigmas(discretisation(step, total, s0, s1), sigma_min, sigma_max, rho)
    index = torch.randint(0, sigmas.numel(), (batch,), generator=generator)
    return sigmas[index].to(device)


def consistency_weight(step: int, total: int, weight: float, mu0: float = 0.95, s0: int = 2, s1: int = 150) -> float:
    """lambda_consist(k) = weight * mu(k)."""
    return weight * ema_decay(step, total, mu0, s0, s1)
