"""AdamW and learning-rate schedules from a recipe's ``train:`` section.

Schedules are a factor on ``train.lr`` for optimizer step ``s`` (0-based)::

    warmup (s < W):  (s + 1) / W
    constant:        1
    cosine:          min_ratio + (1 - min_ratio) * (1 + cos(pi * (s - W) / (steps - W))) / 2
    step:            gamma ** ((s - W) // step_size)

The factor is a closure, so a scheduler's state_dict holds only its position and a
resumed run with more ``train.steps`` stretches its cosine to the new length.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from sepkit.train.config import ScheduleConfig, TrainConfig


def parameter_groups(params: Iterable[nn.Parameter], weight_decay: float) -> list[dict]:
    """Weight decay on matrices and kernels (ndim >= 2); none on biases, norm weights and scalars."""
    params = [p for p in params if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig, lr: float | None = None) -> torch.optim.AdamW:
    """AdamW over the trainable ``params`` with ``train.lr``, ``betas``, ``eps`` and ``weight_decay``."""
    groups = parameter_groups(params, cfg.weight_decay)
    return torch.optim.AdamW(
        groups, lr=cfg.lr if lr is None else lr, betas=(cfg.betas[0], cfg.betas[1]), eps=cfg.eps, fused=fusable(groups)
    )


def fusable(groups: list[dict]) -> bool:
    """Whether AdamW's fused kernel applies: float parameters all on one CPU or CUDA device (as is usual).

    The fused step updates every parameter in one kernel per dtype group: on the 2-core CPU,
    2.1 ms instead of 6.6 ms for mini AudioSep's 1.4 M parameters, 2.6 instead of 11.1 ms for the
    mini HSM-TSS local stage's 3.4 M (one thread, benchmarks/train_throughput/README.md).
    """
    params = [p for g in groups for p in g["params"]]
    devices = {p.device for p in params}
    on_one_device = len(devices) == 1 and next(iter(devices)).type in ("cpu", "cuda")
    return on_one_device and all(p.is_floating_point() for p in params)


def schedule_factor(schedule: ScheduleConfig, total_steps: int):
    """The function step -> lr factor described in the module docstring."""
    warmup = max(0, schedule.warmup_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        after = step - warmup
        if schedule.name == "cosine":
            progress = min(1.0, after / max(1, total_steps - warmup))
            return schedule.min_ratio + (1 - schedule.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
        if schedule.name == "step":
            return schedule.gamma ** (after // max(1, schedule.step_size))
        return 1.0

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepping ``train.schedule`` once per optimizer step over ``train.steps``."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(cfg.schedule, cfg.steps))
