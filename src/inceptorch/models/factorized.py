"""A small network family for the factorization ablation of Inception-v2/v3 (Szegedy et al., "Rethinking the
Inception Architecture for Computer Vision", arXiv:1512.00567, section 3).

`factorized_net(factorization=...)`: every block is one convolution replaced by a chain of smaller ones, all
`width` maps wide with BN and ReLU after each (section 3.1 found the ReLU between the two 3x3s better than a
linear first layer), at the same depth (blocks) and width in every variant. Only the kernels differ:

| factorization | replaces | receptive field | MACs per output map, C in and out | paper |
|---|---|---|---|---|
| `5x5`         |       | 5x5 | 25 C^2 | |
| `3x3+3x3`     | 5x5   | 5x5 | 18 C^2 (28% fewer) | Figure 1, section 3.1 |
| `1x5+5x1`     | 5x5   | 5x5 | 10 C^2 (60% fewer) | Figure 6 with n = 5, section 3.2 |
| `3x3`         |       | 3x3 |  9 C^2 | |
| `1x3+3x1`     | 3x3   | 3x3 |  6 C^2 (33% fewer) | Figure 3, section 3.2 |

Section 3.2 reports that the asymmetric factorization "does not work well on early layers, but it gives very
good results on medium grid-sizes (m x m feature maps, where m ranges between 12 and 20)": here the blocks run
at 16x16 and 8x8 (32 px input), after a 3x3 stem conv and a 2x2 max pool.
"""
from __future__ import annotations

from torch import nn

from ._registry import ModelCfg, register_model
from .ancestors import DIGITS_MEAN, DIGITS_STD, SmallNet
from .layers import ConvNormAct, scale_width

PAPER = "Szegedy et al. 2015, Rethinking the Inception Architecture for Computer Vision (arXiv:1512.00567) section 3"

# Each factorization: the kernels of the chain that stands in for one convolution (see the module docstring).
FACTORIZATIONS: dict[str, tuple[tuple[int, int], ...]] = {
    "5x5": ((5, 5),),
    "3x3+3x3": ((3, 3), (3, 3)),
    "1x5+5x1": ((1, 5), (5, 1)),
    "3x3": ((3, 3),),
    "1x3+3x1": ((1, 3), (3, 1)),
}


def conv_chain(in_chs: int, out_chs: int, kernels: tuple[tuple[int, int], ...]) -> nn.Sequential:
    """The convolutions of one factorization in series, every one `out_chs` wide, "same" padding."""
    return nn.Sequential(*(ConvNormAct(in_chs if i == 0 else out_chs, out_chs, k) for i, k in enumerate(kernels)))


class FactorizedNet(SmallNet):
    """Stem 3x3 conv, 2x2 max pool, `depth` blocks at 16x16, 2x2 max pool, `depth` blocks at 8x8 (32 px input),
    global average pooling, dropout, linear. Every conv is `channels` x `width` maps wide."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, factorization: str = "5x5", depth: int = 2,
                 channels: int = 32, width: float = 1.0, drop_rate: float = 0.0):
        if factorization not in FACTORIZATIONS:
            raise ValueError(f"factorization must be one of {', '.join(FACTORIZATIONS)}, not {factorization!r}")
        if depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        chs, kernels = scale_width(channels, width), FACTORIZATIONS[factorization]
        stages = [("stem", ConvNormAct(in_chans, chs, 3), chs, 1),        # 32x32
                  ("pool1", nn.MaxPool2d(2), chs, 2)]                     # 16x16 (14x14 at 28)
        stages += [(f"block1_{i + 1}", conv_chain(chs, chs, kernels), chs, 1) for i in range(depth)]
        stages += [("pool2", nn.MaxPool2d(2), chs, 2)]                    # 8x8 (7x7 at 28)
        stages += [(f"block2_{i + 1}", conv_chain(chs, chs, kernels), chs, 1) for i in range(depth)]
        super().__init__(stages, num_classes, drop_rate, taps=("stem", f"block1_{depth}", f"block2_{depth}"))
        self.factorization = factorization


@register_model(ModelCfg(input_size=32, min_input_size=28, mean=DIGITS_MEAN, std=DIGITS_STD, crop_pct=1.0,
                         paper=PAPER))
def factorized_net(aux_logits: bool = False, **kwargs) -> FactorizedNet:
    """A small conv net whose blocks use one factorization of a 5x5 or 3x3 conv (`factorization=`, see
    `FACTORIZATIONS`), for comparing them at the same depth and width."""
    if aux_logits:
        raise ValueError("this network has no auxiliary classifiers")
    return FactorizedNet(**kwargs)
