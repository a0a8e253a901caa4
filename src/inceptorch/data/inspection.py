"""A hard, real-image benchmark shaped like industrial inspection data: defect severity on gray surfaces.

Each image is a crop of a real grayscale photograph of a surface that scikit-image ships inside its wheel (brick,
grass, gravel, the moon's surface), with its own brightness and contrast, and thin dark cracks and dark spots
drawn onto it; the class is the severity. What makes it hard is what makes inspection data hard:
- imbalance: most parts are fine (`0_ok` is 55% of the images), the worst defects are rare;
- subtle differences: `1_minor` and `2_major` differ in the length and faintness of 1 px cracks on a busy texture
  whose own edges look like cracks; the moon's craters and the gravel's shadows look like spots;
- fine detail: a crack is 1 px wide at the written 192 px; at 64 px input it is a faint smear, at 112 px it
  is still there but thin;
- grayscale, no canonical orientation: a crack runs any way and the surfaces have no "up".

Severities, as data: each row gives the share of images, how many cracks, their length (fraction of the image
side), their darkness (gray levels), and whether a dark spot is added. The names sort in the order of severity, so
the folder and the embedded set number the classes alike (class indices are sorted names everywhere).

    inceptorch train --model googlenet_bn --data inspection --input-size 112 ...     (generated in memory)
    python -m inceptorch.data.inspection DIR                                        (written as PNG files)

The same seed gives the same images on every machine (numpy's PCG64 and PIL's drawing are deterministic).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..extras import require


class Severity(NamedTuple):
    name: str
    share: float                      # of all images
    cracks: tuple[int, int]           # how many, inclusive range
    length: tuple[float, float]       # each crack's length, as a fraction of the image side
    darkness: tuple[float, float]     # how much darker than the surface, in gray levels (0-255)
    spot: bool                        # a dark inactive region as well


SEVERITIES = (
    #         name         share  cracks   length        darkness     spot
    Severity("0_ok",       0.55,  (0, 0),  (0.0, 0.0),   (0, 0),      False),
    Severity("1_minor",    0.15,  (1, 1),  (0.12, 0.30), (20, 35),    False),
    Severity("2_major",    0.12,  (1, 2),  (0.35, 0.70), (25, 45),    False),
    Severity("3_critical", 0.18,  (1, 3),  (0.35, 0.80), (35, 60),    True),
)
SURFACES = ("brick", "grass", "gravel", "moon")  # 512 x 512 gray photographs in scikit-image's wheel
SIZE = 192           # written image side (px)
COUNT = 2000         # images in the embedded set (`--val-split`, 0.2 by default, of each class validate)
VAL_FRACTION = 0.2


def surfaces() -> dict[str, np.ndarray]:
    data = require("skimage.data", "the inspection benchmark's surfaces")
    return {name: getattr(data, name)() for name in SURFACES}


def _crack(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int, length: float) -> None:
    """A crack as real ones run: a random walk of short segments that bends a little at each step, 1 px wide,
    sometimes with a short branch."""
    x, y = rng.uniform(0.1, 0.9, 2) * size
    angle = rng.uniform(0, 2 * math.pi)
    steps = max(2, int(length * size / 6))
    points = [(x, y)]
    for _ in range(steps):
        angle += rng.normal(0, 0.35)
        x, y = x + 6 * math.cos(angle), y + 6 * math.sin(angle)
        points.append((x, y))
    draw.line(points, fill=255, width=2)
    if rng.random() < 0.3:  # a branch from the middle, half as long
        bx, by = points[len(points) // 2]
        b_angle = angle + rng.choice([-1, 1]) * rng.uniform(0.5, 1.2)
        branch = [(bx, by)]
        for _ in range(steps // 3):
            b_angle += rng.normal(0, 0.35)
            bx, by = bx + 6 * math.cos(b_angle), by + 6 * math.sin(b_angle)
            branch.append((bx, by))
        draw.line(branch, fill=255, width=2)


def _spot(draw: ImageDraw.ImageDraw, rng: np.random.Generator, size: int) -> None:
    """A dark inactive region: an ellipse covering 1-4% of the image."""
    area = rng.uniform(0.01, 0.04) * size * size
    ratio = rng.uniform(0.4, 1.0)
    a = math.sqrt(area / (math.pi * ratio))
    cx, cy = rng.uniform(0.15, 0.85, 2) * size
    draw.ellipse((cx - a, cy - a * ratio, cx + a, cy + a * ratio), fill=255)


def make_image(rng: np.random.Generator, surface: np.ndarray, severity: Severity, size: int = SIZE) -> Image.Image:
    """One image: a random crop of `surface` (40-100% of its side), its own exposure, and `severity`'s defects."""
    side = int(rng.uniform(0.4, 1.0) * min(surface.shape))
    y, x = (int(rng.integers(0, d - side + 1)) for d in surface.shape)
    crop = Image.fromarray(surface[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
    crop = crop.rotate(90 * int(rng.integers(4)))
    pixels = np.asarray(crop, dtype=np.float32)
    # Exposure differs from part to part: contrast 0.5-1.1 around a mean of 90-170.
    pixels = (pixels - pixels.mean()) * rng.uniform(0.4, 0.9) + rng.uniform(90, 170)
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    cracks = int(rng.integers(severity.cracks[0], severity.cracks[1] + 1))
    for _ in range(cracks):
        _crack(draw, rng, size, rng.uniform(*severity.length))
    if severity.spot:
        _spot(draw, rng, size)
    if cracks or severity.spot:
        # A slight blur: a real crack's edge is soft, and a 1 px line then survives a resize as a faint one.
        soft = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32) / 255.0
        pixels -= soft * rng.uniform(*severity.darkness)
    pixels += rng.normal(0, 3.0, pixels.shape)  # sensor noise
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8), mode="L")


def make_inspection(count: int = COUNT, seed: int = 0, size: int = SIZE) -> list[tuple[Image.Image, int]]:
    """`count` (image, label) pairs, the labels in SEVERITIES' shares, in a shuffled order."""
    rng = np.random.default_rng(seed)
    sources = list(surfaces().values())
    counts = [round(s.share * count) for s in SEVERITIES]
    counts[0] += count - sum(counts)
    labels = rng.permutation(np.repeat(np.arange(len(SEVERITIES)), counts))
    return [(make_image(rng, sources[int(rng.integers(len(sources)))], SEVERITIES[label], size), int(label))
            for label in labels]


def class_names() -> list[str]:
    return [s.name for s in SEVERITIES]


def write_inspection(root: str | Path, count: int = COUNT, seed: int = 0, size: int = SIZE,
                     val_fraction: float = VAL_FRACTION) -> Path:
    """The set as an ImageFolder tree of PNG files, ROOT/train/<severity>/*.png and ROOT/val/<severity>/*.png,
    split as `--data inspection` splits it (`datasets.stratified_split`), so both name the same validation images."""
    from .splits import stratified_split

    root = Path(root)
    names = class_names()
    images = make_inspection(count, seed, size)
    numbered = [(index, label) for index, (_, label) in enumerate(images)]
    for split in ("train", "val"):
        for index, label in stratified_split(numbered, split, val_fraction, seed=0):
            folder = root / split / names[label]
            folder.mkdir(parents=True, exist_ok=True)
            images[index][0].save(folder / f"{index:05d}.png")
    return root


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the inspection benchmark as a train/val tree of PNGs.")
    parser.add_argument("root")
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=SIZE)
    args = parser.parse_args()
    print(write_inspection(args.root, args.count, args.seed, args.size))
