"""Multi-process data parallel training under ``torchrun``, and the rank-aware epoch sampler.

``torchrun --nproc_per_node 2 --no-python sepkit train RECIPE ...`` starts one process per
rank with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set;
``init_distributed`` joins the group (gloo on CPU, nccl on CUDA, one GPU per local
rank). Without those variables everything here is a single-process no-op.

``EpochSampler`` gives every rank the same number of batches per epoch: each epoch is
a seeded permutation, cut to a multiple of ``world_size`` (drop_last style), dealt
round-robin to the ranks and cut into whole batches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
from torch import nn

from sepkit.errors import SepkitError


@dataclass
class DistInfo:
    """This process's place in the group (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """The torchrun environment variables as a ``DistInfo``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(
        rank=int(os.environ["RANK"]),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun group if there is one; returns (info, this rank's device)."""
    import torch.distributed as dist

    info = env_dist_info()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=30))
    if device.type == "cpu":  # share the cores instead of oversubscribing them
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // info.local_world_size))
    return info, device


def destroy() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Sum each value over the ranks (same keys, same order on every rank)."""
    if not info.enabled or not values:
        return dict(values)
    import torch.distributed as dist

    keys = list(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return {k: float(v) for k, v in zip(keys, tensor.tolist())}


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not info.enabled:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(module: nn.Module, info: DistInfo, device: torch.device, find_unused: bool) -> nn.Module:
    """``module`` in DistributedDataParallel (frozen parameters are left out of syncing), or as is."""
    if not info.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel

    if not any(p.requires_grad for p in module.parameters()):
        raise SepkitError("nothing to train: every parameter of the system is frozen")
    frozen = [name for name, p in module.named_parameters() if not p.requires_grad]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, frozen)
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=find_unused)


class EpochSampler:
    """Batches of dataset indices for ``rank``: a seeded permutation per epoch, equal batches on every rank.

    ``shuffle=False`` keeps dataset order (validation); ``drop_last=False`` keeps the ragged
    tail (validation, where ranks may then hold different counts).
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
    ) -> None:
        self.length = length
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last

    @property
    def per_rank(self) -> int:
        """Examples each rank gets per epoch."""
        if self.drop_last:
            return self.length // self.world_size
        return len(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        if self.drop_last:
            return self.per_rank // self.batch_size
        return -(-self.per_rank // self.batch_size)

    def indices(self, epoch: int) -> list[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.length)
        else:
            order = np.arange(self.length)
        if self.drop_last:
            order = order[: self.per_rank * self.world_size]
        return [int(i) for i in order[self.rank :: self.world_size]]

    def batches(self, epoch: int, start: int = 0) -> list[list[int]]:
        """This rank's batches of ``epoch`` from batch number ``start`` on."""
        mine = self.indices(epoch)
        count = len(self)
        return [mine[b * self.batch_size : (b + 1) * self.batch_size] for b in range(start, count)]


def check_batch_size(length: int, batch_size: int, info: DistInfo, where: str) -> None:
    """Raise if one batch per rank cannot be filled from ``length`` examples."""
    per_rank = length // info.world_size
    if per_rank < batch_size:
        ranks = f" over {info.world_size} processes ({per_rank} per process)" if info.enabled else ""
        raise SepkitError(
            f"train.batch_size={batch_size} is larger than the {where} set: {length} examples{ranks}; "
            "lower train.batch_size or give more data"
        )
