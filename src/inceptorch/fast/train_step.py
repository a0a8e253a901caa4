"""The training path of issue 5: one compiled forward+loss, channels_last, autocast, a fused optimizer.

`TrainStep(model)(x, y)` runs forward, loss, backward and the optimizer step and returns the (detached) loss.
The forward+loss function is what `torch.compile(fullgraph=True)` sees; it has no graph break
(tests/test_optimize.py checks it with `torch._dynamo.explain`). Concatenations cost no extra memory in backward:
the gradient of `torch.cat` is a set of views of the incoming gradient, and under `torch.compile` inductor writes
the branch outputs straight into the concatenated buffer. `checkpoint=True` recomputes each `Branches` block in
backward instead of keeping its inner activations (activation checkpointing, at about one extra forward).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..losses import aux_loss
from ..models.layers import Branches, ModelOutput
from ..precision import torch_dtype


def fast_optimizer(params, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """SGD with momentum as one fused kernel where this torch has it for the device, else the foreach version."""
    params = list(params)
    try:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=True)
        opt.fused_kind = "fused"
        return opt
    except (RuntimeError, TypeError, ValueError):  # no fused SGD for this device / torch version
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)
        opt.fused_kind = "foreach"
        return opt


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
    """forward + loss (compiled if asked, `fullgraph=True`) -> backward -> optimizer step."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, precision: str = "fp32",
                 channels_last: bool = True, compile: bool = False, checkpoint: bool = False,
                 aux_weight: float | None = None, fused_optimizer: bool = True, lr: float = 1e-3,
                 backend: str = "inductor", compile_mode: str | None = None):
        self.model = model.train()
        self.device = next(model.parameters()).device
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if checkpoint:
            enable_block_checkpointing(model)
        if optimizer is None:
            optimizer = (fast_optimizer(model.parameters(), lr=lr) if fused_optimizer
                         else torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9))
        self.optimizer = optimizer
        self.dtype = torch_dtype(precision)
        self.channels_last = channels_last
        cfg = getattr(model, "default_cfg", None)
        self.aux_weight = aux_weight if aux_weight is not None else getattr(cfg, "aux_weight", 0.0)
        self.loss_fn = torch.compile(self.forward_loss, fullgraph=True, backend=backend,
                                                     mode=compile_mode) if compile else self.forward_loss

    def forward_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """The part that is compiled: autocast forward (with aux heads if the model has them) and the loss."""
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            out = self.model.forward_train(x) if hasattr(self.model, "forward_train") else self.model(x)
        if isinstance(out, ModelOutput):
            return aux_loss(ModelOutput(out.logits.float(), tuple(a.float() for a in out.aux_logits)), y,
                            self.aux_weight)
        return F.cross_entropy(out.float(), y)

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = self.loss_fn(x, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()
