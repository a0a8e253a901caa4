"""The module that deployment formats capture: eval mode, auxiliary heads detached.

Auxiliary classifiers only serve training (`forward_train`); `forward` never calls them, but torch.export keeps
every parameter of the module, so a GoogLeNet program would carry its two aux heads (half its weights) for nothing.
"""
from __future__ import annotations

import copy

from torch import nn


def inference_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model` in eval mode without auxiliary heads; the original is left untouched."""
    heads = [h for h in getattr(model, "aux_taps", {}).values() if getattr(model, h, None) is not None]
    if not heads:
        return model.eval()
    clone = copy.deepcopy(model).eval()
    for head in heads:
        setattr(clone, head, None)  # the models' own convention for "built with aux_logits=False"
    return clone
