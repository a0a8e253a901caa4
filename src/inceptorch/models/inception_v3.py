"""Inception v2 and v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", arXiv:1512.00567).

Both networks are one trunk of named stages built from a spec table (rows carry the widths; the block classes carry
only the topology of the paper's figures, each branch one submodule):
- `inception_v3`: TF-slim's Inception-v3, the network of torchvision's and timm's ports; their weight files, whose
  keys put every conv of a module at one level, load through their key table (`weights/key_tables.py`) and the
  outputs agree (tests/test_inception_v3.py);
- `inception_v2`: the network of the paper's Table 1, with widths chosen where the paper gives none (see `V2`).

The block classes are named after the figures that draw them (`InceptionFig5`, `InceptionFig6`, `InceptionFig7`,
`ReductionFig10`): this paper names its modules by figure only, and the letters of torchvision's port (InceptionA ..
InceptionE) are not the Inception-v4 paper's Inception-A .. C (`_inception_v4_blocks.py`, `inception_v4.py`).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import ModelCfg, register_model
from ._rows import Conv, Pool, make_stage
from .layers import Branches, ConvNormAct, InceptionNet, Split, SplitWidths, conv_chain, scale_width

PAPER = "Szegedy et al. 2015, Rethinking the Inception Architecture for Computer Vision (arXiv:1512.00567)"
N = 7  # the n of the n x 1 / 1 x n factorization on the 17x17 grid (paper section 6: "we have chosen n = 7")


class Inc35(NamedTuple):
    """35x35 module (Figure 5): 1x1 | 1x1 -> kxk | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""

    name: str
    c1x1: int
    cmid_red: int
    cmid: int
    kmid: int  # 3 in Figure 5; TF-slim's Inception-v3 (the source of every public v3 weight) keeps a 5x5 here
    c3x3dbl_red: int
    c3x3dbl: int
    pool_proj: int


class Red35(NamedTuple):
    """35x35 -> 17x17 grid reduction (Figure 10): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3x3/2."""

    name: str
    c3x3: int
    c3x3dbl_red: int
    c3x3dbl: int


class Inc17(NamedTuple):
    """17x17 module (Figure 6, n = 7): 1x1 | 1x1 -> 1x7 -> 7x1 | 1x1 -> (7x1 -> 1x7) x 2 | avg pool -> 1x1."""

    name: str
    c1x1: int
    c7x7_red: int  # also the width inside both factorized branches; their last conv has c7x7 / c7x7dbl
    c7x7: int
    c7x7dbl_red: int
    c7x7dbl: int
    pool_proj: int


class Red17(NamedTuple):
    """17x17 -> 8x8 grid reduction (Figure 10 variant): 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool."""

    name: str
    c3x3_red: int
    c3x3: int
    c7x7x3_red: int
    c7x7x3: int


class Inc8(NamedTuple):
    """8x8 module with expanded filter banks (Figure 7): 1x1 | 1x1 -> [1x3, 3x1] | 1x1 -> 3x3 -> [1x3, 3x1] | pool."""

    name: str
    c1x1: int
    c3x3_red: int
    c3x3: int  # each of the two split outputs
    c3x3dbl_red: int
    c3x3dbl: int  # each of the two split outputs
    pool_proj: int


class Aux(NamedTuple):
    """Auxiliary head widths: 1x1 conv, then a 5x5 conv over the 5x5 pooled map (TF-slim's AuxLogits)."""

    conv0: int
    conv1: int


Row = Conv | Pool | Inc35 | Red35 | Inc17 | Red17 | Inc8

# TF-slim's Inception-v3 (= torchvision's / timm's), names and widths. The paper's Table 1 differs in the stem (see V2).
V3 = (
    #    name                out  k  stride pad                                       # output at 299
    Conv("Conv2d_1a_3x3",     32, 3, 2),                                             # 149x149x32
    Conv("Conv2d_2a_3x3",     32, 3),                                                # 147x147x32
    Conv("Conv2d_2b_3x3",     64, 3, padding=1),                                     # 147x147x64
    Pool("maxpool1"),                                                                # 73x73x64
    Conv("Conv2d_3b_1x1",     80, 1),                                                # 73x73x80
    Conv("Conv2d_4a_3x3",    192, 3),                                                # 71x71x192
    Pool("maxpool2"),                                                                # 35x35x192
    #     name       1x1  mid_red mid  k  3x3dbl_red 3x3dbl pool
    Inc35("Mixed_5b", 64,   48,   64,  5,    64,      96,   32),                     # 35x35x256
    Inc35("Mixed_5c", 64,   48,   64,  5,    64,      96,   64),                     # 35x35x288
    Inc35("Mixed_5d", 64,   48,   64,  5,    64,      96,   64),                     # 35x35x288
    #     name       3x3  3x3dbl_red 3x3dbl
    Red35("Mixed_6a", 384,    64,     96),                                           # 17x17x768
    #     name       1x1  7x7_red 7x7  7x7dbl_red 7x7dbl pool
    Inc17("Mixed_6b", 192,  128,  192,    128,     192,  192),                       # 17x17x768
    Inc17("Mixed_6c", 192,  160,  192,    160,     192,  192),                       # 17x17x768
    Inc17("Mixed_6d", 192,  160,  192,    160,     192,  192),                       # 17x17x768
    Inc17("Mixed_6e", 192,  192,  192,    192,     192,  192),                       # 17x17x768, aux head
    #     name       3x3_red 3x3 7x7x3_red 7x7x3
    Red17("Mixed_7a", 192,   320,   192,    192),                                    # 8x8x1280
    #    name        1x1  3x3_red 3x3  3x3dbl_red 3x3dbl pool
    Inc8("Mixed_7b", 320,   384,  384,    448,     384,  192),                       # 8x8x2048
    Inc8("Mixed_7c", 320,   384,  384,    448,     384,  192),                       # 8x8x2048
)

# Table 1 of arXiv:1512.00567. The paper gives the stem and the module inputs (35x35x288, 17x17x768, 8x8x1280,
# 8x8x2048) but no per-branch widths; where it is silent we take TF-slim's v3 widths, which produce exactly those
# sizes: Figure 5 modules of 64 + 64 + 96 + 64 = 288, v3's reductions (288 -> 768 -> 1280), Figure 6 modules whose
# inner width grows 128 -> 160 -> 192 like v3's (one more 160 module for Table 1's five), v3's Figure 7 modules.
V2 = (
    Conv("Conv2d_1a_3x3",     32, 3, 2),                                             # 149x149x32
    Conv("Conv2d_2a_3x3",     32, 3),                                                # 147x147x32
    Conv("Conv2d_2b_3x3",     64, 3, padding=1),                                     # 147x147x64 ("conv padded")
    Pool("maxpool1"),                                                                # 73x73x64
    Conv("Conv2d_3b_3x3",     80, 3),                                                # 71x71x80
    Conv("Conv2d_4a_3x3",    192, 3, 2),                                             # 35x35x192
    Conv("Conv2d_4b_3x3",    288, 3, padding=1),                                     # 35x35x288
    Inc35("Mixed_5b", 64,   48,   64,  3,    64,      96,   64),                     # 35x35x288, Figure 5
    Inc35("Mixed_5c", 64,   48,   64,  3,    64,      96,   64),                     # 35x35x288
    Inc35("Mixed_5d", 64,   48,   64,  3,    64,      96,   64),                     # 35x35x288
    Red35("Mixed_6a", 384,    64,     96),                                           # 17x17x768, Figure 10
    Inc17("Mixed_6b", 192,  128,  192,    128,     192,  192),                       # 17x17x768, Figure 6
    Inc17("Mixed_6c", 192,  160,  192,    160,     192,  192),                       # 17x17x768
    Inc17("Mixed_6d", 192,  160,  192,    160,     192,  192),                       # 17x17x768
    Inc17("Mixed_6e", 192,  160,  192,    160,     192,  192),                       # 17x17x768
    Inc17("Mixed_6f", 192,  192,  192,    192,     192,  192),                       # 17x17x768, optional aux head
    Red17("Mixed_7a", 192,   320,   192,    192),                                    # 8x8x1280
    Inc8("Mixed_7b", 320,   384,  384,    448,     384,  192),                       # 8x8x2048, Figure 7
    Inc8("Mixed_7c", 320,   384,  384,    448,     384,  192),                       # 8x8x2048
)
AUX = Aux(conv0=128, conv1=768)

def _conv(in_chs: int, out_chs: int, kernel: int | tuple[int, int], stride: int = 1, padding: int | None = None):
    return ConvNormAct(in_chs, out_chs, kernel, stride, padding=padding, bn_eps=1e-3)  # TF-slim's BN epsilon


def _widths(row: NamedTuple, width: float) -> NamedTuple:
    """The row with every channel column scaled by the width multiplier (kernel columns untouched)."""
    return row._replace(**{f: scale_width(getattr(row, f), width) for f in row._fields if f.startswith(("c", "pool"))})


def _avg_pool() -> nn.AvgPool2d:
    """3x3/1 average pool of the pool branches. It counts the zero padding at the borders (torch's default, and
    torchvision's and timm's ports); TF-slim's SAME pool excludes it. Kept for output parity with those ports."""
    return nn.AvgPool2d(3, stride=1, padding=1)


class InceptionFig5(Branches):
    """35x35 module, Figure 5: the 5x5 of Inception-v1 factorized into two 3x3 convs (branch3x3dbl)."""

    def __init__(self, in_chs: int, row: Inc35, width: float = 1.0):
        super().__init__()
        w = _widths(row, width)
        self.branch1x1 = _conv(in_chs, w.c1x1, 1)
        self.add_module(f"branch{row.kmid}x{row.kmid}", conv_chain(in_chs, (w.cmid_red, w.cmid), (1, row.kmid)))
        self.branch3x3dbl = conv_chain(in_chs, (w.c3x3dbl_red, w.c3x3dbl, w.c3x3dbl), (1, 3, 3))
        self.branch_pool = nn.Sequential(_avg_pool(), _conv(in_chs, w.pool_proj, 1))


class ReductionFig10(Branches):
    """35x35 -> 17x17, Figure 10: stride-2 conv branches beside a stride-2 pool, concatenated (no bottleneck)."""

    stride = 2

    def __init__(self, in_chs: int, row: Red35, width: float = 1.0):
        super().__init__()
        w = _widths(row, width)
        self.in_chs = in_chs
        self.branch3x3 = _conv(in_chs, w.c3x3, 3, stride=2, padding=0)
        self.branch3x3dbl = conv_chain(in_chs, (w.c3x3dbl_red, w.c3x3dbl, w.c3x3dbl), (1, 3, 3), stride=2, valid=True)
        self.branch_pool = nn.MaxPool2d(3, stride=2)

    @property
    def out_channels(self) -> int:
        # The pool keeps its input's channels.
        return self.branch3x3.out_channels + self.branch3x3dbl[-1].out_channels + self.in_chs


class InceptionFig6(Branches):
    """17x17 module, Figure 6 with n = 7: each n x n conv factorized into a 1 x n and an n x 1 conv.

    The double branch starts with 7x1 (TF-slim's order, kept for weight compatibility); Figure 6 draws 1 x n first.
    """

    def __init__(self, in_chs: int, row: Inc17, width: float = 1.0):
        super().__init__()
        w, n = _widths(row, width), N
        self.branch1x1 = _conv(in_chs, w.c1x1, 1)
        self.add_module(f"branch{n}x{n}", conv_chain(in_chs, (w.c7x7_red, w.c7x7_red, w.c7x7), (1, (1, n), (n, 1))))
        self.add_module(f"branch{n}x{n}dbl", conv_chain(in_chs, (w.c7x7dbl_red,) * 4 + (w.c7x7dbl,),
                                                        (1, (n, 1), (1, n), (n, 1), (1, n))))
        self.branch_pool = nn.Sequential(_avg_pool(), _conv(in_chs, w.pool_proj, 1))


class ReductionFig10Factorized(Branches):
    """17x17 -> 8x8, a variation of Figure 10 (Table 1's note) whose tower has Figure 6's factorized 7x7:
    1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3x3/2."""

    stride = 2

    def __init__(self, in_chs: int, row: Red17, width: float = 1.0):
        super().__init__()
        w, n = _widths(row, width), N
        self.in_chs = in_chs
        self.branch3x3 = conv_chain(in_chs, (w.c3x3_red, w.c3x3), (1, 3), stride=2, valid=True)
        self.branch7x7x3 = conv_chain(in_chs, (w.c7x7x3_red,) * 3 + (w.c7x7x3,), (1, (1, n), (n, 1), 3), stride=2,
                                      valid=True)
        self.branch_pool = nn.MaxPool2d(3, stride=2)

    @property
    def out_channels(self) -> int:
        return self.branch3x3[-1].out_channels + self.branch7x7x3[-1].out_channels + self.in_chs


class InceptionFig7(Branches):
    """8x8 module with expanded filter banks, Figure 7: the last 3x3 of two branches split into parallel 1x3 and 3x1
    convs whose outputs are concatenated, widening the coarsest grid's representation (design principle 2)."""

    def __init__(self, in_chs: int, row: Inc8, width: float = 1.0):
        super().__init__()
        w = _widths(row, width)
        self.branch1x1 = _conv(in_chs, w.c1x1, 1)
        self.branch3x3 = nn.Sequential(_conv(in_chs, w.c3x3_red, 1), Split(w.c3x3_red, SplitWidths(w.c3x3, w.c3x3)))
        self.branch3x3dbl = conv_chain(in_chs, (w.c3x3dbl_red, w.c3x3dbl), (1, 3))
        self.branch3x3dbl.append(Split(w.c3x3dbl, SplitWidths(w.c3x3dbl, w.c3x3dbl)))
        self.branch_pool = nn.Sequential(_avg_pool(), _conv(in_chs, w.pool_proj, 1))


BLOCKS = {Inc35: InceptionFig5, Red35: ReductionFig10, Inc17: InceptionFig6, Red17: ReductionFig10Factorized,
          Inc8: InceptionFig7}


class InceptionAux(nn.Module):
    """Auxiliary classifier on the last 17x17 map (paper section 4, Figure 8): avg pool 5x5/3 -> 5x5, 1x1 conv,
    5x5 conv, linear. Section 4 reads the head as a regularizer; batch-normalizing it gave 0.4% top-1 (Figure 8,
    Table 3's "BN-auxiliary"). TF-slim's head, the layout every v3 weight file has, normalises both convs."""

    def __init__(self, in_chs: int, num_classes: int, row: Aux = AUX, width: float = 1.0):
        super().__init__()
        w = _widths(row, width)
        self.conv0 = _conv(in_chs, w.conv0, 1)
        self.conv1 = _conv(w.conv0, w.conv1, 5, padding=0)
        self.fc = nn.Linear(w.conv1, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) >= 17:  # 17x17 at 299 px -> 5x5, exactly torchvision's and timm's head
            x = F.avg_pool2d(x, kernel_size=5, stride=3)
        else:  # smaller inputs, where their head raises: pool (or repeat) to the 5x5 map that conv1 needs
            x = F.adaptive_avg_pool2d(x, 5)
        x = self.conv1(self.conv0(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    def reset_classifier(self, num_classes: int) -> None:
        chs = self.conv1.out_channels
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()


class InceptionV3(InceptionNet):
    """Inception v2/v3 from a spec table: stem convs and pools, then the paper's modules, then avg pool and linear.

    `aux_tap` names the stage the auxiliary head reads (the last 17x17 module). `width` scales every channel count
    (1.0 = the paper); `feature_info` has one entry per stride: the last stage at each reduction.
    """

    def __init__(self, spec: tuple[Row, ...] = V3, num_classes: int = 1000, in_chans: int = 3,
                 aux_logits: bool = True, drop_rate: float = 0.5, width: float = 1.0, transform_input: bool = False,
                 aux_tap: str = "Mixed_6e"):
        super().__init__()
        self.num_classes, self.transform_input = num_classes, transform_input
        self.stage_names, self.aux_taps, self.feature_info = [], {aux_tap: "AuxLogits"}, []
        chs, reduction = in_chans, 1
        for row in spec:
            module, out_chs, stride = make_stage(row, chs, lambda r, c: BLOCKS[type(r)](c, r, width), width)
            if stride > 1 and self.stage_names:  # the stage before a stride change ends a feature level
                self._add_feature(chs, reduction)
            chs, reduction = out_chs, reduction * stride
            self.add_module(row.name, module)
            self.stage_names.append(row.name)
            if row.name == aux_tap:
                self.AuxLogits = InceptionAux(chs, num_classes, AUX, width) if aux_logits else None
        self._add_feature(chs, reduction)
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # = Table 1's 8x8 pool at 299
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        init_weights(self)

    def _add_feature(self, chs: int, reduction: int) -> None:
        self.feature_info.append({"num_chs": chs, "reduction": reduction, "module": self.stage_names[-1]})


def init_weights(model: nn.Module) -> None:
    """TF-slim's Inception-v3 initializers: truncated normal std 0.1, 0.01 for the aux 5x5 conv, 0.001 for the
    aux classifier (slim/nets/inception_v3.py); BN starts as the identity."""
    special = {}
    if getattr(model, "AuxLogits", None) is not None:
        special = {id(model.AuxLogits.conv1.conv): 0.01, id(model.AuxLogits.fc): 0.001}
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            truncated_normal_(m.weight, std=special.get(id(m), 0.1))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@torch.no_grad()
def truncated_normal_(weight: Tensor, std: float) -> Tensor:
    """TF's truncated normal: values beyond two standard deviations are redrawn. (torchvision passes absolute bounds
    of +-2 to `trunc_normal_`, which hardly truncate at std 0.1; and `trunc_normal_`'s erfinv is several times slower
    than drawing, which dominated building the model.)"""
    if weight.is_meta:  # a shape-only build (checking a saved model's size before allocating it): no values
        return weight
    flat = weight.view(-1).normal_(0.0, std)
    redraw = (flat.abs() > 2 * std).nonzero().squeeze(1)  # about 4.6%; each later pass touches only these
    while redraw.numel():
        flat[redraw] = torch.randn(redraw.numel(), dtype=flat.dtype, device=flat.device) * std
        redraw = redraw[flat[redraw].abs() > 2 * std]
    return weight

# aux_weight 0.4: TF-slim's train_image_classifier.py (aux loss `weights=0.4`) and PyTorch's fine-tuning tutorial
# for inception_v3 (`loss = loss1 + 0.4 * loss2`). min_input_size 75 and resize 342 -> 299 (crop_pct 0.875):
# torchvision's Inception_V3_Weights meta and transforms.
@register_model(ModelCfg(input_size=299, min_input_size=75, crop_pct=0.875, aux_weight=0.4,
                         paper=PAPER + "; TF-slim's layout (torchvision / timm keys)"))
def inception_v3(**kwargs) -> InceptionV3:
    """Inception-v3 as TF-slim built it (torchvision's and timm's key layout), aux head on by default.

    timm's inception_v3 weights expect mean = std = 0.5 (pixels in [-1, 1]), torchvision's expect ImageNet mean/std
    with `transform_input=True`; our default cfg is ImageNet mean/std with transform_input off.
    """
    return InceptionV3(V3, **kwargs)


@register_model(ModelCfg(input_size=299, min_input_size=75, crop_pct=0.875, aux_weight=0.4, paper=PAPER + ", Table 1"))
def inception_v2(**kwargs) -> InceptionV3:
    """Inception-v2 of Table 1: a 3x3 conv stem to 35x35x288, 3 x Figure 5, 5 x Figure 6, 2 x Figure 7.

    Table 3's v2 rows predate the BN-auxiliary head, so the head is off by default (`aux_logits=True` adds it).
    Cost at 299 (`inceptorch summary inception_v2`): 25.95M params, 6.35 G MACs, against v3's 23.83M and 5.71 G:
    Table 1's stem keeps 3x3 convs where v3 has a 1x1, and widens to 288 channels before the first module. That
    is well above section 6's "about 2.5 [times] GoogLeNet" (~3.8 G), which Table 1's grid sizes alone do not fix;
    the paper's own branch widths for v2 are not published.
    """
    kwargs.setdefault("aux_logits", False)
    return InceptionV3(V2, aux_tap="Mixed_6f", **kwargs)

