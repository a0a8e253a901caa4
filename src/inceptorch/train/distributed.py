"""Running under torchrun: process group set-up, sharding without duplicates, and exact metric reduction.

torchrun sets RANK, LOCAL_RANK, WORLD_SIZE (and TORCHELASTIC_RESTART_COUNT after an elastic restart); without
them everything here degrades to a single process, so the same training code runs both ways.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler

from ..devices import resolve_device
from ..models.layers import ModelOutput


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    restart_count: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_env() -> DistEnv:
    return DistEnv(int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")),
                   int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")))


def init_distributed(device: str) -> DistEnv:
    """Join torchrun's process group: nccl on GPUs, gloo on CPU. A no-op for a single process."""
    env = dist_env()
    if env.enabled and not dist.is_initialized():
        backend = "nccl" if resolve_device(device).type == "cuda" else "gloo"  # auto on a GPU machine: nccl
        if backend == "nccl":
            torch.cuda.set_device(env.local_rank)
        # After an elastic restart the workers may meet in the same store as the failed attempt, whose stale
        # addresses would make them dial dead peers: keep each attempt's keys apart.
        store, rank, world_size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"inceptorch/attempt_{env.restart_count}", store)
        dist.init_process_group(backend=backend, store=store, rank=rank, world_size=world_size)
    return env


def is_distributed() -> bool:
    return dist.is_initialized()


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): lr grows with the global batch, lr = base * batch / reference."""
    return base_lr * global_batch / reference_batch


class ShardSampler(Sampler[int]):
    """Every index exactly once across ranks (rank r takes r, r + world, ...): no padding duplicates.

    torch's DistributedSampler pads the last shard by repeating samples, which would count some validation
    images twice; evaluation uses this sampler and sums counts across ranks instead.
    """

    def __init__(self, length: int, rank: int, world_size: int):
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.world_size))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks (in place on a copy); identity for a single process."""
    if dist.is_initialized():
        tensor = tensor.clone()
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


class _TrainForward(nn.Module):
    """forward() = the model's forward_train(): DDP synchronises gradients only through its wrapped forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_train(x) if hasattr(self.model, "forward_train") else self.model(x)


class DistributedTrainModel(nn.Module):
    """DDP around a model, keeping the engine's interface: `forward` gives logits, `forward_train` ModelOutput.

    `find_unused_parameters` is needed when some parameters get no gradient in a step: auxiliary heads whose loss
    weight is 0, or a trunk frozen for the first epochs of fine-tuning.
    """

    def __init__(self, model: nn.Module, device: torch.device, find_unused_parameters: bool = False):
        super().__init__()
        from torch.nn.parallel import DistributedDataParallel

        self.has_aux = getattr(model, "has_aux", False)
        self.ddp = DistributedDataParallel(_TrainForward(model), device_ids=[device] if device.type == "cuda" else None,
                                           find_unused_parameters=find_unused_parameters)
        self.unwrapped = model

    def forward_train(self, x: torch.Tensor):
        return self.ddp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ddp(x)
        return out.logits if isinstance(out, ModelOutput) else out
