"""BatchNorm statistics recomputed from data before a model is evaluated or saved (PreciseBN).

In eval mode BN normalises with running estimates that start at mean 0, variance 1 and move 10% of the way to each
batch's statistics. Freshly initialised Inception layers put out activations with variances far below 1, so after
a few dozen steps the estimates still hold most of their starting value: a short run's eval-mode outputs shrink
layer after layer until every image gets the same logits, although the train-mode network separates the classes.
Wu & Johnson, "Rethinking 'Batch' in BatchNorm" (arXiv:2105.07576, section 3), recompute the statistics with the
weights frozen, as a plain average over a number of batches; fvcore and detectron2 ship it as PreciseBN.

Here the batches are training images through the evaluation transform, the input the statistics will normalise
at test time. Only BN layers are put in train mode: dropout stays off and draws no random numbers, so the training
run continues exactly as if this had not happened (its resume stays bitwise exact).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)

# Running estimates younger than this many updates are recomputed under `precise_bn: auto`: after 1000 updates
# at momentum 0.1 the starting value's weight is 0.9^1000, and the estimate follows the weights of the last
# few dozen steps, which at that point of a run change slowly.
YOUNG_UPDATES = 1000


def batch_norms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, BATCH_NORMS) and m.track_running_stats]


def bn_updates(model: nn.Module) -> int:
    """How many batches the model's BN running estimates have seen (0 without BN)."""
    norms = batch_norms(model)
    return int(norms[0].num_batches_tracked) if norms else 0


def needs_recompute(model: nn.Module, mode: str) -> bool:
    """Whether `precise_bn: mode` ("auto", "always", "never") recomputes `model`'s statistics now."""
    if mode == "never" or not batch_norms(model):
        return False
    return mode == "always" or bn_updates(model) < YOUNG_UPDATES


@torch.no_grad()
def recompute_bn_stats(model: nn.Module, batches: Iterable[torch.Tensor], keep: frozenset[str] = frozenset()) -> int:
    """Set every BN layer's running mean and variance to their average over `batches` (images already on the
    model's device, normalised); returns the number of images used. `num_batches_tracked` keeps counting. The BN
    layers named in `keep` (a frozen trunk's) are left as they are and normalise with their own statistics."""
    tracked = {id(m) for m in batch_norms(model)}
    norms = [m for name, m in model.named_modules() if id(m) in tracked and name not in keep]
    if not norms:
        return 0
    was_training = model.training
    saved = [(m.momentum, m.num_batches_tracked.clone(), m.running_mean.clone(), m.running_var.clone())
             for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches, each weighted equally
        m.train()
    images = 0
    try:
        for x in batches:
            model(x)
            images += x.shape[0]
    finally:
        for m, (momentum, tracked, mean, var) in zip(norms, saved):
            m.momentum = momentum
            m.num_batches_tracked.copy_(tracked)
            if not images:  # nothing seen (no batches, or an exception on the first): keep the old estimates
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
        model.train(was_training)
    return images
