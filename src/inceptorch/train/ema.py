"""An exponential moving average of the weights: GoogLeNet's Polyak averaging and Inception-v3's running average.

GoogLeNet (arXiv:1409.4842 section 6) "used Polyak averaging to create the final model"; Inception-v3 (arXiv:
1512.00567 section 8) evaluates "using a running average of the parameters computed over time". Both are an EMA
of the parameters, evaluated in place of the raw weights.

The decay warms up as TensorFlow's `ExponentialMovingAverage(decay, num_updates)` does it, the averaging the
Inception reference training used: after t updates the decay is min(decay, (1 + t) / (10 + t)). Without it, an
average with decay 0.9999 is still 97% the initial weights after 300 steps, and a short run would evaluate an
untrained model; with it, the average covers roughly the last tenth of training until the decay reaches its cap.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay used for update number `updates` (0-based): TensorFlow's num_updates warm-up."""
    return min(decay, (1 + updates) / (10 + updates))


class ModelEMA:
    """`ema = d * ema + (1 - d) * weights` after each optimizer step, d = `warmed_decay(decay, updates)`.

    Floating-point buffers (BN statistics) are averaged the same way; integer counters are copied.
    `warmup=False` uses `decay` from the first update on (the plain average some papers describe).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool = True):
        self.module = copy.deepcopy(model).eval()
        self.decay, self.warmup, self.updates = decay, warmup, 0
        for p in self.module.parameters():
            p.requires_grad_(False)

    @property
    def current_decay(self) -> float:
        return warmed_decay(self.decay, self.updates) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        weight = 1 - self.current_decay
        for ema_v, v in zip(self.module.state_dict().values(), model.state_dict().values()):
            if ema_v.dtype.is_floating_point:
                ema_v.lerp_(v.detach(), weight)
            else:
                ema_v.copy_(v)
        self.updates += 1

    def state_dict(self) -> dict:
        return {**self.module.state_dict(), UPDATES_KEY: torch.tensor(self.updates)}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.updates = int(state.pop(UPDATES_KEY, 0))
        self.module.load_state_dict(state)


UPDATES_KEY = "__ema_updates__"  # stored next to the averaged weights in the training state
