"""GoogLeNet / Inception v1 (Szegedy et al., "Going Deeper with Convolutions", arXiv:1409.4842).

One spec, Table 1 of the paper as data, and two builds from it:
- `googlenet`: faithful to the paper (true 5x5 branch, LRN, conv biases, Table 1 pool sizes, paper aux heads);
- `googlenet_bn`: torchvision's layout, key for key, so its IMAGENET1K_V1 weights load with strict=True.
The differences between the two are the fields of `GoogLeNetCfg`, not special cases in the code.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

from torch import Tensor, nn

from ._registry import ModelCfg, register_model
from ._rows import LRN, Conv, Pool, for_small_input, make_stage
from .layers import Branches, ConvNormAct, InceptionNet, scale_width

PAPER = "Szegedy et al. 2014, Going Deeper with Convolutions (arXiv:1409.4842)"


class Inc(NamedTuple):
    """One Inception row of Table 1: the widths of the four branches."""

    name: str
    c1x1: int
    c3x3_red: int
    c3x3: int
    c5x5_red: int
    c5x5: int
    pool_proj: int


# Table 1 of arXiv:1409.4842. Pools are rows; in-channels are carried forward from the previous row. The pools pad
# by 1 and round down, which gives Table 1's sizes (112 -> 56 -> 28 -> 14 -> 7); `stem` rows are what `small_input`
# replaces by one 3x3/1 conv.
GOOGLENET = (
    #    name           out  kernel stride padding                          # output at 224
    Conv("conv1",        64, 7, 2, 3, stem=True),                           # 112x112x64
    Pool("maxpool1", padding=1, stem=True),                                 # 56x56x64
    LRN("lrn1"),                                                            # paper Figure 3 / Caffe: after pool1
    Conv("conv2",        64, 1),                                            # the "#3x3 reduce" of the stage-2 row
    Conv("conv3",       192, 3, 1, 1),                                      # 56x56x192
    LRN("lrn2"),                                                            # paper Figure 3: after the 3x3 conv
    Pool("maxpool2", padding=1),                                            # 28x28x192
    #    name          1x1  3x3r  3x3  5x5r  5x5  pool
    Inc("inception3a",  64,   96, 128,   16,  32,   32),                    # 28x28x256
    Inc("inception3b", 128,  128, 192,   32,  96,   64),                    # 28x28x480
    Pool("maxpool3", padding=1),                                            # 14x14x480
    Inc("inception4a", 192,   96, 208,   16,  48,   64),                    # 14x14x512, aux head 1
    Inc("inception4b", 160,  112, 224,   24,  64,   64),                    # 14x14x512
    Inc("inception4c", 128,  128, 256,   24,  64,   64),                    # 14x14x512
    Inc("inception4d", 112,  144, 288,   32,  64,   64),                    # 14x14x528, aux head 2
    Inc("inception4e", 256,  160, 320,   32, 128,  128),                    # 14x14x832
    Pool("maxpool4", padding=1),                                            # 7x7x832
    Inc("inception5a", 256,  160, 320,   32, 128,  128),                    # 7x7x832
    Inc("inception5b", 384,  192, 384,   48, 128,  128),                    # 7x7x1024
)
AUX_TAPS = {"inception4a": "aux1", "inception4d": "aux2"}
INITS = ("kaiming", "kaiming_fan_out", "trunc_normal")  # see init_weights
HEADS = ("avg", "fc")  # global average pooling (the paper's) or a linear layer over the last map (an ablation)
FEATURE_TAPS = ("conv1", "conv3", "inception3b", "inception4e", "inception5b")


@dataclass(frozen=True)
class GoogLeNetCfg:
    """Everything that differs between the paper's network and torchvision's port."""

    norm: bool             # BN after every conv (torchvision, TF-slim) instead of conv biases (paper)
    lrn: bool              # LRN(5, 1e-4, 0.75) after pool1 and conv3 (paper Figure 3)
    branch3_kernel: int    # 5 in the paper; 3 in torchvision/TF-slim, kept there for weight compatibility
    pool_ceil: bool        # torchvision's pools are unpadded and round up; the paper's pad by 1 and round down
    aux_pool: str          # "paper": 5x5/3 average pool; "adaptive": torchvision's 4x4 adaptive pool
    drop_rate: float       # before the classifier: 40% in the paper, 20% in torchvision
    init: str              # "kaiming": He et al. 2015 for the convs (no BN to rescue a small init);
                           # "trunc_normal": torchvision's std 0.01, which BN renormalises;
                           # "kaiming_fan_out": ResNet's, an option (see init_weights)
    aux_drop_rate: float = 0.7
    pool_kernels: tuple[tuple[str, int], ...] = ()  # (pool row, kernel) where it is not Table 1's 3x3


PAPER_CFG = GoogLeNetCfg(norm=False, lrn=True, branch3_kernel=5, pool_ceil=False, aux_pool="paper", drop_rate=0.4,
                         init="kaiming")
TORCHVISION_CFG = GoogLeNetCfg(norm=True, lrn=False, branch3_kernel=3, pool_ceil=True, aux_pool="adaptive",
                               drop_rate=0.2, init="trunc_normal",
                               pool_kernels=(("maxpool4", 2),))  # a 2x2/2 pool before stage 5


class Inception(Branches):
    """The Inception module with dimension reductions (paper Figure 2b).

    Branch names follow torchvision's weight layout (`branch1`..`branch4`), which the BN build must match.
    `reduce=False` leaves out the "#3x3 reduce" and "#5x5 reduce" 1x1 convs, so the 3x3 and 5x5 convs read the
    whole block input (Figure 2a's cost). The pool projection stays, so every block keeps Table 1's output width
    and only the cost of those two branches changes: section 4's arithmetic (a 5x5 conv to 48 maps over 480 costs
    112.9M multiply-adds at 14x14, 5.3M behind a 16-map reduction) applied to the whole network.
    """

    def __init__(self, in_chs: int, row: Inc, cfg: GoogLeNetCfg, width: float = 1.0, reduce: bool = True):
        super().__init__()
        w = {f: scale_width(getattr(row, f), width) for f in Inc._fields[1:]}

        def conv(i, o, k):
            return ConvNormAct(i, o, k, norm=cfg.norm)

        self.branch1 = conv(in_chs, w["c1x1"], 1)
        if reduce:
            self.branch2 = nn.Sequential(conv(in_chs, w["c3x3_red"], 1), conv(w["c3x3_red"], w["c3x3"], 3))
            self.branch3 = nn.Sequential(conv(in_chs, w["c5x5_red"], 1),
                                         conv(w["c5x5_red"], w["c5x5"], cfg.branch3_kernel))
        else:
            self.branch2 = nn.Sequential(conv(in_chs, w["c3x3"], 3))
            self.branch3 = nn.Sequential(conv(in_chs, w["c5x5"], cfg.branch3_kernel))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=cfg.pool_ceil),
                                     conv(in_chs, w["pool_proj"], 1))
        self.row = row  # the Table 1 columns, for `inceptorch summary`

    def table_columns(self) -> dict[str, int]:
        return {"#1x1": self.row.c1x1, "#3x3 reduce": self.row.c3x3_red, "#3x3": self.row.c3x3,
                "#5x5 reduce": self.row.c5x5_red, "#5x5": self.row.c5x5, "pool proj": self.row.pool_proj}


class AuxHead(nn.Module):
    """Auxiliary classifier on 4a and 4d (paper section 5): avg pool, 1x1 conv 128, FC 1024, dropout 70%, linear.

    Keys `conv`, `fc1`, `fc2` follow torchvision's `InceptionAux`. The paper pools 5x5/3 (14x14 -> 4x4); the extra
    adaptive 4x4 pool is the identity at 224 and keeps the FC input fixed for other input sizes.
    """

    def __init__(self, in_chs: int, num_classes: int, cfg: GoogLeNetCfg, width: float = 1.0):
        super().__init__()
        conv_chs, fc_chs = scale_width(128, width), scale_width(1024, width)
        adaptive = nn.AdaptiveAvgPool2d(4)
        self.pool = nn.Sequential(nn.AvgPool2d(5, stride=3), adaptive) if cfg.aux_pool == "paper" else adaptive
        self.conv = ConvNormAct(in_chs, conv_chs, 1, norm=cfg.norm)
        self.fc1 = nn.Linear(conv_chs * 16, fc_chs)
        self.act = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(cfg.aux_drop_rate)
        self.fc2 = nn.Linear(fc_chs, num_classes) if num_classes > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.dropout(self.act(self.fc1(x))))

    def reset_classifier(self, num_classes: int) -> None:
        self.fc2 = nn.Linear(self.fc1.out_features, num_classes) if num_classes > 0 else nn.Identity()


class GoogLeNet(InceptionNet):
    """GoogLeNet built from `GOOGLENET` rows under a `GoogLeNetCfg`.

    `small_input=True` builds the `stem` rows (the 7x7/2 conv and the first pool) as one 3x3/1 conv so that 28-64 px
    images keep enough resolution (total stride 8 instead of 32): a 32 px input reaches stage 3 at 16x16, stage 5 at
    4x4.

    Two options exist for ablations (`inceptorch reproduce`), their defaults being the paper's network:
    `reduce=False` builds the modules without their 3x3/5x5 reductions (see `Inception`), and `head="fc"` replaces
    global average pooling with a linear classifier over the whole last feature map (7x7 at 224 px, 4x4 with
    `small_input` at 32 px), the head that section 5 reports average pooling beat by about 0.6% top-1. Other input
    sizes are average-pooled to that grid first, so the classifier's input stays fixed (as `AuxHead` does).
    `init` replaces the build's initial weights scheme (`INITS`, see `init_weights`), to compare them.
    """

    def __init__(self, cfg: GoogLeNetCfg, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = True,
                 drop_rate: float | None = None, aux_drop_rate: float | None = None, width: float = 1.0,
                 small_input: bool = False, transform_input: bool = False, spec: tuple = GOOGLENET,
                 head: str = "avg", reduce: bool = True, init: str | None = None):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, not {head!r}")
        if init is not None and init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, not {init!r}")
        given = {"drop_rate": drop_rate, "aux_drop_rate": aux_drop_rate, "init": init}
        cfg = replace(cfg, **{field: value for field, value in given.items() if value is not None})
        self.cfg, self.num_classes, self.transform_input = cfg, num_classes, transform_input
        self.stage_names, self.aux_taps, self.feature_info = [], dict(AUX_TAPS), []
        chs, reduction, aux_in_chs = in_chans, 1, {}

        def block(row, in_chs):
            return Inception(in_chs, row, cfg, width, reduce)

        for row in build_rows(spec, cfg, small_input):
            module, chs, stride = make_stage(row, chs, block, width, norm=cfg.norm)
            reduction *= stride
            self.add_stage(row.name, module, chs, reduction, feature=row.name in FEATURE_TAPS)
            if row.name in AUX_TAPS:
                aux_in_chs[AUX_TAPS[row.name]] = chs
        for aux_name, aux_in in aux_in_chs.items():  # after the trunk, in torchvision's key order
            self.add_module(aux_name, AuxHead(aux_in, num_classes, cfg, width) if aux_logits else None)
        self.num_features, self.head = chs, head
        # "fc": the last map at the default input size (224 px, or 32 px with small_input) stays a grid.
        grid = 1 if head == "avg" else (32 if small_input else 224) // reduction
        self.avgpool = nn.AdaptiveAvgPool2d(grid)  # grid 1 = the 7x7/1 average pool of Table 1 at 224 input
        self.head_features = chs * grid * grid
        self.dropout = nn.Dropout(cfg.drop_rate)
        self.fc = nn.Linear(self.head_features, num_classes) if num_classes > 0 else nn.Identity()
        if small_input:
            self.cfg_overrides = {"input_size": 32, "min_input_size": 28, "crop_pct": 1.0}
        init_weights(self, cfg.init)

    def reset_classifier(self, num_classes: int) -> None:
        super().reset_classifier(num_classes)
        if num_classes > 0 and self.head_features != self.num_features:  # the "fc" head reads the whole grid
            self.fc = nn.Linear(self.head_features, num_classes)


def build_rows(spec: tuple, cfg: GoogLeNetCfg, small_input: bool = False) -> tuple:
    """The rows of `spec` as `cfg` builds them: LRN only where `cfg.lrn`, the pools in its mode and sizes, and for
    `small_input` the 3x3/1 stem (`for_small_input`)."""
    kernels = dict(cfg.pool_kernels)
    rows = []
    for row in for_small_input(spec) if small_input else spec:
        if isinstance(row, LRN) and not cfg.lrn:
            continue
        if isinstance(row, Pool):
            row = row._replace(kernel=kernels.get(row.name, row.kernel))
            if cfg.pool_ceil:
                row = row._replace(padding=0, ceil_mode=True)
        rows.append(row)
    return tuple(rows)


def init_weights(model: nn.Module, scheme: str = "trunc_normal") -> None:
    """Initial weights; classifiers (linear layers) always start small: truncated normal, std 0.01, zero bias.

    - "kaiming": He et al. 2015 (arXiv:1502.01852), normal with std sqrt(2 / fan_in), zero bias: each ReLU layer
      keeps its input's scale, so the paper's network, which has no BN, passes the signal through all 22 layers.
      (The BVLC Caffe replication used Xavier with a constant bias of 0.2, which also carries a signal but makes
      every image's features nearly the same at the start.)
    - "kaiming_fan_out": std sqrt(2 / fan_out), ResNet's; a choice (`init=`) for the BN builds. Behind BN a conv's
      scale does not change what it computes but sets how far one step turns it: an Adam step moves each weight by
      about the learning rate whatever its size (Hoffer et al. 2018, arXiv:1803.01814), so at the same lr these
      weights turn 3-6x slower than std-0.01 ones in the full-width net, and slower still in a narrow one. On
      2,000 gray 300 px solar-cell images at 112 px without augmentation it let GoogLeNet-BN fit (85% train top-1
      after 10 epochs at lr 5e-4, against 70% from std 0.01 at 3e-4); with the default augmentation it changed
      nothing on the inspection benchmark and lost on small data (width 0.125 on the digits, 95.8% against
      99.2%), so it is not the default.
    - "trunc_normal": torchvision's std 0.01 (the BN builds' default). With BN after every conv the scale is undone
      in the forward pass; without BN, 22 layers of it shrink a 96 px image's logits to about 1e-12.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and scheme in ("kaiming", "kaiming_fan_out"):
            mode = "fan_in" if scheme == "kaiming" else "fan_out"
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@register_model(ModelCfg(input_size=224, min_input_size=80, aux_weight=0.3, paper=PAPER))
def googlenet(**kwargs) -> GoogLeNet:
    """GoogLeNet as the paper describes it: LRN, true 5x5 convolutions, conv biases, paper auxiliary heads."""
    return GoogLeNet(PAPER_CFG, **kwargs)


@register_model(ModelCfg(input_size=224, min_input_size=80, aux_weight=0.3,
                         paper=PAPER + "; torchvision's BN port (TF-slim inception_v1)"))
def googlenet_bn(**kwargs) -> GoogLeNet:
    """torchvision's GoogLeNet: BN, no LRN, 3x3 in the "5x5" branch, 2x2 pool before stage 5, 4x4 aux pools."""
    return GoogLeNet(TORCHVISION_CFG, **kwargs)
