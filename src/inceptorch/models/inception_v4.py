"""Inception-v4 (Szegedy et al., arXiv:1602.07261, Figures 3-9), in the layout of TF-slim's release.

The spec below is Figure 9 as data: the stem of Figure 3, 4 x Inception-A, Reduction-A (Table 1 widths),
7 x Inception-B, Reduction-B, 3 x Inception-C, average pool, dropout (keep 0.8), linear. Where the figures and the
TF-slim weights disagree (the order of 1x7/7x1 convolutions in the stem and in Inception-C), we follow TF-slim so
that timm's `inception_v4` weights load: 42,679,816 parameters at 1000 classes, 12.28 GMACs at 299.
"""
from __future__ import annotations

from typing import NamedTuple

from torch import nn

from ._inception_v4_blocks import (
    BN_EPS,
    PAPER,
    REDUCTION_A,
    InceptionA,
    InceptionAWidths,
    ReductionA,
    StackedInception,
    Stage,
    StemMixed,
    StemMixedWidths,
    StemPoolConv,
    StemPoolConvWidths,
    avg_pool_same,
    conv_chain,
    max_pool_valid,
)
from ._registry import INCEPTION_MEAN, INCEPTION_STD, ModelCfg, register_model
from ._rows import Conv
from .layers import Branches, ConvNormAct, Split, SplitWidths


class InceptionBWidths(NamedTuple):
    c1x1: int
    c7x7: tuple[int, int, int]                # 1x1, 1x7, 7x1
    c7x7dbl: tuple[int, int, int, int, int]   # 1x1, 7x1, 1x7, 7x1, 1x7
    pool_proj: int


class InceptionB(Branches):
    """The 17x17 Inception-B module (Figure 5)."""

    stride = 1

    def __init__(self, in_chs: int, w: InceptionBWidths):
        super().__init__()
        self.branch1x1 = ConvNormAct(in_chs, w.c1x1, 1, bn_eps=BN_EPS)
        self.branch7x7 = conv_chain(in_chs, w.c7x7, (1, (1, 7), (7, 1)))
        self.branch7x7dbl = conv_chain(in_chs, w.c7x7dbl, (1, (7, 1), (1, 7), (7, 1), (1, 7)))
        self.branch_pool = nn.Sequential(avg_pool_same(), ConvNormAct(in_chs, w.pool_proj, 1, bn_eps=BN_EPS))


class ReductionBWidths(NamedTuple):
    c3x3: tuple[int, int]              # 1x1, 3x3/2 VALID
    c7x7x3: tuple[int, int, int, int]  # 1x1, 1x7, 7x1, 3x3/2 VALID


class ReductionB(Branches):
    """Inception-v4's 17x17 -> 8x8 grid reduction (Figure 8). Out: both conv branches + the input's channels."""

    stride = 2

    def __init__(self, in_chs: int, w: ReductionBWidths):
        super().__init__()
        self.in_chs = in_chs
        self.branch3x3 = conv_chain(in_chs, w.c3x3, (1, 3), stride=2, valid=True)
        self.branch7x7x3 = conv_chain(in_chs, w.c7x7x3, (1, (1, 7), (7, 1), 3), stride=2, valid=True)
        self.branch_pool = max_pool_valid()

    @property
    def out_channels(self) -> int:
        return self.branch3x3[-1].out_channels + self.branch7x7x3[-1].out_channels + self.in_chs


class InceptionCWidths(NamedTuple):
    c1x1: int
    c3x3: tuple[int, SplitWidths]                 # 1x1, then 1x3 | 3x1
    c3x3dbl: tuple[int, int, int, SplitWidths]    # 1x1, 3x1, 1x3 (TF-slim's order), then 1x3 | 3x1
    pool_proj: int


class InceptionC(Branches):
    """The 8x8 Inception-C module (Figure 6), expanded filter banks: two branches end in a 1x3 | 3x1 split."""

    stride = 1

    def __init__(self, in_chs: int, w: InceptionCWidths):
        super().__init__()
        *chain3x3, split3x3 = w.c3x3
        *chaindbl, splitdbl = w.c3x3dbl
        self.branch1x1 = ConvNormAct(in_chs, w.c1x1, 1, bn_eps=BN_EPS)
        self.branch3x3 = conv_chain(in_chs, chain3x3, (1,))
        self.branch3x3.append(Split(chain3x3[-1], split3x3))
        self.branch3x3dbl = conv_chain(in_chs, chaindbl, (1, (3, 1), (1, 3)))
        self.branch3x3dbl.append(Split(chaindbl[-1], splitdbl))
        self.branch_pool = nn.Sequential(avg_pool_same(), ConvNormAct(in_chs, w.pool_proj, 1, bn_eps=BN_EPS))

    @property
    def out_channels(self) -> int:
        return sum(_split_or_conv_out(branch) for branch in self.children())


def _split_or_conv_out(branch: nn.Module) -> int:
    last = branch if isinstance(branch, ConvNormAct) else branch[-1]  # a conv unit, or a chain ending in one or a Split
    return last.out_channels


# Figure 9 of arXiv:1602.07261 with Figures 3-8's filter counts.
INCEPTION_V4 = (
    #     name       out kernel stride padding                                           # output at 299
    Conv("conv1",     32, 3, 2),                                                          # 149x149x32
    Conv("conv2",     32, 3),                                                             # 147x147x32
    Conv("conv3",     64, 3, 1, 1),                                                       # 147x147x64
    Stage("mixed3a", StemPoolConv, StemPoolConvWidths(conv=96, pool_first=True)),        # 73x73x160
    Stage("mixed4a", StemMixed, StemMixedWidths(c3x3=(64, 96), c7x7=(64, 64, 64, 96))),  # 71x71x192
    Stage("mixed5a", StemPoolConv, StemPoolConvWidths(conv=192, pool_first=False)),      # 35x35x384
    Stage("inception_a", InceptionA, InceptionAWidths(c1x1=96, c3x3=(64, 96), c3x3dbl=(64, 96, 96), pool_proj=96),
          count=4),                                                                       # 35x35x384
    Stage("reduction_a", ReductionA, REDUCTION_A["inception_v4"]),                       # 17x17x1024
    Stage("inception_b", InceptionB, InceptionBWidths(c1x1=384, c7x7=(192, 224, 256),
                                                      c7x7dbl=(192, 192, 224, 224, 256), pool_proj=128),
          count=7),                                                                       # 17x17x1024
    Stage("reduction_b", ReductionB, ReductionBWidths(c3x3=(192, 192), c7x7x3=(256, 256, 320, 320))),  # 8x8x1536
    Stage("inception_c", InceptionC, InceptionCWidths(c1x1=256, c3x3=(384, SplitWidths(256, 256)),
                                                      c3x3dbl=(384, 448, 512, SplitWidths(256, 256)),
                                                      pool_proj=256),
          count=3),                                                                       # 8x8x1536
)


class InceptionV4(StackedInception):
    """Inception-v4 from a spec (default `INCEPTION_V4`); `drop_rate` 0.2 is the paper's keep 0.8."""

    def __init__(self, spec=INCEPTION_V4, **kwargs):
        super().__init__(spec, **kwargs)


@register_model(ModelCfg(input_size=299, min_input_size=75, mean=INCEPTION_MEAN, std=INCEPTION_STD,
                         interpolation="bicubic", crop_pct=0.875, paper=PAPER + "; TF-slim layout (timm)"))
def inception_v4(**kwargs) -> InceptionV4:
    """Inception-v4 (Figure 9), TF-slim's layout: timm's `inception_v4` weights load through its key table
    (`weights/key_tables.py`)."""
    return InceptionV4(**kwargs)

