"""Shared helpers for the training tests: tiny generated JPEG data and the tiny model's command-line options."""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

# A 0.0625-width small-input GoogLeNet (BN build): about 40K parameters, milliseconds a step on one CPU thread.
TINY = ["--model", "googlenet_bn", "--small-input", "--width", "0.0625", "--no-progress",
        "--set", "tensorboard=false", "--set", "plot=false"]
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}


def make_jpeg_folder(root: Path, per_class: int = 6, size: int = 24) -> Path:
    """One folder of class folders with noisy solid-colour JPEGs: learnable, and different per class."""
    rng = random.Random(0)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixel = tuple(max(0, min(255, c + rng.randint(-50, 50))) for c in colour)
            Image.new("RGB", (size, size), pixel).save(root / name / f"{i}.jpg", quality=90)
    return root
