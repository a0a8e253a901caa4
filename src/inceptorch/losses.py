"""Losses for networks with auxiliary classifiers."""
from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import Tensor

from .models.layers import ModelOutput


def aux_loss(output: ModelOutput, target: Tensor, aux_weight: float,
             criterion: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> Tensor:
    """Main loss plus `aux_weight` times each auxiliary loss.

    GoogLeNet adds its two auxiliary losses with weight 0.3 (arXiv:1409.4842 section 5); Inception-v3's single
    BN-auxiliary head is commonly weighted 0.4 (torchvision's reference recipe).
    """
    loss = criterion(output.logits, target)
    for aux_logits in output.aux_logits:
        loss = loss + aux_weight * criterion(aux_logits, target)
    return loss
