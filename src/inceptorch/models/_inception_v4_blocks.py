"""What Inception-v4 and Inception-ResNet v1/v2 share (Szegedy et al., arXiv:1602.07261).

- the `Stage` row (a block class, its widths, how many) and `StackedInception`, the trunk built from `Stage` rows
  and the family's shared `Conv` and `Pool` rows (`_rows.py`);
- Table 1 of the paper, the Reduction-A widths k/l/m/n of all three networks, as data (`REDUCTION_A`);
- the blocks more than one network uses: `ReductionA` (Figure 7), `InceptionA` (Figure 4; TF-slim's Mixed_5b of
  Inception-ResNet-v2 is the same module with a 5x5 middle branch) and the v4 stem's filter concatenations.

Padding follows TF-slim, whose weights timm ports: convolutions marked "V" in the paper's figures are VALID
(padding 0), the others SAME. Grid reductions are 3x3 stride-2 VALID convolutions and max pools.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from torch import nn

from ._rows import make_stage
from .layers import Branches, ConvNormAct, InceptionNet, conv_chain

PAPER = "Szegedy et al. 2016, Inception-v4, Inception-ResNet and the Impact of Residual Connections (arXiv:1602.07261)"
BN_EPS = 1e-3  # TF-slim's batch_norm epsilon, kept by timm's ports (conv_chain's default)


class ReductionAWidths(NamedTuple):
    """One row of Table 1 (arXiv:1602.07261): filter counts of the Reduction-A module (Figure 7)."""

    k: int  # 1x1 reduction of the double-3x3 branch
    l: int  # noqa: E741 - Table 1's name; the branch's middle 3x3
    m: int  # the branch's last 3x3, stride 2
    n: int  # the single 3x3 stride-2 conv


# Table 1 of arXiv:1602.07261: the one Reduction-A module serves all three networks with these widths.
REDUCTION_A = {
    #                                          k    l    m    n
    "inception_v4":        ReductionAWidths(192, 224, 256, 384),
    "inception_resnet_v1": ReductionAWidths(192, 192, 256, 384),
    "inception_resnet_v2": ReductionAWidths(256, 256, 384, 384),
}


def max_pool_valid() -> nn.MaxPool2d:
    """3x3 stride-2 VALID max pool, every grid reduction's pooling branch."""
    return nn.MaxPool2d(3, stride=2)


def avg_pool_same() -> nn.AvgPool2d:
    """3x3 stride-1 SAME average pool of the pooling branches. TF averages over the valid pixels only at the border,
    hence count_include_pad=False (timm does the same; with the default the border outputs differ)."""
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class StemPoolConvWidths(NamedTuple):
    conv: int          # filters of the 3x3 stride-2 VALID conv
    pool_first: bool   # concatenation order, TF-slim's: Mixed_3a puts the pool first, Mixed_5a the conv


class StemPoolConv(Branches):
    """A stem filter concat of Figure 3: 3x3/2 max pool beside a 3x3/2 VALID conv (73x73x160, 35x35x384)."""

    stride = 2

    def __init__(self, in_chs: int, w: StemPoolConvWidths):
        super().__init__()
        pool, conv = max_pool_valid(), ConvNormAct(in_chs, w.conv, 3, stride=2, padding=0, bn_eps=BN_EPS)
        for name, module in (("branch_pool", pool), ("branch3x3", conv))[::1 if w.pool_first else -1]:
            self.add_module(name, module)

    @property
    def out_channels(self) -> int:
        return self.branch3x3.out_channels + self.branch3x3.conv.in_channels  # the pool keeps its input's channels


class StemMixedWidths(NamedTuple):
    c3x3: tuple[int, int]            # 1x1, 3x3 VALID
    c7x7: tuple[int, int, int, int]  # 1x1, 1x7, 7x1, 3x3 VALID


class StemMixed(Branches):
    """The middle stem filter concat of Figure 3 (71x71x192). TF-slim, whose weights we load, runs the 1x7 conv
    before the 7x1 one; the figure draws the opposite order."""

    stride = 1

    def __init__(self, in_chs: int, w: StemMixedWidths):
        super().__init__()
        self.branch3x3 = conv_chain(in_chs, w.c3x3, (1, 3), valid=True)
        self.branch7x7 = conv_chain(in_chs, w.c7x7, (1, (1, 7), (7, 1), 3), valid=True)


class InceptionAWidths(NamedTuple):
    c1x1: int
    c3x3: tuple[int, int]           # 1x1 reduce, then the `kernel` conv
    c3x3dbl: tuple[int, int, int]   # 1x1 reduce, 3x3, 3x3
    pool_proj: int
    kernel: int = 3                 # 5 in TF-slim's Mixed_5b (Inception-ResNet-v2's stem); the branch is then branch5x5


class InceptionA(Branches):
    """The 35x35 Inception-A module of Inception-v4 (Figure 4)."""

    stride = 1

    def __init__(self, in_chs: int, w: InceptionAWidths):
        super().__init__()
        self.branch1x1 = ConvNormAct(in_chs, w.c1x1, 1, bn_eps=BN_EPS)
        self.add_module(f"branch{w.kernel}x{w.kernel}", conv_chain(in_chs, w.c3x3, (1, w.kernel)))
        self.branch3x3dbl = conv_chain(in_chs, w.c3x3dbl, (1, 3, 3))
        self.branch_pool = nn.Sequential(avg_pool_same(), ConvNormAct(in_chs, w.pool_proj, 1, bn_eps=BN_EPS))


class ReductionA(Branches):
    """35x35 -> 17x17 grid reduction (Figure 7), widths from Table 1 (`REDUCTION_A`). Out: n + m + in channels."""

    stride = 2

    def __init__(self, in_chs: int, w: ReductionAWidths):
        super().__init__()
        self.in_chs = in_chs
        self.branch3x3 = ConvNormAct(in_chs, w.n, 3, stride=2, padding=0, bn_eps=BN_EPS)
        self.branch3x3dbl = conv_chain(in_chs, (w.k, w.l, w.m), (1, 3, 3), stride=2, valid=True)
        self.branch_pool = max_pool_valid()

    @property
    def out_channels(self) -> int:
        return self.branch3x3.out_channels + self.branch3x3dbl[-1].out_channels + self.in_chs


# ---- the spec rows ------------------------------------------------------------------------------------------------

class Stage(NamedTuple):
    """`count` blocks of one class with one set of widths, named `name_1`.. (or `name` when count is 1)."""

    name: str
    block: type[nn.Module]
    widths: NamedTuple
    count: int = 1
    scale: float | None = None  # residual scaling (section 3.3) of Inception-ResNet blocks; None for the others
    act: bool = True            # ReLU after the residual addition (TF-slim leaves it out of the last Block8)


def stage_rows(spec: Sequence) -> list[tuple[str, object]]:
    """(stage name, row) for every trunk module a spec builds, in forward order."""
    out = []
    for row in spec:
        if isinstance(row, Stage) and row.count > 1:
            out += [(f"{row.name}_{i + 1}", row) for i in range(row.count)]
        else:
            out.append((row.name, row))
    return out


class StackedInception(InceptionNet):
    """A trunk of spec rows run in order, global average pool, dropout, linear classifier.

    `feature_info` lists the last stage at each stride (2, 4, 8, 16, 32). These networks have no auxiliary heads
    (Figures 9 and 15 of the paper, TF-slim, timm): `aux_logits=True` is refused and `forward_train` returns
    empty `aux_logits`.
    """

    def __init__(self, spec: Sequence, num_classes: int = 1000, in_chans: int = 3, drop_rate: float | None = None,
                 aux_logits: bool = False):
        super().__init__()
        if aux_logits:
            raise ValueError(f"{type(self).__name__} has no auxiliary classifiers (arXiv:1602.07261 Figures 9, 15)")
        drop_rate = 0.2 if drop_rate is None else drop_rate  # "Dropout (keep 0.8)", Figures 9 and 15
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.stage_names, self.aux_taps = [], {}
        chs, reduction, last_at = in_chans, 1, {}
        for name, row in stage_rows(spec):
            module, chs, stride = make_stage(row, chs, _block, bn_eps=BN_EPS)
            reduction *= stride
            self.add_module(name, module)
            self.stage_names.append(name)
            last_at[reduction] = {"num_chs": chs, "reduction": reduction, "module": name}
        self.feature_info = [info for r, info in sorted(last_at.items()) if r > 1]
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the paper's 8x8 average pool at 299 input
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()


def _block(row: Stage, in_chs: int) -> nn.Module:
    """A `Stage` row's block; Inception-ResNet's residual blocks also take their scale and final activation."""
    kwargs = {} if row.scale is None else {"scale": row.scale, "act": row.act}
    return row.block(in_chs, row.widths, **kwargs)
