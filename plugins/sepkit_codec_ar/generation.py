"""Token-by-token generation of acoustic codes with a ``CodecLM`` and its ``KVCache``.

``generate`` encodes the prefix once, then for t = 0 ... steps - 1 feeds the codes of step t - 1
(BOS at t = 0), takes the logits [B, G, K] of step t and picks the G codes of that step at once
(``choose``). ``sampling: greedy`` takes the arg-max; ``sample`` draws from softmax(logits /
temperature) restricted to the ``top_k`` most likely codes (0: all), with the given
``torch.Generator`` so a seed fixes the result.

``guidance`` w != 1 is classifier-free guidance: every step is also run without the condition (a zero
prefix, what ``condition_dropout`` trains), and the logits are ``uncond + w * (cond - uncond)``; w = 1
is the conditional model alone (no extra pass). Only a model trained with ``condition_dropout`` > 0 has a
meaningful unconditional branch.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError

from .model import CodecLM

SAMPLINGS = ("greedy", "sample")


def choose(
    logits: Tensor, sampling: str, temperature: float = 1.0, top_k: int = 0, generator: Optional[torch.Generator] = None
) -> Tensor:
    """logits [B, G, K] -> codes long [B, G]: one code per group, all groups of the step together."""
    if sampling == "greedy":
        return logits.argmax(dim=-1)
    if sampling != "sample":
        raise SepkitError(f"codec-ar: sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    b, g, k = logits.shape
    scaled = logits.float() / max(temperature, 1e-5)
    if 0 < top_k < k:
        threshold = scaled.topk(top_k, dim=-1).values[..., -1:]
        scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    probs = scaled.softmax(dim=-1).reshape(b * g, k)
    return torch.multinomial(probs, 1, generator=generator).view(b, g)


@torch.no_grad()
def generate(
    lm: CodecLM,
    prefix: Tensor,
    prefix_valid: Tensor,
    steps: int,
    sampling: str = "greedy",
    temperature: float = 1.0,
    top_k: int = 0,
    generator: Optional[torch.Generator] = None,
    progress: bool = False,
    guidance: float = 1.0,
) -> Tensor:
    """prefix [B, P, prefix_in], prefix_valid bool [B, P] -> codes long [B, G, steps]."""
    batch = prefix.shape[0]
    guided = guidance != 1.0
    if guided:  # rows B.. 2B - 1: the same rows without their condition
        prefix = torch.cat([prefix, torch.zeros_like(prefix)])
        prefix_valid = torch.cat([prefix_valid, prefix_valid])
    cache = lm.new_cache(prefix.shape[0], prefix.shape[1], steps, prefix.device)
    lm.prefill(prefix, prefix_valid, cache)
    codes = torch.zeros(batch, lm.num_groups, steps, dtype=torch.long, device=prefix.device)
    previous = None
    for t in _progress(range(steps), progress):
        fed = previous if previous is None or not guided else previous.repeat(2, 1)  # both halves: same codes
        logits = lm.step(fed, t, cache)
        if guided:
            cond, uncond = logits.float().chunk(2)
            logits = uncond + guidance * (cond - uncond)
        previous = choose(logits, sampling, temperature, top_k, generator)
        codes[:, :, t] = previous
    return codes


def _progress(steps: range, enabled: bool):
    if not enabled:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc="codec-ar", unit="step", leave=False)
