"""The rows that every spec table of the family shares, and the one way a row becomes a stage.

A spec is a table of rows run in order. Each row names the stage it builds (the name is that stage's prefix in a
state dict) and gives its widths; input channels are carried forward from the row before. The layers here are the
same in every network: a conv unit and a max pool. A family adds its own module rows (Inception-v2/v3's `Inc35` ..
`Inc8`, Inception-v4's and Inception-ResNet's `Stage`), which `make_stage` hands to that family's `block` function.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from torch import nn

from .layers import ConvNormAct, scale_width


class Conv(NamedTuple):
    """A conv unit (conv, then BN or a bias, then ReLU): `out_chs` maps, a `kernel` x `kernel` window, `stride`, and
    `padding` pixels on each side (0: TF-slim's "valid")."""

    name: str
    out_chs: int
    kernel: int
    stride: int = 1
    padding: int = 0


class Pool(NamedTuple):
    """A `kernel` x `kernel` / `stride` max pool; `ceil_mode` rounds its output size up instead of down."""

    name: str
    kernel: int = 3
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = False


def make_stage(row: Any, in_chs: int, block: Callable[[Any, int], nn.Module], width: float = 1.0,
               **conv_kwargs) -> tuple[nn.Module, int, int]:
    """The module that one spec row builds, its output channels and its stride.

    The shared rows are built here; any other row is the family's module, `block(row, in_chs)`, which gives its
    `out_channels` and `stride`. `width` scales the conv rows' maps; `conv_kwargs` (norm, bn_eps) go to `ConvNormAct`.
    """
    if isinstance(row, Conv):
        out_chs = scale_width(row.out_chs, width)
        conv = ConvNormAct(in_chs, out_chs, row.kernel, row.stride, padding=row.padding, **conv_kwargs)
        return conv, out_chs, row.stride
    if isinstance(row, Pool):
        return nn.MaxPool2d(row.kernel, row.stride, padding=row.padding, ceil_mode=row.ceil_mode), in_chs, row.stride
    module = block(row, in_chs)
    return module, module.out_channels, module.stride
