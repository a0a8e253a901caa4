"""An exponential moving average of the weights: GoogLeNet's Polyak averaging and Inception-v3's running average.

GoogLeNet (arXiv:1409.4842 section 6) "used Polyak averaging to create the final model"; Inception-v3 (arXiv:
1512.00567 section 8) evaluates "using a running average of the parameters computed over time". Both are an EMA
of the parameters, evaluated in place of the raw weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEMA:
    """`ema = decay * ema + (1 - decay) * weights` after each optimizer step.

    Floating-point buffers (BN statistics) are averaged the same way; integer counters are copied.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(model).eval()
        self.decay = decay
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.dtype.is_floating_point:
                ema_v.lerp_(v.detach(), 1 - self.decay)
            else:
                ema_v.copy_(v)

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state)
