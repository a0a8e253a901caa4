"""The rows that every spec table of the family shares, and the one way a row becomes a stage.

A spec is a table of rows run in order. Each row names the stage it builds (the name is that stage's prefix in a
state dict) and gives its widths; input channels are carried forward from the row before. The layers here are the
same in every network: a conv unit, a max pool and (GoogLeNet's) local response normalisation. A family adds its own
module rows (GoogLeNet's `Inc`, BN-Inception's `Mod`, Inception-v2/v3's `Inc35` .. `Inc8`, Inception-v4's and
Inception-ResNet's `Stage`), which `make_stage` hands to that family's `block` function. What differs between two
builds of one table is a field of a row (`stem`) or of the family's config, never a row's name.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
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
    stem: bool = False  # the conv of a 224 px stem, made 3x3/1 for small inputs (`for_small_input`)


class Pool(NamedTuple):
    """A `kernel` x `kernel` / `stride` max pool; `ceil_mode` rounds its output size up instead of down."""

    name: str
    kernel: int = 3
    stride: int = 2
    padding: int = 0
    ceil_mode: bool = False
    stem: bool = False  # the pool of a 224 px stem, left out for small inputs (`for_small_input`)


class LRN(NamedTuple):
    """Local response normalisation across 5 channels (GoogLeNet, paper Figure 3)."""

    name: str


def for_small_input(spec: Sequence) -> tuple:
    """`spec` for 28-64 px images: the stem's conv becomes 3x3/1 and the stem's pool is left out, which divides the
    total stride by 4, so that a 32 px input still has a grid at the last stage."""
    return tuple(row._replace(kernel=3, stride=1, padding=1) if isinstance(row, Conv) and row.stem else row
                 for row in spec if not (isinstance(row, Pool) and row.stem))


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
    if isinstance(row, LRN):
        # Caffe's LRN convention (alpha divided by the window size) is also torch's.
        return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0), in_chs, 1
    module = block(row, in_chs)
    return module, module.out_channels, module.stride
