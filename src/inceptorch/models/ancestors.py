"""The networks GoogLeNet grew from, as the GoogLeNet articles tell it, sized for 28-32 px digits and CIFAR-like images.

- `lenet5`: LeCun et al. 1998, "Gradient-Based Learning Applied to Document Recognition" (the LeNet-5 of Figure 2).
- `maxout`: Goodfellow et al. 2013, "Maxout Networks" (arXiv:1302.4389), the convolutional CIFAR-10 network.
- `nin`: Lin et al. 2013, "Network In Network" (arXiv:1312.4400), the CIFAR-10 configuration.
- `inception_naive`: the naive Inception module (arXiv:1409.4842 Figure 2a) in a one- or two-module network, and
  `plain_conv`, the same network with one plain conv layer instead (an MNIST comparison in the GoogLeNet notes).

All share the family API (`InceptionNet`: named stages, `feature_info`, `num_features`, `avgpool`/`dropout`/`fc`,
no auxiliary heads), so `inceptorch summary`, training and export treat them like the Inception models.
They keep torch's default initialization: the papers' own init schemes (e.g. maxout's uniform irange .005) were
tuned for their optimizers, not for ours.
"""
from __future__ import annotations

from itertools import pairwise
from typing import NamedTuple

import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import ModelCfg, register_model
from .bn_inception import concat_channels
from .layers import Branches, ConvNormAct, InceptionNet, scale_width

# MNIST's pixel statistics (the seeds' digits experiments), repeated per channel for 3-channel inputs.
DIGITS_MEAN = (0.1307, 0.1307, 0.1307)
DIGITS_STD = (0.3081, 0.3081, 0.3081)


def _no_aux(aux_logits: bool) -> None:
    """Builders take `aux_logits` like the rest of the family (callers pass False to every model); none has heads."""
    if aux_logits:
        raise ValueError("this network has no auxiliary classifiers")


def _cfg(paper: str, cpu_channels_last: bool = True) -> ModelCfg:
    return ModelCfg(input_size=32, min_input_size=28, mean=DIGITS_MEAN, std=DIGITS_STD, crop_pct=1.0, paper=paper,
                    cpu_channels_last=cpu_channels_last)


class SmallNet(InceptionNet):
    """A trunk of named stages, global average pooling, dropout and a linear classifier."""

    def __init__(self, stages: list[tuple[str, nn.Module, int, int]], num_classes: int, drop_rate: float,
                 taps: tuple[str, ...]):
        """`stages` rows are (name, module, output channels, stride); `taps` name the `feature_info` stages."""
        super().__init__()
        self.num_classes = num_classes
        self.stage_names, self.aux_taps, self.feature_info = [], {}, []
        reduction = 1
        for name, module, chs, stride in stages:
            reduction *= stride
            self.add_stage(name, module, chs, reduction, feature=name in taps)
        self.num_features = chs
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()


# --- LeNet-5 -------------------------------------------------------------------------------------------------------

def pad_to(x: Tensor, size: int) -> Tensor:
    """`x` zero-padded symmetrically up to `size` x `size` (unchanged when it is already that large)."""
    dh, dw = max(0, size - x.shape[-2]), max(0, size - x.shape[-1])
    return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)) if dh or dw else x


# The padding depends on the input's size, which torch.fx cannot branch on: int8 quantization (FX graph mode)
# traces the model, so `pad_to` is recorded as one call instead of being traced through.
torch.fx.wrap("pad_to")


class PadTo(nn.Module):
    """Zero-pads the input symmetrically up to `size` x `size` (LeNet-5 reads 32x32: MNIST's 28x28 digits padded)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: Tensor) -> Tensor:
        return pad_to(x, self.size)


def _conv_tanh(in_chs: int, out_chs: int, kernel: int) -> ConvNormAct:
    unit = ConvNormAct(in_chs, out_chs, kernel, padding=0, norm=False, act=False)
    unit.add_module("act", nn.Tanh())
    return unit


class LeNet5(SmallNet):
    """LeNet-5 (LeCun et al. 1998, Figure 2): C1 6@5x5, S2, C3 16@5x5, S4, C5 120@5x5, F6 84, output.

    Divergences, all the usual modern ones: S2/S4 are plain 2x2 average pools (the paper's have a trainable
    coefficient and bias), C3 connects to all six S2 maps (the paper's Table I connects each to a subset), tanh
    instead of the scaled 1.7159 tanh(2x/3), and a linear output instead of the RBF units. C5 is a 5x5 conv over
    the 5x5 S4 maps (= a fully connected layer at 32 px) and F6 a 1x1 conv, so the trunk stays 4D.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0):
        stages = [("pad", PadTo(32), in_chans, 1),                      # 28x28 -> 32x32 (paper section II.B)
                  ("c1", _conv_tanh(in_chans, 6, 5), 6, 1),             # 28x28x6
                  ("s2", nn.AvgPool2d(2), 6, 2),                        # 14x14x6
                  ("c3", _conv_tanh(6, 16, 5), 16, 1),                  # 10x10x16
                  ("s4", nn.AvgPool2d(2), 16, 2),                       # 5x5x16
                  ("c5", _conv_tanh(16, 120, 5), 120, 8),               # 1x1x120 (stride: 32 px -> 1)
                  ("f6", _conv_tanh(120, 84, 1), 84, 1)]                # 1x1x84
        # The valid 5x5 convs shrink C3 below input/2, so the taps are the maps that keep input/reduction.
        super().__init__(stages, num_classes, drop_rate, taps=("c1", "s2", "f6"))


@register_model(_cfg("LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition (LeNet-5)"))
def lenet5(aux_logits: bool = False, **kwargs) -> LeNet5:
    """LeNet-5 on 32x32 input; 28x28 digits are zero-padded to 32x32 as in the paper."""
    _no_aux(aux_logits)
    return LeNet5(**kwargs)


# --- Maxout -------------------------------------------------------------------------------------------------------

class MaxoutConv(nn.Module):
    """h = max over `pieces` affine feature maps (arXiv:1302.4389 eq. 1): a conv to units x pieces maps, then the max.

    Unit j's pieces are output channels j*pieces ... j*pieces + pieces - 1.
    """

    def __init__(self, in_chs: int, units: int, pieces: int, kernel: int, padding: int = 0):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.conv = nn.Conv2d(in_chs, units * pieces, kernel, padding=padding)

    @property
    def out_channels(self) -> int:
        return self.units

    def forward(self, x: Tensor) -> Tensor:
        # unflatten rather than view(*y.shape[2:]): torch.fx (int8 quantization) cannot unpack a traced shape
        return self.conv(x).unflatten(1, (self.units, self.pieces)).amax(dim=2)


class MaxoutRow(NamedTuple):
    name: str
    units: int    # maxout feature maps
    pieces: int   # k
    kernel: int
    padding: int
    pool: int     # max pool window, stride 2


# pylearn2/scripts/papers/maxout/cifar10.yaml, the configuration of the paper's CIFAR-10 result.
MAXOUT_CIFAR10 = (
    #          name  units pieces kernel pad pool      # output at 32
    MaxoutRow("h0",    96,  2,     8,     4,  4),      # conv 33x33 -> pool 15x15x96
    MaxoutRow("h1",   192,  2,     8,     3,  4),      # conv 14x14 -> pool 6x6x192
    MaxoutRow("h2",   192,  2,     5,     3,  2),      # conv 8x8 -> pool 4x4x192
)
MAXOUT_FC = (500, 5)  # h3: a fully connected maxout layer, 500 units of 5 pieces, then softmax


class Maxout(SmallNet):
    """The convolutional maxout network of arXiv:1302.4389 (CIFAR-10): three maxout conv layers with max pooling,
    a fully connected maxout layer, dropout on every layer's input (20% on the image, 50% elsewhere), softmax.

    `pieces` replaces every layer's k (the paper uses 2 in the conv layers and 5 in h3). The fully connected h3 is
    a maxout conv whose kernel covers the whole `fc_grid` x `fc_grid` map (the 4x4 map at 32 px); an adaptive
    pool brings other input sizes (3x3 at 28 px) to that grid. The paper's max-norm constraints belong to the
    optimizer and are not part of the model.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, pieces: int | None = None, width: float = 1.0,
                 drop_rate: float = 0.5, input_drop_rate: float = 0.2, fc_grid: int = 4,
                 spec: tuple = MAXOUT_CIFAR10):
        stages, chs = [("drop_in", nn.Dropout(input_drop_rate), in_chans, 1)], in_chans
        for i, row in enumerate(spec):
            units = scale_width(row.units, width)
            stages += [(row.name, MaxoutConv(chs, units, pieces or row.pieces, row.kernel, row.padding), units, 1),
                       (f"pool{i}", nn.MaxPool2d(row.pool, 2), units, 2),
                       (f"drop{i}", nn.Dropout(drop_rate), units, 1)]
            chs = units
        units, fc_pieces = scale_width(MAXOUT_FC[0], width), pieces or MAXOUT_FC[1]
        h3 = nn.Sequential(nn.AdaptiveAvgPool2d(fc_grid), MaxoutConv(chs, units, fc_pieces, fc_grid))
        stages.append(("h3", h3, units, fc_grid))               # 1x1x500
        # Taps whose size stays near input/reduction; the 8x8 convs shrink h1 and pool1 below that.
        super().__init__(stages, num_classes, drop_rate, taps=("pool0", "h2", "pool2", "h3"))


@register_model(_cfg("Goodfellow et al. 2013, Maxout Networks (arXiv:1302.4389), CIFAR-10 network",
                     cpu_channels_last=False))
def maxout(aux_logits: bool = False, **kwargs) -> Maxout:
    """Convolutional maxout network (CIFAR-10 configuration); `pieces=k` sets the pieces of every layer."""
    _no_aux(aux_logits)
    return Maxout(**kwargs)


# --- Network in Network -------------------------------------------------------------------------------------------

class MlpConv(NamedTuple):
    """One mlpconv layer (arXiv:1312.4400 section 3.2): a k x k conv and two 1x1 convs, each with ReLU."""

    name: str
    kernel: int
    c1: int
    c2: int
    c3: int     # 0: one map per class (the last layer, read by global average pooling)
    pool: str   # "max" or "avg" (3x3/2) after the layer, "" for the last


# The CIFAR-10 configuration of the authors' released Caffe model (cifar10 train_val: conv1 + cccp1/cccp2, ...).
NIN_CIFAR10 = (
    #       name       kernel  c1   c2   c3  pool        # output at 32
    MlpConv("mlpconv1", 5,    192, 160,  96, "max"),     # 16x16x96
    MlpConv("mlpconv2", 5,    192, 192, 192, "avg"),     # 8x8x192
    MlpConv("mlpconv3", 3,    192, 192,   0, ""),        # 8x8xclasses, then global average pooling
)


class NIN(SmallNet):
    """Network in Network, CIFAR-10 configuration: three mlpconv layers, pools and dropout between them, global
    average pooling of one map per class.

    The last 1x1 conv (192 -> classes) is `fc`, applied after the pooling: a 1x1 conv commutes with global
    average pooling, so the logits are those of the paper's class maps, and the model keeps the family's
    `pre_logits` / `reset_classifier` API. (The released Caffe model puts a ReLU on the class maps; we do not:
    clamped logits stop the gradient of every class whose map goes negative.)
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: float = 1.0, drop_rate: float = 0.5,
                 spec: tuple = NIN_CIFAR10):
        stages, chs = [], in_chans
        for i, row in enumerate(spec, 1):
            widths = [scale_width(c, width) for c in (row.c1, row.c2, row.c3) if c]
            layers = [ConvNormAct(chs, widths[0], row.kernel, norm=False)]
            layers += [ConvNormAct(a, b, 1, norm=False) for a, b in pairwise(widths)]
            chs = widths[-1]
            stages.append((row.name, nn.Sequential(*layers), chs, 1))
            if row.pool:
                pool = nn.MaxPool2d(3, 2, padding=1) if row.pool == "max" else nn.AvgPool2d(3, 2, padding=1)
                stages += [(f"pool{i}", pool, chs, 2), (f"drop{i}", nn.Dropout(drop_rate), chs, 1)]
        super().__init__(stages, num_classes, 0.0, taps=tuple(r.name for r in spec))


@register_model(_cfg("Lin et al. 2013, Network In Network (arXiv:1312.4400), CIFAR-10 configuration"))
def nin(aux_logits: bool = False, **kwargs) -> NIN:
    """Network in Network: mlpconv layers 192-160-96 / 192-192-192 / 192-192-classes and global average pooling."""
    _no_aux(aux_logits)
    return NIN(**kwargs)


# --- The naive Inception module and its plain baseline ------------------------------------------------------------

class NaiveInception(Branches):
    """Parallel 1x1, 3x3 and 5x5 convs (`branch_chs` maps each) and a 3x3 max pool, concatenated (arXiv:1409.4842
    Figure 2a). The pool passes its input through, so the output has 3 * branch_chs + in_chs maps: the growth that
    made the paper add 1x1 reductions. `reduce=True` builds Figure 2b instead, with every reduction and the pool
    projection also `branch_chs` wide, the notes' narrow MNIST module (4 maps per branch, 4 * branch_chs out).
    """

    def __init__(self, in_chs: int, branch_chs: int, reduce: bool = False):
        super().__init__()

        def conv(i, o, k):
            return ConvNormAct(i, o, k, norm=False)

        pool = nn.MaxPool2d(3, 1, padding=1)
        self.branch1x1 = conv(in_chs, branch_chs, 1)
        if reduce:
            self.branch3x3 = nn.Sequential(conv(in_chs, branch_chs, 1), conv(branch_chs, branch_chs, 3))
            self.branch5x5 = nn.Sequential(conv(in_chs, branch_chs, 1), conv(branch_chs, branch_chs, 5))
            self.branch_pool = nn.Sequential(pool, conv(in_chs, branch_chs, 1))
        else:
            self.branch3x3, self.branch5x5 = conv(in_chs, branch_chs, 3), conv(in_chs, branch_chs, 5)
            self.branch_pool = pool
        self.in_chs = in_chs

    @property
    def out_channels(self) -> int:
        return concat_channels(self, self.in_chs)


def _stem(in_chans: int, chs: int) -> list[tuple[str, nn.Module, int, int]]:
    return [("stem", ConvNormAct(in_chans, chs, 3, norm=False), chs, 1),     # 32x32
            ("pool", nn.MaxPool2d(2), chs, 2)]                                # 16x16 (14x14 at 28)


class InceptionNaiveNet(SmallNet):
    """Stem conv 3x3, 2x2 max pool, `num_modules` naive Inception modules, global average pooling, linear.

    `branch_chs` is the maps per branch (the notes' narrow module: 4); `width` multiplies every width, as it does
    for every model of the family.
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 3, branch_chs: int = 4, num_modules: int = 1,
                 reduce: bool = False, stem_chs: int = 16, width: float = 1.0, drop_rate: float = 0.0):
        stem_chs = scale_width(stem_chs, width)
        stages, chs = _stem(in_chans, stem_chs), stem_chs
        for i in range(1, num_modules + 1):
            block = NaiveInception(chs, scale_width(branch_chs, width), reduce)
            chs = block.out_channels
            stages.append((f"inception{i}", block, chs, 1))
        # One feature per stride (timm's feature_info): the stem at 1, the last module at 2 (the pool's stride)
        super().__init__(stages, num_classes, drop_rate, taps=("stem", stages[-1][0]))


class PlainConvNet(SmallNet):
    """The same network with one plain `kernel` x `kernel` conv of `out_chs` maps where the Inception module was."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, out_chs: int = 16, kernel: int = 3,
                 stem_chs: int = 16, width: float = 1.0, drop_rate: float = 0.0):
        stem_chs, out_chs = scale_width(stem_chs, width), scale_width(out_chs, width)
        stages = _stem(in_chans, stem_chs) + [("conv", ConvNormAct(stem_chs, out_chs, kernel, norm=False), out_chs, 1)]
        super().__init__(stages, num_classes, drop_rate, taps=("stem", "conv"))  # one per stride, as above


@register_model(_cfg("Szegedy et al. 2014 (arXiv:1409.4842) Figure 2a, the naive Inception module"))
def inception_naive(aux_logits: bool = False, **kwargs) -> InceptionNaiveNet:
    """A small network around the naive Inception module; `reduce=True` for the notes' narrow Figure 2b module."""
    _no_aux(aux_logits)
    return InceptionNaiveNet(**kwargs)


@register_model(_cfg("The MNIST baseline for the naive Inception module: one plain conv layer"))
def plain_conv(aux_logits: bool = False, **kwargs) -> PlainConvNet:
    """`inception_naive`'s network with one plain 3x3 conv; the default 16 maps match `inception_naive(
    branch_chs=4, reduce=True)`'s 4 x 4 concatenated maps, the comparison in the CNN-Structures notes."""
    _no_aux(aux_logits)
    return PlainConvNet(**kwargs)


