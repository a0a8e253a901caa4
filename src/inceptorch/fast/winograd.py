"""3x3 convolutions as Winograd F(m x m, 3 x 3) for compiled CPU inference.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (arXiv 1509.09308), section 4: an m x m output
tile of a 3x3 convolution is A^T [(G g G^T) * (B^T d B)] A, where d is the (m+2) x (m+2) input tile and * is an
element-wise product. Over all tiles and channels the element-wise products become (m+2)^2 independent matrix
products, (tiles x Cin) x (Cin x Cout), each a 1x1 convolution: (m+2)^2 / (9 m^2) of the direct convolution's
multiply-adds (16/36 for m = 2, 36/144 for m = 4).

Why: at batch 1 on a 2-core CPU, GoogLeNet's 3x3 convolutions already run at the FMA peak (BENCHMARKS.md), so
fewer multiply-adds is the only way left to make them faster in fp32. The transforms are element-wise over NHWC
tensors; inductor fuses each into one vectorised loop, and the (m+2)^2 products run as one grouped 1x1 oneDNN
convolution. One layer at a time this is 1.3-1.5x faster than oneDNN's direct convolution on 14x14 to 56x56 maps
(AMD EPYC, 2 threads); in the whole compiled GoogLeNet it is worth -3% to +7% depending on what else the machine
runs (the transforms move 2-10 MB per layer), and in seven one-process A/Bs it kept GoogLeNet at 1.68-1.76x over
torchvision's eager model where the direct convs gave 1.60-1.80x (BENCHMARKS.md). `optimize` turns it on for CPU
models. Eager PyTorch would run each transform as ~60 separate small ops, which costs more than it saves, so
`WinogradConv2d` takes this path only inside `torch.compile` and runs the direct convolution otherwise (eager,
`torch.export`, ONNX export).

Accuracy: F(2x2, 3x3) lands closer to a float64 direct convolution than the fp32 direct convolution does (fewer
accumulations: 3.0e-7 against 8.6e-7 max error on GoogLeNet's conv3 shape, BENCHMARKS.md).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class WinogradTransform(NamedTuple):
    """The three matrices of F(m x m, 3 x 3): B^T (input tile), G (filter), A^T (output tile)."""

    tile: int  # m: outputs per tile side
    BT: tuple[tuple[float, ...], ...]  # (m+2) x (m+2)
    G: tuple[tuple[float, ...], ...]  # (m+2) x 3
    AT: tuple[tuple[float, ...], ...]  # m x (m+2)


# Lavin & Gray, section 4.1: F(2x2, 3x3), interpolation points 0, 1, -1. F(4x4, 3x3) (section 4.2) does 4/9 of F2's
# multiply-adds and was faster on one conv in isolation (873 against 1,046 us on GoogLeNet's conv3), but inside the
# compiled GoogLeNet it made the model slower (BENCHMARKS.md), and it is about 10x less exact: not kept.
F2 = WinogradTransform(
    tile=2,
    BT=((1, 0, -1, 0),
        (0, 1, 1, 0),
        (0, -1, 1, 0),
        (0, 1, 0, -1)),
    G=((1, 0, 0),
       (1 / 2, 1 / 2, 1 / 2),
       (1 / 2, -1 / 2, 1 / 2),
       (0, 0, 1)),
    AT=((1, 1, 1, 0),
        (0, 1, -1, -1)),
)
TRANSFORMS = {2: F2}


def _combine(coefs: tuple[float, ...], terms: list[Tensor]) -> Tensor:
    """sum(c * t): the transforms' rows are small integers and fractions, mostly 0 and +-1, so skip and inline."""
    out = None
    for c, t in zip(coefs, terms):
        if c == 0:
            continue
        term = t if c == 1 else -t if c == -1 else t * c
        out = term if out is None else out + term
    return out


def winograd_filter(weight: Tensor, transform: WinogradTransform) -> Tensor:
    """G g G^T for every (out, in) filter, as the (m+2)^2 groups of a grouped 1x1 conv: ((m+2)^2 * Cout, Cin, 1, 1).

    Inside a graph compiled with freezing this depends only on weights, so inductor computes it once, at compile
    time.
    """
    g = torch.tensor(transform.G, dtype=weight.dtype, device=weight.device)
    u = torch.einsum("ak,oikl,bl->aboi", g, weight, g)
    return u.reshape(-1, weight.shape[1], 1, 1)


def winograd_conv3x3(x: Tensor, weight: Tensor, bias: Tensor | None, padding: int,
                     transform: WinogradTransform = F2) -> Tensor:
    """`F.conv2d(x, weight, bias, padding=padding)` for a 3x3 kernel, stride 1, by Winograd F(m x m, 3 x 3).

    Works on the NHWC view, so it is fast for channels_last `x` and returns channels_last.
    """
    n, _, h, w = x.shape
    m, a = transform.tile, transform.tile + 2
    cout = weight.shape[0]
    ho, wo = h + 2 * padding - 2, w + 2 * padding - 2
    th, tw = -(-ho // m), -(-wo // m)  # tiles per side; the last ones run past the edge into zero padding
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, padding, m * tw + 2 - w - padding, padding, m * th + 2 - h - padding))
    # Input transform B^T d B: rows first (tile row i of every tile is a stride-m slice), then columns.
    rows = [xp[:, i:i + m * th:m] for i in range(a)]
    v = []
    for row_mix in (_combine(bt, rows) for bt in transform.BT):
        cols = [row_mix[:, :, j:j + m * tw:m] for j in range(a)]
        v += [_combine(bt, cols) for bt in transform.BT]
    # (m+2)^2 products (tiles x Cin) x (Cin x Cout) as one grouped 1x1 conv; group k is tile element k.
    prods = F.conv2d(torch.cat(v, dim=-1).permute(0, 3, 1, 2), winograd_filter(weight, transform), groups=a * a)
    pieces = prods.permute(0, 2, 3, 1).split(cout, dim=-1)  # a*a of (n, th, tw, cout)
    # Output transform A^T M A, again rows then columns; y[p][q] is output (p, q) of every tile.
    row_mix = [[_combine(at, list(pieces[a * i:a * i + a])) for at in transform.AT] for i in range(a)]
    y = [[_combine(at, [row_mix[i][q] for i in range(a)]) for q in range(m)] for at in transform.AT]
    y = torch.stack([torch.stack(row, dim=3) for row in y], dim=2)  # (n, th, m, tw, m, cout)
    y = y.reshape(n, m * th, m * tw, cout)[:, :ho, :wo]
    if bias is not None:
        y = y + bias
    return y.permute(0, 3, 1, 2)


class WinogradConv2d(nn.Conv2d):
    """A 3x3, stride-1 `nn.Conv2d` (same weights, same state_dict keys) that runs as Winograd when compiled.

    `min_size`, `max_size`: the output heights and widths where it pays (AMD EPYC, 2 threads, BENCHMARKS.md). On
    GoogLeNet's 7x7 maps the transforms cost what the products save; on Inception-v3's 147x147 and 71x71 stem maps
    the 16 products fill 16-22 MB buffers that the output transform reads back, and the model got slower. Only
    float32 takes this path: in bf16/fp16 the transforms' rounding would show.
    """

    def __init__(self, conv: nn.Conv2d, tile: int = 2, min_size: int = 14, max_size: int = 56):
        super().__init__(conv.in_channels, conv.out_channels, 3, padding=conv.padding, bias=conv.bias is not None,
                         device=conv.weight.device, dtype=conv.weight.dtype)
        self.transform = TRANSFORMS[tile]
        self.min_size, self.max_size = min_size, max_size
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            if conv.bias is not None:
                self.bias.copy_(conv.bias)
        self.weight.requires_grad_(conv.weight.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        out_sizes = [size + 2 * self.padding[0] - 2 for size in x.shape[-2:]]
        if (torch.compiler.is_compiling() and not torch.compiler.is_exporting() and x.dtype == torch.float32
                and min(out_sizes) >= self.min_size and max(out_sizes) <= self.max_size):
            return winograd_conv3x3(x, self.weight, self.bias, self.padding[0], self.transform)
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, winograd=F({self.transform.tile}x{self.transform.tile}, 3x3)"


def is_winograd_conv(conv: nn.Module) -> bool:
    """A plain 3x3 conv Winograd can replace: stride 1, no dilation, one group, the same zero padding on all sides."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros"
            and isinstance(conv.padding, tuple) and conv.padding[0] == conv.padding[1])
