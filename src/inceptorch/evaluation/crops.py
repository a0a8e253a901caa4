"""Test-time crops as data: each protocol is a list of boxes, so the geometry can be checked exactly.

A `Crop` says: resize the image to `resize` (width, height), cut `box` (left, top, right, bottom) out of it, scale
the cut to the model's square input if it is not already that size, and mirror it if `mirror`. Three protocols:
- 1 crop: shorter side to floor(input_size / crop_pct), center crop (timm's eval transform; the model's ModelCfg).
- 10 crops: shorter side to 8/7 of the crop size (256 for 224, the usual protocol), the 4 corners and the center,
  and their mirrors.
- 144 crops (GoogLeNet paper, section 7): shorter side to 256, 288, 320 and 352 for a 224 crop (8/7 .. 11/7 of
  the crop size in general); the left, center and right squares (top, center, bottom for portrait images); from
  each square the 4 corner crops, the center crop and the whole square resized to the crop size; and the mirrors of
  all: 4 scales x 3 squares x 6 views x 2 = 144.
Softmax probabilities are averaged over the crops by the caller (`evaluate`, `predict`).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..data.uint8_batches import normalize_uint8
from .options import PROTOCOLS

PAPER_SCALES = (8, 9, 10, 11)  # sevenths of the crop size: 256, 288, 320, 352 for 224 (paper section 7)
_INTERPOLATIONS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
                   "lanczos": Image.LANCZOS, "box": Image.BOX, "hamming": Image.HAMMING}


class Crop(NamedTuple):
    """One view of an image: resize to `resize`, cut `box`, scale the cut to the crop size, mirror if asked."""

    resize: tuple[int, int]            # (width, height) of the resized image
    box: tuple[int, int, int, int]     # (left, top, right, bottom) in the resized image, right/bottom exclusive
    mirror: bool


def resize_shorter(width: int, height: int, shorter: int) -> tuple[int, int]:
    """The (width, height) with the shorter side at `shorter` and the aspect ratio kept (long side rounded)."""
    if width <= height:
        return shorter, max(shorter, round(height * shorter / width))
    return max(shorter, round(width * shorter / height)), shorter


def _corners_and_center(left: int, top: int, side_w: int, side_h: int, size: int) -> list[tuple[int, int, int, int]]:
    """Top-left, top-right, bottom-left, bottom-right and center `size` boxes inside a region (center rounds down)."""
    right, bottom = left + side_w - size, top + side_h - size
    cx, cy = left + (side_w - size) // 2, top + (side_h - size) // 2
    return [(x, y, x + size, y + size) for x, y in ((left, top), (right, top), (left, bottom), (right, bottom),
                                                    (cx, cy))]


def one_crop(width: int, height: int, crop_size: int, crop_pct: float = 0.875) -> list[Crop]:
    """The single center crop of the model's eval transform: shorter side to floor(size / crop_pct)."""
    resize = resize_shorter(width, height, max(crop_size, math.floor(crop_size / crop_pct)))
    return [Crop(resize, _corners_and_center(0, 0, *resize, crop_size)[4], False)]


def ten_crops(width: int, height: int, crop_size: int) -> list[Crop]:
    """4 corners + center of the image with its shorter side at 8/7 of the crop size, then the same 5 mirrored."""
    resize = resize_shorter(width, height, round(crop_size * PAPER_SCALES[0] / 7))
    boxes = _corners_and_center(0, 0, *resize, crop_size)
    return [Crop(resize, box, mirror) for mirror in (False, True) for box in boxes]


def paper_scales(crop_size: int) -> list[int]:
    """Shorter sides of the 144-crop protocol: 256, 288, 320, 352 for 224; 8/7 .. 11/7 of other crop sizes."""
    return [round(crop_size * k / 7) for k in PAPER_SCALES]


def squares(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The left, center and right squares of a landscape image (top, center, bottom of a portrait one)."""
    side = min(width, height)
    if width >= height:
        return [(x, 0, x + side, side) for x in (0, (width - side) // 2, width - side)]
    return [(0, y, side, y + side) for y in (0, (height - side) // 2, height - side)]


def paper_144_crops(width: int, height: int, crop_size: int) -> list[Crop]:
    """GoogLeNet's 144 crops (arXiv:1409.4842 section 7), ordered scale, square, view, then unmirrored/mirrored.

    Views inside a square: top-left, top-right, bottom-left, bottom-right, center, the whole square (resized).
    A square image has three identical squares; they are kept so that every image gets exactly 144 crops.
    """
    crops = []
    for shorter in paper_scales(crop_size):
        resize = resize_shorter(width, height, shorter)
        for square in squares(*resize):
            left, top, right, bottom = square
            views = _corners_and_center(left, top, right - left, bottom - top, crop_size) + [square]
            crops += [Crop(resize, box, mirror) for box in views for mirror in (False, True)]
    return crops


def crop_boxes(protocol: int, width: int, height: int, crop_size: int, crop_pct: float = 0.875) -> list[Crop]:
    """The crops of `protocol` (1, 10 or 144) for an image of `width` x `height`."""
    if protocol == 1:
        return one_crop(width, height, crop_size, crop_pct)
    if protocol == 10:
        return ten_crops(width, height, crop_size)
    if protocol == 144:
        return paper_144_crops(width, height, crop_size)
    raise ValueError(f"crops must be one of {PROTOCOLS}, not {protocol}")


def render_crops(image: Image.Image, crops: list[Crop], crop_size: int, interpolation: str = "bilinear") -> Tensor:
    """The crops of `image` as one uint8 tensor [len(crops), 3, crop_size, crop_size] (normalise with `normalize`).

    Each distinct resize is done once; corner and center crops are slices of it, mirrors are flips of a cut
    already made, and only cuts of another size (the whole square) are resized again.
    """
    resample = _resample(interpolation)
    image = image.convert("RGB")
    resized: dict[tuple[int, int], Image.Image] = {}
    cuts: dict[tuple, Tensor] = {}
    views = []
    for crop in crops:
        key = (crop.resize, crop.box)
        if key not in cuts:
            if crop.resize not in resized:
                resized[crop.resize] = image.resize(crop.resize, resample)
            cut = resized[crop.resize].crop(crop.box)
            if cut.size != (crop_size, crop_size):
                cut = cut.resize((crop_size, crop_size), resample)
            cuts[key] = torch.from_numpy(np.array(cut, dtype=np.uint8)).permute(2, 0, 1)
        views.append(cuts[key].flip(-1) if crop.mirror else cuts[key])
    return torch.stack(views)


def normalize(x: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """uint8 crops [N, 3, H, W] -> float, scaled to [0, 1], minus mean, over std (per channel): `normalize_uint8`,
    the arithmetic of the training and validation batches and of `eval_transform`."""
    mean_t = torch.tensor(mean, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=x.device).view(1, -1, 1, 1)
    return normalize_uint8(x, mean_t, std_t)


class CropTransform:
    """image -> uint8 crops of one protocol for one model config; picklable, so DataLoader workers can run it."""

    def __init__(self, protocol: int, crop_size: int, crop_pct: float = 0.875, interpolation: str = "bilinear"):
        if protocol not in PROTOCOLS:
            raise ValueError(f"crops must be one of {PROTOCOLS}, not {protocol}")
        _resample(interpolation)
        self.protocol, self.crop_size, self.crop_pct, self.interpolation = protocol, crop_size, crop_pct, interpolation

    def __call__(self, image: Image.Image) -> Tensor:
        crops = crop_boxes(self.protocol, image.width, image.height, self.crop_size, self.crop_pct)
        return render_crops(image, crops, self.crop_size, self.interpolation)

    def key(self) -> tuple:
        return self.protocol, self.crop_size, self.crop_pct, self.interpolation


def crop_tensor(image: Image.Image, protocol: int, model_cfg: dict) -> Tensor:
    """The normalised float crops [n, 3, S, S] of one image for a model whose ModelCfg (as a dict) is `model_cfg`."""
    transform = CropTransform(protocol, model_cfg["input_size"], model_cfg.get("crop_pct", 0.875),
                              model_cfg.get("interpolation", "bilinear"))
    return normalize(transform(image), model_cfg["mean"], model_cfg["std"])


def _resample(interpolation: str) -> int:
    try:
        return _INTERPOLATIONS[interpolation]
    except KeyError:
        raise ValueError(f"unknown interpolation {interpolation!r}; known: {', '.join(_INTERPOLATIONS)}") from None
