"""Optimizer and learning-rate schedule from a recipe.

The schedule is a pure function of the fractional epoch (`lr_factor`), applied per optimizer step through
`LambdaLR`, so a resumed run recomputes exactly the rates an uninterrupted one would use.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .config import TrainConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and norm parameters (1-d tensors), the usual modern choice."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "rmsprop":
        # Inception-v3 (arXiv:1512.00567 section 8): RMSProp, decay 0.9, eps 1.0. TF adds eps inside the square
        # root and torch outside it, so eps=1.0 damps steps somewhat more here; momentum 0.9 is TF-slim's default.
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.rmsprop_decay, eps=cfg.eps, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def lr_factor(cfg: TrainConfig, epoch: float) -> float:
    """The learning rate at fractional `epoch`, as a multiple of `cfg.lr`.

    - step: x step_gamma every step_epochs (GoogLeNet: 0.96 every 8 epochs, section 6; Inception-v3: 0.94 every
      2 epochs, section 8), counted from the end of the warmup;
    - cosine: half a cosine from 1 down to min_lr over the epochs after the warmup;
    - warmup: linear from warmup_lr to 1 over warmup_epochs, before either.
    """
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr + (1 - cfg.warmup_lr) * epoch / cfg.warmup_epochs
    t = epoch - cfg.warmup_epochs
    if cfg.schedule == "step":
        return cfg.step_gamma ** math.floor(t / cfg.step_epochs + 1e-9)
    if cfg.schedule == "cosine":
        span = max(cfg.epochs - cfg.warmup_epochs, 1e-9)
        return cfg.min_lr + (1 - cfg.min_lr) * 0.5 * (1 + math.cos(math.pi * min(t / span, 1.0)))
    return 1.0


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A `LambdaLR` stepped once per optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step / steps_per_epoch))
