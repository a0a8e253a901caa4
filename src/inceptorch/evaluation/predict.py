"""Class names and probabilities for images: files, folders of images, or in-memory PIL images."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from ..data.datasets import IMAGE_EXTENSIONS, list_images
from ..data.io import BadImageError, load_image
from ..errors import UserError
from .ensemble import Member, ensemble_probabilities
from .options import PROTOCOLS


@dataclass
class Prediction:
    image: str                                 # the file, or "<image N>" for an in-memory image
    classes: list[tuple[str, float]]           # (class name, probability), most probable first

    def to_dict(self) -> dict:
        return {"image": self.image, "predictions": [{"class": c, "probability": p} for c, p in self.classes]}


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Image files named directly, and the image files under named folders (recursively, sorted, hidden entries
    left out, broken links kept so that reading them reports them: `data.datasets.list_images`)."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path).images
            if not found:
                raise UserError(f"no images in {path} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"image not found: {path}")
    return files


def predict(members: list[Member], images: list[str | Path | Image.Image], topk: int = 5, crops: int = 1,
            batch_size: int = 256, skip_bad: Callable[[BadImageError], None] | None = None) -> list[Prediction]:
    """The `topk` most probable classes of each image, probabilities averaged over crops and members.

    A file that cannot be read stops the call (one line naming it), unless `skip_bad` is given: then the file is
    handed to it and left out of the predictions.
    """
    if crops not in PROTOCOLS:
        raise UserError(f"--crops must be one of {', '.join(map(str, PROTOCOLS))}, not {crops}")
    if topk < 1:
        raise UserError(f"--topk must be at least 1, not {topk}")
    names = members[0].class_names
    k = min(topk, len(names))
    transforms = [m.transform(crops) for m in members]
    per_batch = max(1, batch_size // crops)
    predictions = []
    for start in range(0, len(images), per_batch):
        chunk, pils = [], []  # (position, source) of each image read, and the image
        for position in range(start, min(start + per_batch, len(images))):
            img = images[position]
            try:
                pils.append(img.convert("RGB") if isinstance(img, Image.Image) else load_image(img))
            except BadImageError as exc:
                if skip_bad is None:
                    raise
                skip_bad(exc)
                continue
            chunk.append((position, img))
        if not chunk:
            continue
        views = [torch.cat([t(img) for img in pils]) for t in transforms]
        probs = ensemble_probabilities(members, views, crops, batch_size)
        top = probs.topk(k, dim=1)
        for (position, src), values, indices in zip(chunk, top.values.tolist(), top.indices.tolist()):
            label = f"<image {position}>" if isinstance(src, Image.Image) else str(src)
            predictions.append(Prediction(label, [(names[j], float(p)) for j, p in zip(indices, values)]))
    return predictions
