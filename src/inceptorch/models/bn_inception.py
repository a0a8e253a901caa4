"""BN-Inception (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
Covariate Shift", arXiv:1502.03167).

GoogLeNet with batch normalization after every convolution, each 5x5 conv replaced by two consecutive 3x3 convs
(the "double #3x3" columns), average pooling in most pool branches, and two stride-2 modules (3c, 4e) in place of
the stand-alone max pools between stages: the table of the paper's Figure 5, as data below.

Parameter count. The paper says 13.6M parameters; the table as printed, with BN and a 1000-way classifier, builds
to 11.30M (11.3M is also what the widely used Caffe port, from which most pretrained weights come, reports), and
2.05G multiply-adds at 224x224. The paper does not show its count, so the 2.3M gap cannot be attributed exactly;
what is certain is that the printed table is not self-consistent either: 4c and 4d print 576 output channels,
but their columns sum to 160+160+160+128 = 608 and 96+192+192+128 = 608, and 4e's pass-through then gives 1056,
not the 1024 printed. We follow the columns (as the Caffe port does), so 4c/4d output 608 channels and 4e 1056.
"""
from __future__ import annotations

from typing import NamedTuple

from torch import nn

from ._registry import ModelCfg, register_model
from ._rows import Conv, Pool, for_small_input, make_stage
from .googlenet import AuxHead, GoogLeNetCfg, init_weights
from .layers import Branches, ConvNormAct, InceptionNet, scale_width

PAPER = "Ioffe & Szegedy 2015, Batch Normalization (arXiv:1502.03167), Figure 5"


class Mod(NamedTuple):
    """One Inception row of Figure 5 of arXiv:1502.03167."""

    name: str
    c1x1: int        # 0: no 1x1 branch (the stride-2 modules 3c and 4e)
    c3x3_red: int
    c3x3: int
    d3x3_red: int    # "double #3x3 reduce"
    d3x3: int        # both 3x3 convs of the double branch (they replace GoogLeNet's 5x5)
    pool: str        # "avg" or "max" ("Pool +proj" column)
    pool_proj: int   # 0: the pooled input passes through unprojected (3c, 4e)
    stride: int = 1  # 2 for 3c and 4e: the 3x3 convs and the pool run with stride 2


# Figure 5 of arXiv:1502.03167. In-channels are carried forward from the previous row.
BN_INCEPTION = (
    #    name           out  kernel stride padding                          # output at 224
    Conv("conv1",        64, 7, 2, 3, stem=True),                           # 112x112x64
    Pool("maxpool1", padding=1, stem=True),                                 # 56x56x64
    Conv("conv2",        64, 1),                                            # 3x3 reduce of the stage-2 row
    Conv("conv3",       192, 3, 1, 1),                                      # 56x56x192
    Pool("maxpool2", padding=1),                                            # 28x28x192
    #    name          1x1  3x3r  3x3  d3x3r d3x3 pool  proj stride
    Mod("inception3a",  64,   64,  64,   64,  96, "avg",  32),              # 28x28x256
    Mod("inception3b",  64,   64,  96,   64,  96, "avg",  64),              # 28x28x320
    Mod("inception3c",   0,  128, 160,   64,  96, "max",   0, 2),           # 14x14x576 (printed 28x28: the input)
    Mod("inception4a", 224,   64,  96,   96, 128, "avg", 128),              # 14x14x576
    Mod("inception4b", 192,   96, 128,   96, 128, "avg", 128),              # 14x14x576
    Mod("inception4c", 160,  128, 160,  128, 160, "avg", 128),              # 14x14x608 (printed 576)
    Mod("inception4d",  96,  128, 192,  160, 192, "avg", 128),              # 14x14x608 (printed 576)
    Mod("inception4e",   0,  128, 192,  192, 256, "max",   0, 2),           # 7x7x1056 (printed 14x14x1024)
    Mod("inception5a", 352,  192, 320,  160, 224, "avg", 128),              # 7x7x1024
    Mod("inception5b", 352,  192, 320,  192, 224, "max", 128),              # 7x7x1024
)
# The paper's appendix says the network, "other than the top softmax layer, has no fully-connected layers", which
# leaves no room for GoogLeNet's auxiliary heads (each has two); heads at GoogLeNet's taps are optional, off.
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}
FEATURE_TAPS = ("conv1", "conv3", "inception3b", "inception4d", "inception5b")
_AUX_CFG = GoogLeNetCfg(norm=True, lrn=False, branch3_kernel=3, pool_ceil=False, aux_pool="paper", drop_rate=0.0,
                        init="trunc_normal")
BN_EPS = 1e-5  # the Caffe port's BatchNorm epsilon


class BNInceptionBlock(Branches):
    """An Inception module of Figure 5: 1x1, 3x3 (reduced), double 3x3 (reduced) and pool (+1x1 projection).

    With `stride=2` (3c, 4e) the 1x1 branch is absent, the last conv of each 3x3 branch and the max pool run with
    stride 2, and the pooled input is concatenated without projection.
    """

    def __init__(self, in_chs: int, row: Mod, width: float = 1.0):
        super().__init__()
        w = {f: scale_width(getattr(row, f), width) if getattr(row, f) else 0
             for f in ("c1x1", "c3x3_red", "c3x3", "d3x3_red", "d3x3", "pool_proj")}

        def conv(i, o, k, s=1):
            return ConvNormAct(i, o, k, s, bn_eps=BN_EPS)

        s = row.stride
        if w["c1x1"]:
            self.branch1x1 = conv(in_chs, w["c1x1"], 1)
        self.branch3x3 = nn.Sequential(conv(in_chs, w["c3x3_red"], 1), conv(w["c3x3_red"], w["c3x3"], 3, s))
        self.branch3x3dbl = nn.Sequential(conv(in_chs, w["d3x3_red"], 1), conv(w["d3x3_red"], w["d3x3"], 3),
                                          conv(w["d3x3"], w["d3x3"], 3, s))
        # Pad-1 pools keep the pool branch the same size as the stride-2 convs for odd inputs too.
        pool = nn.AvgPool2d(3, s, padding=1) if row.pool == "avg" else nn.MaxPool2d(3, s, padding=1)
        self.branch_pool = nn.Sequential(pool, conv(in_chs, w["pool_proj"], 1)) if w["pool_proj"] else pool
        self.in_chs, self.row, self.stride = in_chs, row, s

    @property
    def out_channels(self) -> int:
        return concat_channels(self, self.in_chs)

    def table_columns(self) -> dict[str, int]:
        r = self.row
        return {"#1x1": r.c1x1, "#3x3 reduce": r.c3x3_red, "#3x3": r.c3x3, "double #3x3 reduce": r.d3x3_red,
                "double #3x3": r.d3x3, "pool proj": r.pool_proj}


def concat_channels(block: Branches, in_chs: int) -> int:
    """Output channels of a `Branches` block in which a branch without convs (a bare pool) passes its input on."""
    total = 0
    for branch in block.children():
        convs = [m for m in branch.modules() if isinstance(m, nn.Conv2d)]
        total += convs[-1].out_channels if convs else in_chs
    return total


class BNInception(InceptionNet):
    """BN-Inception built from `BN_INCEPTION` rows.

    `small_input=True` builds the `stem` rows (the 7x7/2 conv and the first pool) as one 3x3/1 conv (total stride 8
    instead of 32), so 28-64 px images keep a 4x4 grid at stage 5. `drop_rate` defaults to 0: the paper removes
    dropout (4.2.1).
    """

    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False, drop_rate: float = 0.0,
                 width: float = 1.0, small_input: bool = False, spec: tuple = BN_INCEPTION):
        super().__init__()
        self.num_classes = num_classes
        self.stage_names, self.aux_taps, self.feature_info = [], dict(AUX_TAPS), []
        chs, reduction = in_chans, 1

        def block(row, in_chs):
            return BNInceptionBlock(in_chs, row, width)

        for row in for_small_input(spec) if small_input else spec:
            module, chs, stride = make_stage(row, chs, block, width, bn_eps=BN_EPS)
            reduction *= stride
            self.add_stage(row.name, module, chs, reduction, feature=row.name in FEATURE_TAPS)
            if row.name in AUX_TAPS:
                self.add_module(AUX_TAPS[row.name], AuxHead(chs, num_classes, _AUX_CFG, width) if aux_logits else None)
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # the 7x7/1 average pool of Figure 5 at 224
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        if small_input:
            self.cfg_overrides = {"input_size": 32, "min_input_size": 28, "crop_pct": 1.0}
        init_weights(self)


@register_model(ModelCfg(input_size=224, min_input_size=80, paper=PAPER))  # 80: the aux heads' 5x5/3 pool
def bn_inception(**kwargs) -> BNInception:
    """BN-Inception as in Figure 5 of arXiv:1502.03167 (11.3M parameters, 2.05G multiply-adds at 224)."""
    return BNInception(**kwargs)
