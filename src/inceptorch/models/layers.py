"""Building blocks shared by the whole family: conv units, parallel branches, and the common classifier API."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .normalization import IMAGENET_MEAN, IMAGENET_STD


class ConvNormAct(nn.Sequential):
    """Conv -> (BatchNorm) -> ReLU.

    Submodule names are `conv`, `bn`, `act`, the layout torchvision's and timm's `BasicConv2d` use, so their
    weight files map onto ours key for key. Without BN the conv keeps its bias (the paper's GoogLeNet, NIN).
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int | tuple[int, int] = 1, stride: int = 1,
                 padding: int | tuple[int, int] | None = None, norm: bool = True, act: bool = True,
                 bn_eps: float = 1e-3):
        super().__init__()
        if padding is None:  # "same" padding for odd kernels, the only kind the family uses with padding
            k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = (k[0] // 2, k[1] // 2)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding, bias=not norm)
        if norm:
            self.bn = nn.BatchNorm2d(out_chs, eps=bn_eps)
        if act:
            self.act = nn.ReLU(inplace=True)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels


class Branches(nn.Module):
    """Parallel branches over one input whose outputs are concatenated along channels (the Inception module).

    Subclasses only create their branch submodules, in concatenation order; no block writes its own torch.cat.
    """

    stride = 1  # a grid reduction's is 2

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.children()], dim=1)

    @property
    def out_channels(self) -> int:
        return sum(_out_channels(branch) for branch in self.children())


def _out_channels(branch: nn.Module) -> int:
    """A branch's output channels: those of the block it ends in (a `Split`), else those of its last conv."""
    last = branch[-1] if isinstance(branch, nn.Sequential) and len(branch) else branch
    if isinstance(last, Branches):
        return last.out_channels
    return [m for m in branch.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


Kernel = int | tuple[int, int]


def conv_chain(in_chs: int, widths: Sequence[int], kernels: Sequence[Kernel], stride: int = 1,
               valid: bool = False, bn_eps: float = 1e-3) -> nn.Sequential:
    """`ConvNormAct` units in series, one branch of a module; `stride` and `valid` (padding 0) apply to the last one,
    the grid reduction. The BN epsilon is TF-slim's, kept by torchvision's and timm's ports of its weights."""
    assert len(widths) == len(kernels), (widths, kernels)
    layers, chs = [], in_chs
    for i, (out_chs, kernel) in enumerate(zip(widths, kernels)):
        last = i == len(widths) - 1
        layers.append(ConvNormAct(chs, out_chs, kernel, stride=stride if last else 1, padding=0 if last and valid
                                  else None, bn_eps=bn_eps))
        chs = out_chs
    return nn.Sequential(*layers)


class SplitWidths(NamedTuple):
    c1x3: int
    c3x1: int


class Split(Branches):
    """A 1x3 and a 3x1 conv side by side, concatenated: the expanded filter banks that end branches on the coarsest
    grid (arXiv:1512.00567 Figure 7, arXiv:1602.07261 Figure 6)."""

    def __init__(self, in_chs: int, w: SplitWidths, bn_eps: float = 1e-3):
        super().__init__()
        self.branch1x3 = ConvNormAct(in_chs, w.c1x3, (1, 3), bn_eps=bn_eps)
        self.branch3x1 = ConvNormAct(in_chs, w.c3x1, (3, 1), bn_eps=bn_eps)


class ModelOutput(NamedTuple):
    """What `forward_train` returns: the main logits and, in network order, the auxiliary heads' logits."""

    logits: Tensor
    aux_logits: tuple[Tensor, ...] = ()


def scale_width(channels: int, width: float) -> int:
    """Channels after a width multiplier, at least one."""
    return max(1, round(channels * width))


class InceptionNet(nn.Module):
    """timm's model contract over a trunk of named stages run in order, with optional auxiliary heads.

    Subclasses fill `self.stage_names` (trunk modules in forward order), `self.aux_taps` (stage name -> aux head
    name, the head reading that stage's output), `self.feature_info`, `self.num_features` and a `fc` classifier.
    `forward(x)` always returns logits; only `forward_train(x)` returns the auxiliary logits (a
    training-mode tuple is what breaks ordinary loops in torchvision).
    """

    stage_names: list[str]
    aux_taps: dict[str, str]
    feature_info: list[dict]
    num_features: int
    transform_input: bool = False

    def add_stage(self, name: str, module: nn.Module, chs: int, reduction: int, feature: bool = False) -> None:
        """Append a trunk stage; `feature` also describes its output (`chs`, total `reduction`) in feature_info."""
        self.add_module(name, module)
        self.stage_names.append(name)
        if feature:
            self.feature_info.append({"num_chs": chs, "reduction": reduction, "module": name})

    def _trunk(self, x: Tensor, with_aux: bool) -> tuple[Tensor, list[Tensor]]:
        if self.transform_input:
            x = transform_imagenet_to_unit_range(x)
        aux = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            head = self.aux_taps.get(name)
            if with_aux and head is not None and getattr(self, head, None) is not None:
                aux.append(getattr(self, head)(x))
        return x, aux

    def forward_features(self, x: Tensor) -> Tensor:
        return self._trunk(x, with_aux=False)[0]

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_train(self, x: Tensor) -> ModelOutput:
        features, aux = self._trunk(x, with_aux=True)
        return ModelOutput(self.forward_head(features), tuple(aux))

    def forward_intermediates(self, x: Tensor) -> list[Tensor]:
        """The feature maps named in `feature_info`, one per stride, shallowest first."""
        wanted = {info["module"] for info in self.feature_info}
        if self.transform_input:
            x = transform_imagenet_to_unit_range(x)
        maps = []
        for name in self.stage_names:
            x = getattr(self, name)(x)
            if name in wanted:
                maps.append(x)
        return maps

    @property
    def has_aux(self) -> bool:
        return any(getattr(self, head, None) is not None for head in self.aux_taps.values())

    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """New classifier (and new auxiliary classifiers) for `num_classes`; 0 gives pooled features."""
        self.num_classes = num_classes
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        for head in self.aux_taps.values():
            if getattr(self, head, None) is not None:
                getattr(self, head).reset_classifier(num_classes)


def transform_imagenet_to_unit_range(x: Tensor) -> Tensor:
    """Re-normalise ImageNet mean/std input to the [-1, 1] input that the TF-trained weights expect.

    Same arithmetic as torchvision's `transform_input`, which it forces on with its GoogLeNet/Inception-v3
    weights; here it is an explicit option, off by default.
    """
    scale = x.new_tensor([s / 0.5 for s in IMAGENET_STD]).view(1, 3, 1, 1)
    shift = x.new_tensor([(m - 0.5) / 0.5 for m in IMAGENET_MEAN]).view(1, 3, 1, 1)
    return x * scale + shift
