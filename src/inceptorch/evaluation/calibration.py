"""Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural Networks", section 4.2): one scalar T
divides the logits, fitted by minimising the validation set's negative log-likelihood. It changes no prediction
(the arg-max is the same) and makes the probabilities mean what they say: of the images answered with 90%
confidence, about 90% are right.

`inceptorch calibrate --checkpoint RUN` fits T on the run's validation split and stores it in the model file's
metadata (`calibration`); eval, predict, serve and the exports divide by it from then on.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MIN_T, MAX_T = 0.05, 20.0  # a temperature outside this range means the fit has gone wrong, not a real model


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """The T > 0 that minimises the mean cross-entropy of logits / T (L-BFGS on log T, as the paper's code does)."""
    logits, targets = logits.double(), targets.long()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    t = float(log_t.detach().exp())
    return min(MAX_T, max(MIN_T, t)) if math.isfinite(t) else 1.0


def logits_from_probabilities(probabilities: torch.Tensor) -> torch.Tensor:
    """Logits (up to a per-image constant, which softmax ignores) of averaged probabilities: log p."""
    return probabilities.clamp_min(1e-12).log()
