"""Grad-CAM heat maps (Selvaraju et al. 2017, arXiv:1610.02391) through captum's `LayerGradCam`.

The map weighs a layer's activation maps by the gradient of a class's logit averaged over each map, keeps the
positive part, and is upsampled to the input: where the evidence for that class lies. The default layer is the
network's last spatial stage, for this family the last Inception block (`inception5b` of GoogLeNet, `Mixed_7c` of
Inception-v3, the last Inception-C of v4): the deepest map that still has a grid; `layer=` names another module
(`inceptorch summary MODEL` lists them).

captum rather than pytorch-grad-cam: captum is maintained by the PyTorch organisation, released with PyTorch,
ships a wheel and needs nothing beyond numpy and matplotlib, where pytorch-grad-cam ships only a source archive
and pulls in OpenCV.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from ..errors import UserError
from ..extras import require


def default_layer(model: nn.Module, input_size: int) -> str:
    """The last stage in the model's `feature_info` whose output is still a spatial map (more than 1x1)."""
    names = [info["module"] for info in getattr(model, "feature_info", [])]
    if not names:
        raise UserError(f"{type(model).__name__} lists no feature stages: give --layer")
    shapes: dict[str, tuple] = {}
    hooks = [model.get_submodule(n).register_forward_hook(
        lambda _m, _i, out, n=n: shapes.__setitem__(n, tuple(out.shape))) for n in names]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, getattr(model, "in_chans", 3), input_size, input_size,
                                     device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    spatial = [n for n in names if len(shapes.get(n, ())) == 4 and shapes[n][2] * shapes[n][3] > 1]
    if not spatial:
        raise UserError(f"{type(model).__name__} has no spatial feature map at {input_size} px: give --layer")
    return spatial[-1]


@dataclass
class HeatMap:
    map: np.ndarray  # [H, W] in [0, 1], at the input's size
    target: int      # the class index it explains
    layer: str


class GradCam:
    """Heat maps of `model` at `layer` (default: `default_layer`) for batches of normalised input."""

    def __init__(self, model: nn.Module, input_size: int, layer: str | None = None):
        captum_attr = require("captum.attr", "Grad-CAM heat maps")
        self.model = model.eval()
        self.layer = layer or default_layer(model, input_size)
        try:
            module = model.get_submodule(self.layer)
        except AttributeError:
            raise UserError(f"no layer {self.layer!r} in {getattr(model, 'model_name', type(model).__name__)} "
                            "(inceptorch summary MODEL lists them)") from None
        self.cam = captum_attr.LayerGradCam(model, module)
        self.interpolate = captum_attr.LayerAttribution.interpolate

    def __call__(self, x: Tensor, targets: list[int]) -> list[HeatMap]:
        x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            attr = self.cam.attribute(x, target=torch.as_tensor(targets, device=x.device), relu_attributions=True)
        up = self.interpolate(attr.detach().float(), tuple(x.shape[-2:]), interpolate_mode="bilinear")[:, 0]
        peak = up.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
        maps = (up.clamp_min(0) / peak).cpu().numpy()
        return [HeatMap(m, int(t), self.layer) for m, t in zip(maps, targets)]


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """`image` (the crop the model saw) with `heat` in matplotlib's 'jet' colours laid over it."""
    colormaps = require("matplotlib", "heat-map pictures").colormaps
    base = image.convert("RGB").resize(heat.shape[::-1], Image.BILINEAR)
    colours = (colormaps["jet"](heat)[..., :3] * 255).astype(np.uint8)
    mixed = (1 - alpha) * np.asarray(base, dtype=np.float32) + alpha * colours.astype(np.float32)
    return Image.fromarray(mixed.clip(0, 255).astype(np.uint8))


def save_overlay(image: Image.Image, heat: HeatMap, path: str | Path, caption: str = "") -> Path:
    """The overlay as a PNG beside the image itself, with a caption (class, probability) under both."""
    from ..plotting import figure, save

    fig, (left, right) = figure(6.4, 3.6, cols=2, what="heat-map pictures")
    left.imshow(image.convert("RGB").resize(heat.map.shape[::-1], Image.BILINEAR))
    right.imshow(overlay(image, heat.map))
    for ax in (left, right):
        ax.set_axis_off()
    left.set_title("input", fontsize=9)
    right.set_title(f"Grad-CAM at {heat.layer}", fontsize=9)
    if caption:
        fig.suptitle(caption, fontsize=10)
    save(fig, path)
    return Path(path)


def explain_images(member, images: list[Image.Image], targets: list[int], layer: str | None = None,
                   batch_size: int = 16) -> list[tuple[Image.Image, HeatMap]]:
    """(the center crop the model saw, its heat map for `targets[i]`) for each image, through an ensemble member
    (`evaluation.Member`: a torch model with its preprocessing)."""
    from ..evaluation.crops import normalize

    if not isinstance(member.model, nn.Module) or not any(True for _ in member.model.parameters()):
        raise UserError("heat maps need the PyTorch model: give the model file or run folder, not an ONNX file")
    size = member.model_cfg["input_size"]
    cam = GradCam(member.model, size, layer)
    transform = member.transform(1)
    device = next(member.model.parameters()).device
    out = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        crops = torch.cat([transform(img.convert("RGB")) for img in chunk])  # uint8 [B, 3, S, S]
        x = normalize(crops.to(device), member.model_cfg["mean"], member.model_cfg["std"])
        if member.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for crop, heat in zip(crops, cam(x, targets[start:start + batch_size])):
            out.append((Image.fromarray(crop.permute(1, 2, 0).cpu().numpy()), heat))
    return out
