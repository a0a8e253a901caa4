"""`inceptorch train`'s training step as one callable, for `inceptorch bench --mode train` and the benchmarks.

`TrainStep(model)(x, y)` runs forward, loss, backward and the optimizer step and returns the (detached) loss, with
the pieces `inceptorch train` itself uses: the engine's `ForwardLoss` (compiled with `fullgraph=True` when asked;
tests/test_optimize.py checks with `torch._dynamo.explain` that it has no graph break) and the recipe optimizer
from `train.optim.build_optimizer` (fused on CUDA, foreach on the CPU). Concatenations cost no extra memory in
backward: the gradient of `torch.cat` is a set of views of the incoming gradient, and under `torch.compile`
inductor writes the branch outputs straight into the concatenated buffer. `checkpoint=True` recomputes each
`Branches` block in backward instead of keeping its inner activations (activation checkpointing, at about one
extra forward).
"""
from __future__ import annotations

import functools

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..models.layers import Branches
from ..precision import torch_dtype
from ..train.engine import ForwardLoss
from ..train.optim import build_optimizer


def fast_optimizer(model: nn.Module, lr: float = 0.01, momentum: float = 0.9,
                   weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD with momentum as `inceptorch train` builds it (`train.optim.build_optimizer`): fused on CUDA, else
    foreach."""
    from ..train.config import TrainConfig

    cfg = TrainConfig(optimizer="sgd", lr=lr, momentum=momentum, weight_decay=weight_decay)
    return build_optimizer(model, cfg)


def enable_block_checkpointing(model: nn.Module) -> int:
    """Make every `Branches` block recompute its inside in backward; returns how many blocks were wrapped."""
    count = 0
    for block in model.modules():
        if isinstance(block, Branches) and "forward" not in block.__dict__:
            plain = block.forward
            block.forward = functools.partial(checkpoint, plain, use_reentrant=False)
            count += 1
    return count


class TrainStep:
    """forward + loss (`ForwardLoss`, compiled if asked) -> backward -> optimizer step, as `train_one_epoch` does
    them for one batch."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, precision: str = "fp32",
                 channels_last: bool = True, compile: bool = False, checkpoint: bool = False,
                 aux_weight: float | None = None, lr: float = 1e-3, backend: str = "inductor",
                 compile_mode: str | None = None):
        self.model = model.train()
        self.device = next(model.parameters()).device
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if checkpoint:
            enable_block_checkpointing(model)
        self.optimizer = optimizer if optimizer is not None else fast_optimizer(model, lr=lr)
        self.dtype = torch_dtype(precision)
        self.channels_last = channels_last
        cfg = getattr(model, "default_cfg", None)
        self.aux_weight = aux_weight if aux_weight is not None else getattr(cfg, "aux_weight", 0.0)
        self.loss_fn = ForwardLoss(model, self.aux_weight,
                                   autocast_dtype=None if self.dtype == torch.float32 else self.dtype,
                                   compile=compile, backend=backend, mode=compile_mode)
        self.forward_loss = self.loss_fn.forward_loss  # the uncompiled function, for graph checks

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, _ = self.loss_fn(x, y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()
