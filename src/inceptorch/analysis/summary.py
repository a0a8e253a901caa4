"""Per-layer parameters and multiply-adds, laid out like Table 1 of arXiv:1409.4842.

Units: MACs are multiply-accumulates of convolutions and linear layers (the "ops" of Table 1); FLOPs = 2 x MACs.
Pools, normalisation and activations are not counted, as in the paper. "weights" counts conv and linear weights
only (Table 1's "params"); "params" counts every trainable parameter (biases and BN included).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..models.layers import Branches


@dataclass
class Row:
    name: str
    type: str
    patch_stride: str
    output: tuple[int, ...]
    depth: int
    columns: dict[str, int] = field(default_factory=dict)
    params: int = 0
    weights: int = 0
    macs: int = 0


@dataclass
class Summary:
    model: str
    input_size: int
    rows: list[Row]

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> dict:
        return {"model": self.model, "input_size": self.input_size,
                "units": {"macs": "multiply-adds per image", "flops": "2 x macs"},
                "rows": [asdict(r) for r in self.rows],
                "total": {"params": self.params, "weights": self.weights, "macs": self.macs,
                          "flops": 2 * self.macs}}


def row_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network's rows in forward order: its trunk stages and head, or its children for other models."""
    if hasattr(model, "stage_names"):
        names = list(model.stage_names) + [n for n in ("avgpool", "dropout", "fc") if hasattr(model, n)]
        return [(n, getattr(model, n)) for n in names]
    rows = []
    for name, child in model.named_children():
        if type(child) is nn.Sequential:  # a plain container of stages (timm's `features`): one row per stage
            rows.extend((f"{name}.{n}", c) for n, c in child.named_children())
        else:
            rows.append((name, child))
    return rows


def shape_model(name: str, **kwargs) -> nn.Module:
    """A registered model with allocated but uninitialised weights, for what needs shapes only (counting, drawing).

    Built on the meta device, then given CPU storage without initialisation: initialising Inception-v3 (a truncated
    normal per conv) or GoogLeNet (`trunc_normal_`) took seconds and is wasted here.
    """
    from ..models import create_model

    with torch.device("meta"):
        model = create_model(name, **kwargs)
    return model.to_empty(device="cpu")


@torch.no_grad()
def summarize(model: nn.Module, input_size: int | None = None, in_chans: int | None = None) -> Summary:
    """Run a batch of zero images through `model` (eval mode, no aux heads) and account for every row.

    Zero images carry every layer's output shape, which is all the accounting needs (MACs per image are the output
    size times the fan-in), and cost no arithmetic: the weights' values are never read.
    """
    cfg = getattr(model, "default_cfg", None)
    input_size = input_size or (cfg.input_size if cfg else 224)
    if in_chans is None:
        first_conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
        in_chans = first_conv.in_channels
    rows, hooks = [], []
    for name, module in row_modules(model):
        row = Row(name, layer_type(module), "", (), layer_depth(module), _columns(module),
                  params=sum(p.numel() for p in module.parameters()),
                  weights=sum(m.weight.numel() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))))
        rows.append(row)
        hooks.append(module.register_forward_hook(_shape_hook(row)))
        for leaf in module.modules():
            if isinstance(leaf, (nn.Conv2d, nn.Linear)):
                hooks.append(leaf.register_forward_hook(_mac_hook(row)))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(0, in_chans, input_size, input_size, device=device))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return Summary(getattr(model, "model_name", type(model).__name__), input_size, rows)


def _shape_hook(row: Row):
    def hook(module, inputs, output):
        row.output = tuple(output.shape[1:])
        row.patch_stride = _patch_stride(module, inputs[0])
    return hook


def _mac_hook(row: Row):
    def hook(module, inputs, output):
        per_image = math.prod(output.shape[1:])
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            row.macs += per_image * (module.in_channels // module.groups) * kh * kw
        else:
            row.macs += per_image * module.in_features
    return hook


def layer_type(module: nn.Module) -> str:
    if hasattr(module, "table_columns"):
        return "inception"
    names = {nn.MaxPool2d: "max pool", nn.AvgPool2d: "avg pool", nn.AdaptiveAvgPool2d: "avg pool",
             nn.Dropout: "dropout", nn.Linear: "linear", nn.LocalResponseNorm: "LRN", nn.Identity: "identity"}
    for cls, label in names.items():
        if isinstance(module, cls):
            return label
    if isinstance(module, nn.Conv2d) or (isinstance(module, nn.Sequential) and isinstance(module[0], nn.Conv2d)):
        return "conv"
    return type(module).__name__


def layer_depth(module: nn.Module) -> int:
    """Layers with parameters along the deepest path (Table 1's "depth"): branches in parallel, the rest in series."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return 1
    children = list(module.children())
    if not children:
        return 0
    depths = [layer_depth(c) for c in children]
    return max(depths) if isinstance(module, Branches) else sum(depths)


def _patch_stride(module: nn.Module, x: torch.Tensor) -> str:
    conv = module.conv if hasattr(module, "conv") and isinstance(module.conv, nn.Conv2d) else module
    if isinstance(conv, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and not hasattr(module, "table_columns"):
        k, s = conv.kernel_size, conv.stride
        k = k if isinstance(k, tuple) else (k, k)
        s = s[0] if isinstance(s, tuple) else s
        return f"{k[0]}x{k[1]}/{s}"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return f"{x.shape[-2]}x{x.shape[-1]}/1"
    return ""


def _columns(module: nn.Module) -> dict[str, int]:
    return module.table_columns() if hasattr(module, "table_columns") else {}
