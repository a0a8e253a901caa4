"""How far two float32 evaluations of one network may differ: the one tolerance policy, of the tests and of export.

Two implementations of the same network (the optimized model and the plain one, a compiled model and the eager one,
ONNX Runtime and PyTorch) compute the same function, and neither exactly: each sums its products in its own order
(channels_last kernels, GEMMs, merged convs, BNs folded into the weights, Winograd), and each order rounds
differently. The bound follows the standard rounding-error model (Higham, Accuracy and Stability of Numerical
Algorithms, 2nd ed.: sections 3.1 and 2.8):
- a dot product of n terms in fp32 is off by at most gamma_n * sum|x_i w_i|, gamma_n ~ n u (u = 2^-24): too
  pessimistic, since rounding errors of both signs cancel. Modelled as independent (Higham's rule of thumb), with
  partial sums growing like sqrt(k) for terms of random sign, they add to about u |y| sqrt(n / 6);
- a network whose layers keep activations at their scale (He-scaled weights, batch norm) brings an error made in any
  layer to the outputs at the same relative size; the layers' errors are independent and add in quadrature: relative
  error ~ u sqrt(N / 6), N the sum of every conv's and linear's fan-in (every branch counted: more than what one
  output depends on);
- the difference of two such evaluations is sqrt(2) times that (folding a BN rounds each weight once more, a term
  within the same count), and the largest of the outputs lies within about 4 standard deviations.
Hence |a - b| <= 4 sqrt(2) u S sqrt(N / 6) = 2.3 u S sqrt(N), S = max |output|; `fp32_tolerance` allows 3 u S sqrt(N).
It is absolute, on the outputs' scale S, not relative per output: the errors come from the sums inside the network,
whose scale a small logit does not share (a per-logit `rtol` is how maxout failed at 1.7e-5 against 1e-5).

Figures (tests/test_optimize.py's inputs): maxout N = 14,708, S = 29: 6.3e-4, measured 3.8e-5 on an AMD EPYC;
googlenet N = 37,779, S = 6.0: 2.1e-4, measured 5.2e-6. A folding or merging mistake shows far above it: a BN epsilon
of 1e-5 for 1e-3 alone moves every normalised channel by about 5e-4 of its value, 14 times googlenet's relative bound
of 3.5e-5.

The model's premise, gains of about 1, holds for the tests' weights (BN variances 0.5-1.5, tests/_lively.py). A
trained network's BNs can amplify: a channel of small variance is scaled by up to 1/sqrt(eps) (31 at eps = 1e-3).
Inception-v3 at 299 px with BN statistics calibrated on one batch (BENCHMARKS.md; N = 96,059, S = 6.6) comes close:
3.7e-4 allowed, ONNX Runtime 2.9e-4 and `optimize` 3.2e-4 off eager.

A check of a trained network cannot lean on that premise: `inceptorch export`'s ONNX Runtime check (`export/parity.py`)
allows a fixed `RELATIVE_TOLERANCE`, 1e-4 of S. That is above 3 u sqrt(N) of every registered network (the largest N,
Inception-ResNet-v2's 200,027, gives 8.0e-5; tests/test_optimize.py checks it), and more than twice what ONNX Runtime
was off on that Inception-v3, 4.4e-5 of S (an absolute 1e-4 refused that export); a broken export is off by the order
of S itself.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: the command line reads RELATIVE_TOLERANCE before it needs torch
    from torch import nn

U = 2.0 ** -24  # fp32 unit roundoff
RELATIVE_TOLERANCE = 1e-4  # of S, for a trained network (the export check); see above


def fan_in_sum(model: nn.Module) -> int:
    """N: the fan-ins of every conv and linear layer of `model`, summed."""
    import torch

    layers = (torch.nn.Conv2d, torch.nn.Linear)
    return sum(m.weight[0].numel() for m in model.modules() if isinstance(m, layers))


def fp32_tolerance(model: nn.Module, scale: float, factor: float = 3.0) -> float:
    """`factor` u S sqrt(N): how far two fp32 evaluations of `model` may differ on outputs of largest magnitude S."""
    return factor * U * math.sqrt(fan_in_sum(model)) * scale
