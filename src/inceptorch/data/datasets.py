"""Where images come from: ImageFolder trees, CSV lists, and the embedded digits set; all yield (image, label).

`build_dataset(spec, split)` takes
- a folder with `train/` and `val/` class folders (ImageFolder layout),
- one folder of class folders, split deterministically into train/val by `val_split`,
- a CSV file of `path,label` rows (paths relative to the CSV; a `path,label` header is optional),
- `digits`: scikit-learn's 8x8 handwritten digits, shipped inside its wheel (no download), as 32x32 RGB.
Class names are sorted folder or label names, so the same data always gives the same class indices.
"""
from __future__ import annotations

import csv
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from ..errors import UserError
from ..extras import require
from .io import load_image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
EMBEDDED = ("digits",)


class ImageList(Dataset):
    """(image, label) pairs from a list of samples: each sample is a file path or an in-memory PIL image."""

    def __init__(self, samples: list[tuple[str | Image.Image, int]], class_names: list[str],
                 transform: Callable | None = None):
        self.samples, self.class_names, self.transform = samples, class_names, transform
        self.skipped: list = []  # bad files that `data.checks.preflight` left out, for the run summary

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        source, label = self.samples[index]
        image = source.convert("RGB") if isinstance(source, Image.Image) else load_image(source)
        return (self.transform(image) if self.transform else image), label

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]


def build_dataset(spec: str | Path, split: str, val_split: float = 0.2, seed: int = 0) -> ImageList:
    """The `split` ("train" or "val") of the data that `spec` names; see the module docstring."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    if str(spec) in EMBEDDED:
        samples, names = _digits()
        return ImageList(_split(samples, split, val_split, seed), names)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"data not found: {path} (a folder, a CSV list, or one of: {', '.join(EMBEDDED)})")
    if path.is_file():
        samples, names = _csv_samples(path)
        return ImageList(_split(samples, split, val_split, seed), names)
    if (path / "train").is_dir() and (path / "val").is_dir():
        names = _class_names(path / "train")
        return ImageList(_folder_samples(path / split, names), names)
    names = _class_names(path)
    return ImageList(_split(_folder_samples(path, names), split, val_split, seed), names)


def _split(samples: list, split: str, val_split: float, seed: int) -> list:
    """A deterministic split: the same seed and data always put the same samples in val."""
    if not 0 < val_split < 1:
        raise UserError(f"--val-split must be between 0 and 1, not {val_split}")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(samples) * val_split))
    chosen = sorted(order[:n_val]) if split == "val" else sorted(order[n_val:])
    return [samples[i] for i in chosen]


def _class_names(root: Path) -> list[str]:
    names = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not names:
        raise UserError(f"{root} has no class folders (expected {root}/<class>/<image files>)")
    return names


def _folder_samples(root: Path, class_names: list[str]) -> list[tuple[str, int]]:
    if not root.is_dir():
        raise UserError(f"missing folder {root}")
    samples = []
    for label, name in enumerate(class_names):
        folder = root / name
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) if folder.is_dir() else []
        samples.extend((str(p), label) for p in files)
    if not samples:
        raise UserError(f"no images found under {root} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    return samples


def _csv_samples(path: Path) -> tuple[list[tuple[str, int]], list[str]]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    bad = next((i for i, r in enumerate(rows) if len(r) < 2 or not r[0].strip() or not r[1].strip()), None)
    if bad is not None or not rows:
        raise UserError(f"{path}: expected rows of 'path,label'" + (f" (row {bad + 1} is not)" if rows else ""))
    names = sorted({r[1].strip() for r in rows})
    index = {n: i for i, n in enumerate(names)}
    return [(str(path.parent / r[0].strip()), index[r[1].strip()]) for r in rows], names


def _digits() -> tuple[list[tuple[Image.Image, int]], list[str]]:
    # the 1,797 images ship inside scikit-learn's wheel
    digits = require("sklearn.datasets", "the embedded digits").load_digits()
    images = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    samples = [(Image.fromarray(img).resize((32, 32), Image.BILINEAR), int(t))
               for img, t in zip(images, digits.target)]
    return samples, [str(d) for d in range(10)]
