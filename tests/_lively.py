"""Weights for tests that compare two computations of one network (ours against a reference, a folded or exported
copy against eager, a file written and read back).

An initialised network is a poor witness: BN is the identity (mean 0, variance 1, weight 1, bias 0), so a BN
applied twice, with the wrong epsilon or mapped onto the wrong channel changes nothing, and small initial weights
shrink outputs to where any tolerance passes. `lively` draws every BN far from the identity and, unless told to
keep the model's own, He-scaled weights (std sqrt(2 / fan_in)) that keep activations O(1) through every layer.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def lively(model: nn.Module, seed: int = 0, weights: bool = True) -> nn.Module:
    """`model` in eval mode with BN statistics and affine terms far from the identity (running mean and bias
    N(0, 0.1), running variance and weight uniform in [0.5, 1.5)) and, with `weights`, He-scaled conv and linear
    weights with N(0, 0.1) biases; `weights=False` keeps the weights a reference implementation initialised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if weights and isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / m.weight[0].numel()))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()
