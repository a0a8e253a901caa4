"""The inference path: fold BN into the convs, merge sibling 1x1 convs, keep channels_last, and (on
the CPU) run the 1x1 convs as matrix products.

Generic over any model built from `ConvNormAct` and `Branches` (models/layers.py): nothing here names a model.
Every transformation is an exact re-parametrisation in eval mode (up to float rounding), so the optimized model's
logits equal the plain model's within 1e-5 in fp32 (tests/test_optimize.py).
"""
from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.layers import Branches, ConvNormAct
from .cpuinfo import cpu_vendor
from .winograd import WinogradConv2d, is_winograd_conv


def fold_batchnorm(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv (with bias) computing bn(conv(x)) with the BN's running statistics: w' = w * g/s, b' = (b - m) g/s + beta.

    The arithmetic is done in float64 and cast back, so that folding adds no rounding of its own.
    """
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                      device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        w, var, mean = conv.weight.double(), bn.running_var.double(), bn.running_mean.double()
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(var)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(var)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(var)
        scale = gamma / torch.sqrt(var + bn.eps)
        fused.weight.copy_((w * scale.view(-1, 1, 1, 1)).to(conv.weight.dtype))
        fused.bias.copy_(((bias - mean) * scale + beta).to(conv.weight.dtype))
    return fused


def fold_all_batchnorms(model: nn.Module) -> int:
    """Fold the BN of every `ConvNormAct` into its conv, in place; returns how many were folded."""
    folded = 0
    for unit in model.modules():
        if isinstance(unit, ConvNormAct) and isinstance(getattr(unit, "bn", None), nn.BatchNorm2d):
            unit.conv = fold_batchnorm(unit.conv, unit.bn)
            del unit.bn  # nn.Sequential runs what is left: conv -> act
            folded += 1
    return folded


class MergedBranches(nn.Module):
    """A `Branches` module whose branches that open with a 1x1 conv on the block input share one conv.

    GoogLeNet's Inception block (paper Figure 2b) reads its input with three 1x1 convs (#1x1, #3x3 reduce,
    #5x5 reduce); here they are one conv with 64+96+16 outputs (3a) whose output is split, which turns three
    small GEMMs into one larger one and reads the input once. Branches that do not open with a 1x1 conv (the
    pool branch) run unchanged on the input. Outputs are concatenated in the original branch order.
    """

    def __init__(self, stem: nn.Module, splits: list[int], branches: list[nn.Module], piece_index: list[int]):
        super().__init__()
        self.stem = stem  # the merged 1x1 conv (+ its activation)
        self.splits = splits
        self.branches = nn.ModuleList(branches)  # what follows the merged conv, or the whole unmerged branch
        self.piece_index = piece_index  # per branch: which split of the stem it reads, or -1 for the block input

    def forward(self, x: Tensor) -> Tensor:
        pieces = torch.split(self.stem(x), self.splits, dim=1)
        outs = []
        for i, branch in enumerate(self.branches):
            k = self.piece_index[i]
            outs.append(branch(pieces[k] if k >= 0 else x))
        # torch.cat keeps channels_last when every input is channels_last (tests/test_optimize.py checks it).
        return torch.cat(outs, dim=1)


def _is_plain_1x1(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
            and conv.padding in ((0, 0), 0) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")


def _opening_1x1(branch: nn.Module) -> tuple[ConvNormAct, nn.Module] | None:
    """The branch's first unit if it is a mergeable 1x1 `ConvNormAct`, with the rest of the branch."""
    if isinstance(branch, ConvNormAct):
        head, rest = branch, nn.Identity()
    elif isinstance(branch, nn.Sequential) and len(branch) > 0 and isinstance(branch[0], ConvNormAct):
        head, rest = branch[0], (branch[1:] if len(branch) > 1 else nn.Identity())
    else:
        return None
    # A BN that was not folded normalises per channel with its own statistics: still mergeable only once folded.
    return (head, rest) if _is_plain_1x1(head.conv) and not hasattr(head, "bn") else None


def _act_key(unit: ConvNormAct) -> tuple:
    act = getattr(unit, "act", None)
    return (type(act), getattr(act, "inplace", None)) if act is not None else (None,)


def merge_branches(block: Branches) -> nn.Module:
    """`block` as a `MergedBranches` when at least two branches open with compatible 1x1 convs, else unchanged.

    Only the plain layout (children = branches, `Branches.forward`) is read as branches; a subclass with its own
    forward is left alone.
    """
    if type(block).forward is not Branches.forward:
        return block
    branches = list(block.children())
    opened = {i: _opening_1x1(b) for i, b in enumerate(branches)}
    opened = {i: o for i, o in opened.items() if o is not None}
    groups: dict[tuple, list[int]] = {}
    for i, (head, _) in opened.items():  # same activation, same dtype/device: one conv can serve them all
        groups.setdefault((_act_key(head), head.conv.weight.dtype, head.conv.weight.device), []).append(i)
    merge = max(groups.values(), key=len, default=[])
    if len(merge) < 2:
        return block
    heads = [opened[i][0] for i in merge]
    first = heads[0].conv
    conv = nn.Conv2d(first.in_channels, sum(h.conv.out_channels for h in heads), 1, bias=True,
                     device=first.weight.device, dtype=first.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(torch.cat([h.conv.weight for h in heads]))
        conv.bias.copy_(torch.cat([h.conv.bias if h.conv.bias is not None else torch.zeros(h.conv.out_channels,
                                   device=first.weight.device, dtype=first.weight.dtype) for h in heads]))
    stem = nn.Sequential(conv) if getattr(heads[0], "act", None) is None else nn.Sequential(conv, heads[0].act)
    piece = {i: k for k, i in enumerate(merge)}
    return MergedBranches(stem, [h.conv.out_channels for h in heads],
                          [opened[i][1] if i in piece else b for i, b in enumerate(branches)],
                          [piece.get(i, -1) for i in range(len(branches))])


def merge_all_branches(model: nn.Module) -> int:
    """Replace every mergeable `Branches` module of `model` in place; returns how many were merged."""
    merged = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Branches):
                new = merge_branches(child)
                if new is not child:
                    setattr(parent, name, new)
                    merged += 1
    return merged


class PointwiseConvAsMatmul(nn.Module):
    """A 1x1 convolution (stride 1, no padding, one group) computed as one matrix product over the NHWC view.

    In channels_last memory a 1x1 conv is exactly a GEMM, (N*H*W, Cin) x (Cin, Cout): `F.linear` on the
    permuted view reads the input and writes the output without a copy, and the output, permuted back, is
    channels_last again. On the CPU this reaches MKL's GEMM (pre-packed under inductor's freezing), which at batch 1
    is faster than the oneDNN convolution on GoogLeNet's 7x7 and 14x14 maps, equal at 28x28 (BENCHMARKS.md).
    """

    kernel_size = (1, 1)

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.weight = nn.Parameter(conv.weight.detach().flatten(1).clone(), requires_grad=conv.weight.requires_grad)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(),
                                                                requires_grad=conv.bias.requires_grad)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


def replace_modules(model: nn.Module, matches: Callable[[nn.Module], bool],
                    make: Callable[[nn.Module], nn.Module]) -> int:
    """Replace every submodule for which `matches` holds by `make(submodule)`, in place; returns how many."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if matches(child):
                setattr(parent, name, make(child))
                replaced += 1
    return replaced


def pointwise_convs_as_matmuls(model: nn.Module) -> int:
    """Replace every plain 1x1 conv of `model` by a `PointwiseConvAsMatmul`, in place; returns how many."""
    return replace_modules(model, _is_plain_1x1, PointwiseConvAsMatmul)


def drop_aux_heads(model: nn.Module) -> None:
    """Remove the auxiliary classifiers: `forward` never runs them, and inference should not hold their weights."""
    for head in getattr(model, "aux_taps", {}).values():
        if getattr(model, head, None) is not None:
            setattr(model, head, None)


def optimize(model: nn.Module, channels_last: bool = True, fold_bn: bool = True, inplace: bool = False,
             matmul_1x1: bool | None = None, winograd: bool | None = None) -> nn.Module:
    """An inference copy of `model`: eval mode, aux heads dropped, BN folded, sibling 1x1 convs merged, NHWC.

    `forward(x)` still returns logits and takes NCHW or NHWC input (a channels_last weight makes the first conv
    produce channels_last output either way). Merging needs folded BNs: `fold_bn=False` keeps the BNs and every
    branch apart.
    `matmul_1x1`: run the 1x1 convs as matrix products (`PointwiseConvAsMatmul`); None (the default) does so where
    it was measured faster: a model on the CPU of an Intel machine (GoogLeNet on an Intel Xeon, BENCHMARKS.md: eager
    1.14x -> 1.23x over torchvision in 2 + 2 runs, compiled 1.60x -> 1.62-1.70x in 2 + 11 runs, every run with GEMMs
    above every run without). PyTorch's CPU GEMM is MKL's, which on AMD EPYC ran these products at 72-84 GMAC/s
    against oneDNN's 150-200, so there the convs stay.
    `winograd`: 3x3 stride-1 convs become `WinogradConv2d`, which compiled (`torch.compile`) computes them as
    Winograd F(2x2, 3x3) on output maps from 14x14 to 56x56, and eager as before; None (the default): on for a CPU
    model. In twelve one-process A/Bs of the compiled GoogLeNet on an AMD EPYC (BENCHMARKS.md, interleaved against
    the direct 3x3 convs) it was faster in nine, by 2.9% on average (paired t = 3.0, 11 degrees of freedom);
    Inception-v3 timed the same either way.
    The result has no data-dependent control flow or host syncs: it can be captured in a CUDA graph and compiled
    with `torch.compile(fullgraph=True)`.
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    drop_aux_heads(model)
    if fold_bn:
        fold_all_batchnorms(model)
        merge_all_branches(model)
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if matmul_1x1 is None:
        matmul_1x1 = on_cpu and cpu_vendor() == "GenuineIntel"
    if matmul_1x1:
        pointwise_convs_as_matmuls(model)  # after merging: the merged stems are 1x1 convs too
    if winograd is None:
        winograd = on_cpu
    if winograd:
        replace_modules(model, is_winograd_conv, WinogradConv2d)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    for p in model.parameters():
        p.requires_grad_(False)
    return model
