"""MixUp and CutMix: batches of blended images with soft labels (torchvision's `transforms.v2`).

MixUp (Zhang et al. 2018, arXiv:1710.09412) blends two images and their labels with a weight drawn from
Beta(alpha, alpha); CutMix (Yun et al. 2019, arXiv:1905.04899) pastes a box of one image into another, the labels
weighted by the box's area. With both set, each batch gets one of them at random (timm's `Mixup` does the same).
The loss takes the soft labels as they are (cross-entropy against probabilities, label smoothing included).
"""
from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torchvision.transforms import v2

from .config import TrainConfig


def batch_mixing(cfg: TrainConfig, num_classes: int) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None:
    """(images, labels) -> (mixed images, soft labels), or None when the recipe mixes nothing."""
    mixers = []
    if cfg.mixup > 0:
        mixers.append(v2.MixUp(alpha=cfg.mixup, num_classes=num_classes))
    if cfg.cutmix > 0:
        mixers.append(v2.CutMix(alpha=cfg.cutmix, num_classes=num_classes))
    if not mixers:
        return None
    return mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)
