"""Real photographs for the tests, made at test time from images that a dependency ships in its wheel."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_crops(root: Path, photos: dict[str, np.ndarray], counts: list[int], val_fraction: float = 0.2,
                sizes: tuple[int, int] = (64, 160), seed: int = 0) -> Path:
    """An ImageFolder tree (train/ and val/) of square JPEG crops, `counts[i]` of the i-th photo, each crop at a
    random place and size: telling which photo a crop came from is a real (if easy) recognition task."""
    rng = np.random.default_rng(seed)
    for (name, photo), n in zip(photos.items(), counts):
        h, w = photo.shape[:2]
        for i in range(n):
            s = int(rng.integers(sizes[0], min(sizes[1], h, w)))
            y, x = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            split = "val" if i < round(n * val_fraction) else "train"
            (root / split / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(photo[y:y + s, x:x + s]).save(root / split / name / f"{i:04d}.jpg", quality=90)
    return root


def sample_photos(root: Path, per_class: int = 80) -> Path:
    """Crops of scikit-learn's two sample photographs (a temple in China, a flower), per_class of each."""
    from sklearn.datasets import load_sample_images

    images = load_sample_images().images
    return write_crops(root, {"china": images[0], "flower": images[1]}, [per_class, per_class])
