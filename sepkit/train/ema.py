"""Exponential moving average of a module's trainable parameters.

``shadow = d * shadow + (1 - d) * param`` after every optimizer step, with the usual
warmup ``d = min(decay, (1 + n) / (10 + n))`` over the first updates. Shadows are
float32 copies keyed by parameter name; ``applied(module)`` swaps them in (for
validation and best checkpoints) and restores the live weights afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn


class EMA:
    """EMA of ``module``'s parameters that require grad."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.decay = float(decay)
        self.updates = 0
        self.shadow: dict[str, Tensor] = {
            name: p.detach().float().clone() for name, p in module.named_parameters() if p.requires_grad
        }

    def _params(self, module: nn.Module) -> dict[str, nn.Parameter]:
        return {name: p for name, p in module.named_parameters() if name in self.shadow}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Move the shadows towards ``module``'s current weights."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self._params(module).items():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[nn.Module]:
        """Within the block ``module`` holds the EMA weights; its own come back afterwards."""
        params = self._params(module)
        saved = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.shadow[name].to(p.dtype))
        try:
            yield module
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(saved[name])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        missing = sorted(set(self.shadow) - set(state["shadow"]))
        if missing:
            raise KeyError(f"EMA state lacks {', '.join(missing[:5])}")
        for name in self.shadow:
            self.shadow[name] = state["shadow"][name].float().to(self.shadow[name].device)

    def to(self, device: torch.device) -> EMA:
        self.shadow = {name: t.to(device) for name, t in self.shadow.items()}
        return self
