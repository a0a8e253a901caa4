"""Data-dependent initialisation for networks without normalisation layers (the paper's GoogLeNet, NIN, ...).

Without BN, a freshly initialised 22-layer ReLU network maps every image to nearly the same point: each layer's
input is non-negative with a large shared mean, and after a dozen layers the part of a feature vector that differs
between images is a few percent of the part they share, so the first hundreds of steps learn little (the paper
GoogLeNet sat at chance for 4 epochs of the digits demo). Krahenbuhl et al., "Data-dependent Initializations of
Convolutional Neural Networks" (arXiv:1511.06856, section 3.1), rescale each layer in turn so that its outputs
over a batch of real images have zero mean and unit variance per channel: what BN would do at step 0, written into
the weights and biases once, so the architecture stays the paper's. Layers are done in forward order in a single
pass: each layer's hook rescales it, then hands the rescaled output on to the layers after it.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from .precise_bn import batch_norms


def has_normalization(model: nn.Module) -> bool:
    return bool(batch_norms(model)) or any(isinstance(m, (nn.GroupNorm, nn.LayerNorm)) for m in model.modules())


@torch.no_grad()
def data_dependent_init(model: nn.Module, images: Tensor, keep: set[nn.Module] = frozenset()) -> int:
    """Rescale every conv and linear layer of `model` but those in `keep` (the classifiers, whose small initial
    outputs keep the first loss near log(classes)) so that its outputs on `images` have zero mean and unit variance
    per channel. Layers without a bias are only rescaled. Returns the number of layers rescaled."""
    rescaled = []

    def rescale(module: nn.Module, inputs, out: Tensor) -> Tensor | None:
        if module in keep or module in rescaled:
            return None
        dims = [d for d in range(out.ndim) if d != 1]  # all but channels
        mean, std = out.mean(dims), out.std(dims).clamp(min=1e-5)
        module.weight.div_(std.view(-1, *([1] * (module.weight.ndim - 1))))
        shape = [1, -1] + [1] * (out.ndim - 2)
        if module.bias is not None:
            module.bias.sub_(mean).div_(std)
            out = (out - mean.view(shape)) / std.view(shape)
        else:
            out = out / std.view(shape)
        rescaled.append(module)
        return out

    hooks = [m.register_forward_hook(rescale) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    # Train mode: the scale that matters is the one training sees. Dropout (x 1/(1-p) on the kept units) raises the
    # variance of non-negative activations, by about 1.6x per layer for maxout units behind 50% dropout; scaled
    # without it, the maxout network of arXiv:1302.4389 started at a training loss of 91 instead of log(10) = 2.3.
    # The random numbers come from a forked generator, so a run's sequence of draws is the same with or without it.
    model.train()
    try:
        cuda = [images.device.index or 0] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(0)
            forward = getattr(model, "forward_train", model)  # also reaches the auxiliary heads
            forward(images)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return len(rescaled)
