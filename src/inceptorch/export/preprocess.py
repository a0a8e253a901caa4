"""The evaluation preprocessing a model expects, as plain data that travels with every exported artifact.

A config.json, an ONNX file's metadata and a quantized model all carry the same dict, so any runtime resizes,
crops and normalises exactly as the PyTorch path does: resize the short side to input_size / crop_pct, center-crop
input_size, scale to [0, 1], then subtract `mean` and divide by `std` per channel.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn


def preprocessing(model: nn.Module, input_size: int | None = None) -> dict:
    """The preprocessing dict of a model built by `create_model` (its `default_cfg`)."""
    cfg = model.default_cfg
    size = int(input_size or cfg.input_size)
    return {"input_size": size, "resize_size": round(size / cfg.crop_pct), "crop_pct": cfg.crop_pct,
            "interpolation": cfg.interpolation, "mean": list(cfg.mean), "std": list(cfg.std)}


def eval_transform(pre: dict) -> Callable:
    """PIL image -> normalised CHW float tensor, as `pre` describes."""
    from torchvision import transforms as T

    mode = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC,
            "nearest": T.InterpolationMode.NEAREST}[pre.get("interpolation", "bilinear")]
    return T.Compose([T.Resize(pre["resize_size"], interpolation=mode), T.CenterCrop(pre["input_size"]),
                      T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])
