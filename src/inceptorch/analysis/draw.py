"""Draw a model as the papers draw it (arXiv:1409.4842 Figures 2-3): its stages in order, and each Inception
module as parallel columns of its branches (kernel, stride, output maps) joined by a filter concatenation.

The walk is generic: a `Branches` module is drawn as parallel columns of its children; a conv unit (one Conv2d
with its norm/activation, e.g. `ConvNormAct`) as one box; pools, LRN, dropout and linear layers as boxes; any other
container as its children in order. A family that builds its blocks from these pieces needs no drawing code.
Only matplotlib is used (no graphviz, no pyplot).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..extras import require
from ..models.layers import Branches
from .options import DRAW_FORMATS
from .summary import row_modules

# Layers drawn as part of the conv before them, never as boxes of their own.
_SILENT = (nn.BatchNorm2d, nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid, nn.SiLU, nn.GELU, nn.Identity, nn.Flatten)

# Geometry in inches.
BOX_W, BOX_H = 1.3, 0.27          # a layer inside a module
TOP_W = 2.9                        # a stage that is a single layer
VGAP, HGAP = 0.16, 0.1             # between layers in series / between parallel branches
PAD, TITLE_H, CONCAT_H = 0.08, 0.24, 0.22
COL_GAP, MARGIN, HEADER_H = 0.6, 0.3, 0.65
STAGE_GAP, SHAPE_W = 0.24, 0.7    # between stages / room right of a single-layer stage for its output shape
FONT = 6.5


@dataclass
class Box:
    label: str
    kind: str = "other"   # colour key: "1x1", "3x3", "5x5", "asym", "conv", "pool", "fc", "other"


@dataclass
class Seq:
    items: list


@dataclass
class Par:
    branches: list[Seq]
    out_chs: int | None = None


@dataclass
class Stage:
    name: str
    node: Box | Seq | Par
    shape: str = ""
    notes: list[str] = field(default_factory=list)
    repeat: int = 1
    last_name: str = ""


def collapse_repeats(stages: list[Stage]) -> list[Stage]:
    """Runs of identical consecutive stages (same layers, shape and notes) drawn once with a count, as the papers
    draw "5 x Inception-A" (arXiv:1602.07261 Figure 9)."""
    out: list[Stage] = []
    for stage in stages:
        prev = out[-1] if out else None
        if (prev is not None and not isinstance(stage.node, Box) and prev.node == stage.node
                and prev.shape == stage.shape and prev.notes == stage.notes):
            prev.repeat += 1
            prev.last_name = stage.name
        else:
            out.append(Stage(stage.name, stage.node, stage.shape, list(stage.notes)))
    return out


def _title(stage: Stage) -> str:
    if stage.repeat == 1:
        return stage.name
    return f"{stage.repeat} x  {stage.name} ... {stage.last_name}"


# --- describing a model --------------------------------------------------------------------------------------------

def describe(module: nn.Module) -> Box | Seq | Par | None:
    """The drawing tree of one module; None for layers that are drawn as part of another (BN, activations)."""
    if isinstance(module, Branches):
        branches = [_as_seq(describe(child)) for child in module.children()]
        out = getattr(module, "out_channels", None)
        try:
            out = int(out) if out is not None else None
        except (TypeError, ValueError, IndexError):
            out = None
        return Par(branches, out)
    conv = _conv_unit(module)
    if conv is not None:
        return _conv_box(conv, module)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s = _pair(module.kernel_size), _pair(module.stride)[0]
        kind = "max" if isinstance(module, nn.MaxPool2d) else "avg"
        return Box(f"{k[0]}x{k[1]} {kind} pool" + (f" /{s}" if s > 1 else ""), "pool")
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        size = _pair(module.output_size)
        kind = "avg" if isinstance(module, nn.AdaptiveAvgPool2d) else "max"
        label = f"global {kind} pool" if size == (1, 1) else f"adaptive {kind} pool to {size[0]}x{size[1]}"
        return Box(label, "pool")
    if isinstance(module, nn.Linear):
        return Box(f"FC {module.in_features} -> {module.out_features}", "fc")
    if isinstance(module, nn.Dropout):
        return Box(f"dropout {module.p:g}")
    if isinstance(module, nn.LocalResponseNorm):
        return Box(f"LRN (size {module.size})")
    if isinstance(module, _SILENT):
        return None
    children = [n for n in (describe(c) for c in module.children()) if n is not None]
    if not children:
        return Box(type(module).__name__)
    items = []
    for child in children:  # flatten nested series so that a module reads as one column
        items.extend(child.items if isinstance(child, Seq) else [child])
    return items[0] if len(items) == 1 else Seq(items)


def _as_seq(node: Box | Seq | Par | None) -> Seq:
    if node is None:
        return Seq([Box("identity")])
    return node if isinstance(node, Seq) else Seq([node])


def _conv_unit(module: nn.Module) -> nn.Conv2d | None:
    """The conv of a conv unit: exactly one Conv2d and otherwise only norm/activation layers."""
    if isinstance(module, nn.Conv2d):
        return module
    convs = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            convs.append(m)
        elif m is not module and not isinstance(m, _SILENT):
            return None
    return convs[0] if len(convs) == 1 else None


def _conv_box(conv: nn.Conv2d, unit: nn.Module) -> Box:
    k, s = _pair(conv.kernel_size), _pair(conv.stride)[0]
    out = conv.out_channels
    pieces = getattr(unit, "pieces", None)
    label = f"{k[0]}x{k[1]} conv" + (f" /{s}" if s > 1 else "")
    if pieces:  # a maxout unit: the conv makes units x pieces maps, the max keeps `units`
        label += f", {out // pieces} maxout x{pieces}"
    else:
        label += f", {out}"
    if conv.groups > 1:
        label += f" (groups {conv.groups})"
    if k[0] == k[1]:
        kind = {1: "1x1", 3: "3x3", 5: "5x5"}.get(k[0], "conv")
    else:
        kind = "asym"
    return Box(label, kind)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def model_stages(model: nn.Module, input_size: int | None = None) -> list[Stage]:
    """The model's rows (trunk stages and head) as drawing trees, with output shapes from one forward pass."""
    rows = row_modules(model)
    shapes = _output_shapes(model, rows, input_size)
    taps = {stage: head for stage, head in getattr(model, "aux_taps", {}).items()
            if getattr(model, head, None) is not None}
    stages = []
    for name, module in rows:
        if isinstance(module, nn.Dropout) and module.p == 0:
            continue  # a no-op (BN-Inception drops dropout): nothing to draw
        node = describe(module) or Box(type(module).__name__)
        notes = [f"auxiliary classifier {taps[name]} reads this output"] if name in taps else []
        scale = getattr(module, "scale", None)
        if isinstance(scale, float) and not isinstance(module, Branches):
            notes.append(f"residual: input + {scale:g} x branch output")
        stages.append(Stage(name, node, shapes.get(name, ""), notes))
    return stages


@torch.no_grad()
def _output_shapes(model: nn.Module, rows: list[tuple[str, nn.Module]], input_size: int | None) -> dict[str, str]:
    cfg = getattr(model, "default_cfg", None)
    size = input_size or (cfg.input_size if cfg else 224)
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    in_chans = first_conv.in_channels if first_conv is not None else 3
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    shapes, hooks = {}, []
    for name, module in rows:
        def hook(_m, _i, out, name=name):
            if isinstance(out, torch.Tensor):
                dims = tuple(out.shape[1:])
                shapes[name] = "x".join(str(d) for d in (*dims[1:], dims[0])) if len(dims) == 3 else str(dims[0])
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(0, in_chans, size, size, device=device))  # zero images: the shapes, no arithmetic
    except RuntimeError:
        shapes.clear()  # a model that cannot run at this size is still drawn, without shapes
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return shapes


# --- layout -------------------------------------------------------------------------------------------------------

def measure(node: Box | Seq | Par, top: bool = False) -> tuple[float, float]:
    if isinstance(node, Box):
        return (TOP_W if top else BOX_W), BOX_H
    if isinstance(node, Seq):
        sizes = [measure(n) for n in node.items]
        return max(w for w, _ in sizes), sum(h for _, h in sizes) + VGAP * (len(sizes) - 1)
    sizes = [measure(b) for b in node.branches]
    width = sum(w for w, _ in sizes) + HGAP * (len(sizes) - 1)
    return width, VGAP + max(h for _, h in sizes) + VGAP + CONCAT_H


def stage_size(stage: Stage) -> tuple[float, float]:
    if isinstance(stage.node, Box) and not stage.notes:
        return measure(stage.node, top=True)
    w, h = measure(stage.node)
    title_w = 0.075 * (len(_title(stage)) + len(stage.shape) + 4)
    notes_h = 0.16 * len(stage.notes)
    return max(w, title_w, 1.6) + 2 * PAD, TITLE_H + h + notes_h + 2 * PAD


def layout_columns(stages: list[Stage], max_height: float | None = None) -> list[list[int]]:
    """Columns of about equal height, as many as keep the page roughly square (one for short models)."""
    heights = [stage_size(s)[1] + STAGE_GAP for s in stages]
    total, tallest = sum(heights), max(heights)
    if max_height:
        return columns(stages, max(max_height, tallest))
    typical_w = max(stage_size(s)[0] for s in stages)
    n_cols = 1 if total <= 12 else max(1, round(math.sqrt(total / max(typical_w, 1.0) / 1.2)))
    limit = max(total / n_cols, tallest)
    cols = columns(stages, limit)
    while len(cols) > n_cols:  # greedy filling can spill a last short column: raise the limit until it fits
        limit += 0.25
        cols = columns(stages, limit)
    return cols


def columns(stages: list[Stage], max_height: float) -> list[list[int]]:
    """Stage indices per column: stages run top to bottom, then on into the next column."""
    cols, height = [[]], 0.0
    for i, stage in enumerate(stages):
        h = stage_size(stage)[1] + STAGE_GAP
        if cols[-1] and height + h > max_height:
            cols.append([])
            height = 0.0
        cols[-1].append(i)
        height += h
    return cols


# --- rendering ----------------------------------------------------------------------------------------------------

COLOURS = {"1x1": "#fdf1b8", "3x3": "#cfe2f6", "5x5": "#d3edcf", "asym": "#ecd5f2", "conv": "#f7dcc8",
           "pool": "#f6c9c4", "fc": "#dcdcdc", "other": "#ffffff", "concat": "#e6e6e6"}


class _Canvas:
    def __init__(self, ax):
        self.ax = ax

    def box(self, x: float, y: float, w: float, h: float, label: str, kind: str, bold: bool = False) -> None:
        from matplotlib.patches import FancyBboxPatch

        self.ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.04",
                                         facecolor=COLOURS.get(kind, "#ffffff"), edgecolor="#555555", lw=0.6))
        self.ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=FONT,
                     fontweight="bold" if bold else "normal")

    def line(self, x0: float, y0: float, x1: float, y1: float, arrow: bool = True) -> None:
        if arrow:
            self.ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                             arrowprops={"arrowstyle": "-|>", "lw": 0.6, "color": "#444444",
                                         "shrinkA": 0, "shrinkB": 0, "mutation_scale": 6})
        else:
            self.ax.plot([x0, x1], [y0, y1], color="#444444", lw=0.6)

    def node(self, node: Box | Seq | Par, x: float, y: float, w: float) -> None:
        """Draw `node` centred in the column [x, x + w], its top at y (y grows downwards)."""
        nw, nh = measure(node)
        cx = x + w / 2
        if isinstance(node, Box):
            self.box(cx - nw / 2, y, nw, nh, node.label, node.kind)
        elif isinstance(node, Seq):
            for i, item in enumerate(node.items):
                ih = measure(item)[1]
                if i:
                    self.line(cx, y - VGAP, cx, y)
                self.node(item, cx - nw / 2, y, nw)
                y += ih + VGAP
        else:
            left = cx - nw / 2
            body_h = max(measure(b)[1] for b in node.branches)
            concat_y = y + VGAP + body_h + VGAP
            for branch in node.branches:
                bw, bh = measure(branch)
                bx = left + bw / 2
                self.line(cx, y, bx, y + VGAP)                  # fan-out from the module input
                self.node(branch, left, y + VGAP, bw)
                self.line(bx, y + VGAP + bh, bx, concat_y)      # into the filter concatenation
                left += bw + HGAP
            label = "filter concatenation" + (f", {node.out_chs}" if node.out_chs else "")
            self.box(cx - nw / 2, concat_y, nw, CONCAT_H, label, "concat")

    def stage(self, stage: Stage, x: float, y: float, w: float) -> None:
        sw, sh = stage_size(stage)
        left = x + (w - sw) / 2
        if isinstance(stage.node, Box) and not stage.notes:
            label = f"{stage.name}: {stage.node.label}"
            self.box(left, y, sw, sh, label, stage.node.kind)
            if stage.shape:
                self.ax.text(left + sw + 0.05, y + sh / 2, stage.shape, ha="left", va="center",
                             fontsize=FONT - 0.5, color="#666666")
            return
        from matplotlib.patches import FancyBboxPatch

        self.ax.add_patch(FancyBboxPatch((left, y), sw, sh, boxstyle="round,pad=0,rounding_size=0.06",
                                         facecolor="#f7f7f7", edgecolor="#999999", lw=0.8, ls="--"))
        title = _title(stage) + (f"   {stage.shape}" if stage.shape else "")
        self.ax.text(left + PAD, y + PAD + TITLE_H / 2 - 0.02, title, ha="left", va="center",
                     fontsize=FONT + 1, fontweight="bold")
        inner_y = y + PAD + TITLE_H
        self.node(stage.node, left + PAD, inner_y, sw - 2 * PAD)
        note_y = inner_y + measure(stage.node)[1] + 0.1
        for note in stage.notes:
            self.ax.text(left + PAD, note_y, note, ha="left", va="center", fontsize=FONT - 0.5,
                         color="#aa3300", style="italic")
            note_y += 0.16


def subtitle(model: nn.Module, input_size: int | None) -> str:
    cfg = getattr(model, "default_cfg", None)
    size = input_size or (cfg.input_size if cfg else 224)
    params = sum(p.numel() for p in model.parameters())
    heads = [getattr(model, h, None) for h in getattr(model, "aux_taps", {}).values()]
    aux = sum(p.numel() for head in heads if head is not None for p in head.parameters())
    without = f" ({params - aux:,} without the auxiliary classifiers)" if aux else ""
    stats = f"{params:,} parameters{without}; output shapes (HxWxC) at {size}x{size} input"
    return f"{cfg.paper}\n{stats}" if cfg is not None and cfg.paper else stats


def draw_model(model: nn.Module, output: str | Path, title: str | None = None, input_size: int | None = None,
               max_height: float | None = None, dpi: int = 150, expand: bool = False) -> Path:
    """Write the drawing of `model` to `output` (.svg, .png or .pdf); returns the path.

    Runs of identical blocks are drawn once with their count unless `expand`.
    """
    output = Path(output)
    if output.suffix.lower() not in DRAW_FORMATS:
        raise UserError(f"cannot draw to {output.name!r}: the file name must end in {', '.join(DRAW_FORMATS)}")
    stages = model_stages(model, input_size)
    if not expand:
        stages = collapse_repeats(stages)
    if not stages:
        raise UserError("the model has no layers to draw")
    cols = layout_columns(stages, max_height)
    col_w = [max(stage_size(stages[i])[0] for i in col) + SHAPE_W for col in cols]
    col_h = [sum(stage_size(stages[i])[1] + STAGE_GAP for i in col) for col in cols]
    width = sum(col_w) + COL_GAP * (len(cols) - 1) + 2 * MARGIN
    height = max(col_h) + HEADER_H + 2 * MARGIN
    header = subtitle(model, input_size)
    width = max(width, 2 * MARGIN + 0.055 * max(len(line) for line in header.split("\n")))

    matplotlib = require("matplotlib", "drawing a model")
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    with matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):  # SVG text stays text
        fig = Figure(figsize=(width, height))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
        canvas = _Canvas(ax)
        name = title or getattr(model, "model_name", type(model).__name__)
        ax.text(MARGIN, MARGIN + 0.05, name, ha="left", va="center", fontsize=FONT + 5, fontweight="bold")
        ax.text(MARGIN, MARGIN + 0.2, header, ha="left", va="top", fontsize=FONT, color="#444444",
                linespacing=1.4)
        x = MARGIN
        for c, col in enumerate(cols):
            y = MARGIN + HEADER_H
            for j, i in enumerate(col):
                sh = stage_size(stages[i])[1]
                if j:
                    canvas.line(x + (col_w[c] - SHAPE_W) / 2, y - STAGE_GAP, x + (col_w[c] - SHAPE_W) / 2, y)
                canvas.stage(stages[i], x, y, col_w[c] - SHAPE_W)
                y += sh + STAGE_GAP
            if c + 1 < len(cols):
                ax.text(x + (col_w[c] - SHAPE_W) / 2, y, "continues in the next column", ha="center", va="top",
                        fontsize=FONT, color="#666666", style="italic")
            x += col_w[c] + COL_GAP
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=dpi)
    return output
