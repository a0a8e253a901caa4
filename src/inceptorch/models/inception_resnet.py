"""Inception-ResNet-v1 and -v2 (Szegedy et al., arXiv:1602.07261, Figures 10-19).

Every residual block computes relu(x + scale * conv1x1(concat(branches(x)))): the 1x1 convolution is linear
(no BN, no ReLU; it keeps its bias) and restores the input's width, and BN sits only on the "traditional" layers,
not on the sum (section 3.2). Section 3.3 scales residuals by 0.1-0.3 before the addition; the scales here are
TF-slim's (0.17 for the 35x35 blocks, 0.10 for 17x17, 0.20 for 8x8), data in each spec.

- `inception_resnet_v2` is TF-slim's release, whose weights timm ports (55,843,464 parameters at 1000 classes,
  13.18 GMACs at 299). It departs from the paper's Figures 15-19 and we follow it for the weights: an
  Inception-v3-like stem (1x1 80, 3x3 192, pool) ending in a 35x35 Inception-A module with a 5x5 branch (Mixed_5b,
  320 channels) instead of Figure 3's stem; 10 / 20 / 10 blocks instead of 5 / 10 / 5 (Figure 15); block widths
  320 / 1088 / 2080 where the paper's stem and reductions give 384 / 1152 / 2144 (its Figures 17 and 19 print 1154
  and 2048); the last Block8 unscaled and without ReLU, then a 1x1 conv to 1536 channels.
- `inception_resnet_v1` has no public weights; it is built from the paper alone: the stem of Figure 14, 5 x
  Inception-ResNet-A (Figure 10), Reduction-A (Figure 7, Table 1: k=192 l=192 m=256 n=384), 10 x Inception-ResNet-B
  (Figure 11), Reduction-B (Figure 12), 5 x Inception-ResNet-C (Figure 13), average pool, dropout (keep 0.8),
  linear (Figure 15). The paper gives no scales for it (it says scaling mattered past about 1000 filters); we use
  the same 0.17 / 0.10 / 0.20 so that its deeper stages (896 and 1792 filters) are scaled like v2's.
- `inception_resnet_small`: the same three residual blocks and two reductions, three blocks each, sized for
  28-32 px images with a `width` multiplier: the network for testing section 3.3's claim on small data.

Every builder takes `residual_scale`, which replaces the scale of every residual block (1.0: unscaled), for the
section 3.3 ablation: "if the number of filters exceeded 1000, the residual variants started to exhibit
instabilities [...] scaling down the residuals before adding them [...] seemed to stabilize the training".
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import Tensor, nn

from ._inception_v4_blocks import (
    BN_EPS,
    PAPER,
    REDUCTION_A,
    InceptionA,
    InceptionAWidths,
    ReductionA,
    ReductionAWidths,
    StackedInception,
    Stage,
    conv_chain,
    max_pool_valid,
)
from ._registry import INCEPTION_MEAN, INCEPTION_STD, ModelCfg, register_model
from ._rows import Conv, Pool
from .layers import Branches, ConvNormAct, scale_width


class ResidualBlock(nn.Module):
    """relu(x + scale * proj(branches(x))): the Inception-ResNet module shape (Figures 10-13, 16-19, scaling: 20)."""

    stride = 1

    def __init__(self, in_chs: int, branches: Branches, scale: float, act: bool = True):
        super().__init__()
        self.branches = branches
        self.proj = nn.Conv2d(branches.out_channels, in_chs, 1)  # "1x1 Conv (Linear)": bias, no BN, no ReLU
        self.act = nn.ReLU(inplace=True) if act else nn.Identity()
        self.scale, self.out_channels = scale, in_chs

    def forward(self, x: Tensor) -> Tensor:
        return self.act(x + self.scale * self.proj(self.branches(x)))

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


def _conv(in_chs: int, out_chs: int) -> ConvNormAct:
    return ConvNormAct(in_chs, out_chs, 1, bn_eps=BN_EPS)


class Block35Widths(NamedTuple):
    c1x1: int
    c3x3: tuple[int, int]           # 1x1, 3x3
    c3x3dbl: tuple[int, int, int]   # 1x1, 3x3, 3x3


class Block35(ResidualBlock):
    """Inception-ResNet-A, the 35x35 residual block (Figure 10 for v1, Figure 16 for v2)."""

    def __init__(self, in_chs: int, w: Block35Widths, scale: float, act: bool = True):
        branches = Branches()
        branches.branch1x1 = _conv(in_chs, w.c1x1)
        branches.branch3x3 = conv_chain(in_chs, w.c3x3, (1, 3))
        branches.branch3x3dbl = conv_chain(in_chs, w.c3x3dbl, (1, 3, 3))
        super().__init__(in_chs, branches, scale, act)


class Block17Widths(NamedTuple):
    c1x1: int
    c7x7: tuple[int, int, int]      # 1x1, 1x7, 7x1


class Block17(ResidualBlock):
    """Inception-ResNet-B, the 17x17 residual block (Figure 11 for v1, Figure 17 for v2)."""

    def __init__(self, in_chs: int, w: Block17Widths, scale: float, act: bool = True):
        branches = Branches()
        branches.branch1x1 = _conv(in_chs, w.c1x1)
        branches.branch7x7 = conv_chain(in_chs, w.c7x7, (1, (1, 7), (7, 1)))
        super().__init__(in_chs, branches, scale, act)


class Block8Widths(NamedTuple):
    c1x1: int
    c3x3: tuple[int, int, int]      # 1x1, 1x3, 3x1


class Block8(ResidualBlock):
    """Inception-ResNet-C, the 8x8 residual block (Figure 13 for v1, Figure 19 for v2)."""

    def __init__(self, in_chs: int, w: Block8Widths, scale: float, act: bool = True):
        branches = Branches()
        branches.branch1x1 = _conv(in_chs, w.c1x1)
        branches.branch3x3 = conv_chain(in_chs, w.c3x3, (1, (1, 3), (3, 1)))
        super().__init__(in_chs, branches, scale, act)


class ReductionBResWidths(NamedTuple):
    c3x3a: tuple[int, int]          # 1x1, 3x3/2 VALID
    c3x3b: tuple[int, int]          # 1x1, 3x3/2 VALID
    c3x3dbl: tuple[int, int, int]   # 1x1, 3x3, 3x3/2 VALID


class ReductionBRes(Branches):
    """Inception-ResNet's 17x17 -> 8x8 grid reduction (Figure 12 for v1, Figure 18 for v2; not v4's Figure 8)."""

    stride = 2

    def __init__(self, in_chs: int, w: ReductionBResWidths):
        super().__init__()
        self.in_chs = in_chs
        self.branch3x3a = conv_chain(in_chs, w.c3x3a, (1, 3), stride=2, valid=True)
        self.branch3x3b = conv_chain(in_chs, w.c3x3b, (1, 3), stride=2, valid=True)
        self.branch3x3dbl = conv_chain(in_chs, w.c3x3dbl, (1, 3, 3), stride=2, valid=True)
        self.branch_pool = max_pool_valid()

    @property
    def out_channels(self) -> int:
        return sum(b[-1].out_channels for b in (self.branch3x3a, self.branch3x3b, self.branch3x3dbl)) + self.in_chs


# Figure 15 with the v1 widths of Figures 10-14 and Table 1.
INCEPTION_RESNET_V1 = (
    #     name     out kernel stride padding                                                  # output at 299
    Conv("conv1",   32, 3, 2),                                                                 # 149x149x32
    Conv("conv2",   32, 3),                                                                    # 147x147x32
    Conv("conv3",   64, 3, 1, 1),                                                              # 147x147x64
    Pool("pool1"),                                                                             # 73x73x64
    Conv("conv4",   80, 1),                                                                    # 73x73x80
    Conv("conv5",  192, 3),                                                                    # 71x71x192
    Conv("conv6",  256, 3, 2),                                                                 # 35x35x256
    Stage("block35", Block35, Block35Widths(32, (32, 32), (32, 32, 32)), count=5, scale=0.17),  # 35x35x256
    Stage("reduction_a", ReductionA, REDUCTION_A["inception_resnet_v1"]),                     # 17x17x896
    Stage("block17", Block17, Block17Widths(128, (128, 128, 128)), count=10, scale=0.10),      # 17x17x896
    Stage("reduction_b", ReductionBRes, ReductionBResWidths((256, 384), (256, 256), (256, 256, 256))),  # 8x8x1792
    Stage("block8", Block8, Block8Widths(192, (192, 192, 192)), count=5, scale=0.20),          # 8x8x1792
)

# TF-slim's inception_resnet_v2 (timm's layout); see the module docstring for where it leaves the paper.
INCEPTION_RESNET_V2 = (
    Conv("conv1",   32, 3, 2),                                                                 # 149x149x32
    Conv("conv2",   32, 3),                                                                    # 147x147x32
    Conv("conv3",   64, 3, 1, 1),                                                              # 147x147x64
    Pool("pool1"),                                                                             # 73x73x64
    Conv("conv4",   80, 1),                                                                    # 73x73x80
    Conv("conv5",  192, 3),                                                                    # 71x71x192
    Pool("pool2"),                                                                             # 35x35x192
    Stage("mixed5b", InceptionA, InceptionAWidths(96, (48, 64), (64, 96, 96), pool_proj=64, kernel=5)),  # 35x35x320
    Stage("block35", Block35, Block35Widths(32, (32, 32), (32, 48, 64)), count=10, scale=0.17),  # 35x35x320
    Stage("reduction_a", ReductionA, REDUCTION_A["inception_resnet_v2"]),                     # 17x17x1088
    Stage("block17", Block17, Block17Widths(192, (128, 160, 192)), count=20, scale=0.10),      # 17x17x1088
    Stage("reduction_b", ReductionBRes, ReductionBResWidths((256, 384), (256, 288), (256, 288, 320))),  # 8x8x2080
    Stage("block8", Block8, Block8Widths(192, (192, 224, 256)), count=9, scale=0.20),          # 8x8x2080
    Stage("block8_10", Block8, Block8Widths(192, (192, 224, 256)), scale=1.0, act=False),      # 8x8x2080
    Conv("conv_head", 1536, 1),                                                                # 8x8x1536
)


# Sized for 28-32 px digits (a few minutes of CPU per run): the three residual blocks of Figures 16-19 with v2's
# branch shapes, three of each, between v1's stem shape (plain convs) and the two reductions. Widths are a quarter
# of v2's or less; `width` scales them all (width 4 gives v2-like block widths, 1,664 channels in block8).
INCEPTION_RESNET_SMALL = (
    #     name     out kernel stride padding                                                  # output at 32
    Conv("conv1",   32, 3, 1, 1),                                                              # 32x32x32
    Conv("conv2",   64, 3, 2, 1),                                                              # 16x16x64
    Stage("block35", Block35, Block35Widths(16, (16, 16), (16, 24, 32)), count=3, scale=0.17),  # 16x16x64
    Stage("reduction_a", ReductionA, ReductionAWidths(32, 32, 64, 64)),                         # 7x7x192
    Stage("block17", Block17, Block17Widths(64, (32, 48, 64)), count=3, scale=0.10),           # 7x7x192
    Stage("reduction_b", ReductionBRes, ReductionBResWidths((32, 64), (32, 64), (32, 64, 96))),  # 3x3x416
    Stage("block8", Block8, Block8Widths(64, (64, 80, 96)), count=3, scale=0.20),              # 3x3x416
)


def scale_spec(spec: Sequence, width: float) -> tuple:
    """`spec` with every channel count multiplied by `width` (conv outputs, and every field of block widths)."""
    def scaled(value):
        return tuple(scaled(v) for v in value) if isinstance(value, tuple) else scale_width(value, width)

    return tuple(row._replace(out_chs=scale_width(row.out_chs, width)) if isinstance(row, Conv)
                 else row._replace(widths=type(row.widths)(*map(scaled, row.widths))) if isinstance(row, Stage)
                 else row for row in spec)


class InceptionResNet(StackedInception):
    """Inception-ResNet from a spec; `drop_rate` 0.2 is the paper's keep 0.8 (Figure 15).

    `residual_scale` replaces every residual block's scale (section 3.3); None keeps the spec's.
    """

    def __init__(self, spec: Sequence, residual_scale: float | None = None, **kwargs):
        if residual_scale is not None:
            spec = [row._replace(scale=residual_scale) if isinstance(row, Stage) and row.scale is not None else row
                    for row in spec]
        super().__init__(spec, **kwargs)


_CFG = {"input_size": 299, "min_input_size": 75, "mean": INCEPTION_MEAN, "std": INCEPTION_STD,
        "interpolation": "bicubic", "crop_pct": 0.875}  # TF-slim's eval crop; timm evaluates IR-v2 at 0.8975


@register_model(ModelCfg(**_CFG, paper=PAPER + "; Figures 10-15"))
def inception_resnet_v1(**kwargs) -> InceptionResNet:
    """Inception-ResNet-v1 as the paper draws it (no public weights): 22,756,328 parameters at 1000 classes."""
    return InceptionResNet(INCEPTION_RESNET_V1, **kwargs)


@register_model(ModelCfg(**_CFG, paper=PAPER + "; TF-slim layout (timm)"))
def inception_resnet_v2(**kwargs) -> InceptionResNet:
    """Inception-ResNet-v2, TF-slim's layout: timm's `inception_resnet_v2` weights load through its key table
    (`weights/key_tables.py`)."""
    return InceptionResNet(INCEPTION_RESNET_V2, **kwargs)


@register_model(ModelCfg(input_size=32, min_input_size=28, mean=INCEPTION_MEAN, std=INCEPTION_STD, crop_pct=1.0,
                         paper=PAPER + "; Figures 16-19 blocks in a network for 28-32 px images"))
def inception_resnet_small(width: float = 1.0, **kwargs) -> InceptionResNet:
    """A small Inception-ResNet for 28-32 px images (see `INCEPTION_RESNET_SMALL`); `width` scales every layer."""
    return InceptionResNet(scale_spec(INCEPTION_RESNET_SMALL, width), **kwargs)

