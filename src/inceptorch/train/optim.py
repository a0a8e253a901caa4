"""Optimizer and learning-rate schedule from a recipe.

The schedule is a pure function of the fractional epoch (`lr_factor`), applied per optimizer step through
`LambdaLR`, so a resumed run recomputes exactly the rates an uninterrupted one would use.
"""
from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .config import TrainConfig

# A warm-up given in epochs takes at most this share of the run: a recipe's 5 warm-up epochs (sized for 50 or
# more) would otherwise keep a 6-epoch run's learning rate rising for 5 of its 6 epochs.
MAX_WARMUP_FRACTION = 0.1


def fit_warmup(cfg: TrainConfig) -> tuple[TrainConfig, str | None]:
    """`cfg` with its warm-up capped to MAX_WARMUP_FRACTION of the run, and a line saying so when it was."""
    cap = MAX_WARMUP_FRACTION * cfg.epochs
    if cfg.warmup_epochs <= cap:
        return cfg, None
    note = (f"a warm-up of {cfg.warmup_epochs:g} epoch{'s' if cfg.warmup_epochs != 1 else ''} is more than "
            f"{MAX_WARMUP_FRACTION:.0%} of a {cfg.epochs}-epoch run: warming up for {cap:g} epochs instead")
    return dataclasses.replace(cfg, warmup_epochs=cap), note


def param_groups(model: nn.Module, weight_decay: float, lr: float, trunk: set[str] = frozenset(),
                 trunk_lr_scale: float = 1.0) -> list[dict]:
    """No weight decay on biases and norm parameters (1-d tensors), the usual modern choice; parameters named in
    `trunk` (layers loaded from pretrained weights) learn at lr x trunk_lr_scale. Empty groups are left out."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault((p.ndim > 1, name in trunk), []).append(p)
    # Named when fine-tuning, so that the log can say which lr is whose.
    names = {True: "pretrained", False: "new layers"} if trunk else {True: "all", False: "all"}
    return [{"params": params, "weight_decay": weight_decay if decays else 0.0,
             "lr": lr * (trunk_lr_scale if in_trunk else 1.0), "name": names[in_trunk]}
            for (decays, in_trunk), params in sorted(groups.items())]


def build_optimizer(model: nn.Module, cfg: TrainConfig, trunk: set[str] = frozenset()) -> torch.optim.Optimizer:
    """The recipe's optimizer in its fastest form: fused (one kernel for the whole update) on CUDA for SGD and
    AdamW, else foreach (one kernel per group of tensors instead of one per tensor)."""
    groups = param_groups(model, cfg.weight_decay, cfg.lr, trunk, cfg.trunk_lr_scale)
    on_cuda = all(p.is_cuda for g in groups for p in g["params"])
    impl = {"fused": True} if on_cuda and cfg.optimizer != "rmsprop" else {"foreach": True}
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               **impl)
    if cfg.optimizer == "rmsprop":
        # Inception-v3 (arXiv:1512.00567 section 8): RMSProp, decay 0.9, eps 1.0. TF adds eps inside the square
        # root and torch outside it, so eps=1.0 damps steps somewhat more here; momentum 0.9 is TF-slim's default.
        return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.rmsprop_decay, eps=cfg.eps, momentum=cfg.momentum,
                                   **impl)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **impl)


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
