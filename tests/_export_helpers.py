"""Small models and generated data shared by the export tests (no downloads, a few seconds of CPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from _lively import lively
from inceptorch import create_model
from inceptorch.models import get_model_cfg

SMALL_KWARGS = {"aux_logits": False, "small_input": True, "width": 0.25}  # each dropped if a builder lacks it
COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}  # sorted: ImageFolder order


# Modules that repeat a kind of block already in the network: more of the same operators, dropped from the small
# builds. GoogLeNet keeps one Inception module per grid size (3a, 4a, 5a); BN-Inception keeps one of each kind (3a:
# avg pool + projection, 3c and 4e: the stride-2 reductions, 5b: max pool + projection); Inception-v2/v3 keep the first
# module of each grid size (35x35, 17x17, 8x8).
_GOOGLENET_REPEATS = {"inception3b", "inception4b", "inception4c", "inception4d", "inception4e", "inception5b"}
_REPEATS = {
    "googlenet": _GOOGLENET_REPEATS,
    "googlenet_bn": _GOOGLENET_REPEATS,
    "bn_inception": {"inception3b", "inception4a", "inception4b", "inception4c", "inception4d", "inception5a"},
    "inception_v3": {"Mixed_5c", "Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7c"},
    "inception_v2": {"Mixed_5c", "Mixed_5d", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_6f", "Mixed_7c"},
}


def _shallow(name: str, num_classes: int) -> nn.Module | None:
    """`name` with one module per stage, for the models whose repeats dominate their export and conversion time."""
    from inceptorch.models.bn_inception import BN_INCEPTION
    from inceptorch.models.googlenet import GOOGLENET
    from inceptorch.models.inception_resnet import (
        INCEPTION_RESNET_SMALL,
        INCEPTION_RESNET_V1,
        INCEPTION_RESNET_V2,
        InceptionResNet,
    )
    from inceptorch.models.inception_v3 import V2, V3, InceptionV3
    from inceptorch.models.inception_v4 import INCEPTION_V4, InceptionV4

    stacked = {"inception_v4": (InceptionV4, INCEPTION_V4),
               "inception_resnet_v1": (InceptionResNet, INCEPTION_RESNET_V1),
               "inception_resnet_v2": (InceptionResNet, INCEPTION_RESNET_V2),
               "inception_resnet_small": (InceptionResNet, INCEPTION_RESNET_SMALL)}
    if name in stacked:
        cls, spec = stacked[name]
        return cls(spec=tuple(row._replace(count=1) if "count" in row._fields else row for row in spec),
                   num_classes=num_classes)
    if name in ("inception_v3", "inception_v2"):
        spec = tuple(row for row in (V3 if name == "inception_v3" else V2) if row.name not in _REPEATS[name])
        return InceptionV3(spec, num_classes=num_classes, aux_logits=False, width=SMALL_KWARGS["width"])
    if name in _REPEATS:
        full = BN_INCEPTION if name == "bn_inception" else GOOGLENET
        return create_model(name, num_classes=num_classes, spec=tuple(r for r in full if r.name not in _REPEATS[name]),
                            **SMALL_KWARGS)
    return None


def small_model(name: str, num_classes: int = 3) -> nn.Module:
    """`name` at its smallest: no aux heads, the small-input stem and a narrow width where the builder has them.

    GoogLeNet and BN-Inception keep one module of each kind (`_REPEATS`); Inception-v2/v3/v4 and Inception-ResNet
    are built with one module per stage instead of their 3-4-2, 4-7-3, 3-3-3, 5-10-5 or 10-20-9 repeats (v4 and
    Inception-ResNet are built at full width). Every kind of block, the stem and the head are still there, so what an
    export or a conversion has to handle is the same, in a fraction of the time: repeats are the same operators
    again.
    """
    shallow = _shallow(name, num_classes)
    if shallow is not None:
        shallow.default_cfg, shallow.model_name = get_model_cfg(name), name
        return shallow
    kwargs = dict(SMALL_KWARGS)
    for drop in (None, "width", "small_input", "aux_logits"):
        kwargs.pop(drop, None)
        try:
            return create_model(name, num_classes=num_classes, **kwargs)
        except TypeError:  # this builder has no such option
            continue
    return create_model(name, num_classes=num_classes)


def small_size(model: nn.Module) -> int:
    return max(model.default_cfg.min_input_size, 32)


def with_lively_weights(model: nn.Module, seed: int = 0) -> nn.Module:
    """`lively` weights (so BN folding is exercised) and a classifier scaled to logits of std ~3.

    Freshly initialised models give logits ~1e-20, where a 1e-4 tolerance could not fail.
    """
    lively(model, seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        size = small_size(model)
        logits = model(torch.randn(8, 3, size, size, generator=gen))
        fc = model.get_classifier()
        fc.weight.mul_(3.0 / logits.std())
        if fc.bias is not None:
            fc.bias.mul_(3.0 / logits.std())
    return model


def squares(n: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 RGB images (n, size, size, 3) of a coloured square on grey noise; the label is the colour."""
    rng = np.random.default_rng(seed)
    images = rng.integers(90, 160, size=(n, size, size, 3)).astype(np.uint8)
    labels = rng.integers(0, len(COLOURS), size=n)
    palette = np.array(list(COLOURS.values()), dtype=np.int16)
    for i, label in enumerate(labels):
        side = int(rng.integers(size // 3, size // 2 + 1))
        y, x = rng.integers(0, size - side, size=2)
        colour = np.clip(palette[label] + rng.integers(-25, 26, size=3), 0, 255)
        images[i, y:y + side, x:x + side] = colour
    return images, labels


def write_image_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> Path:
    names = list(COLOURS)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(image).save(root / names[label] / f"{i:04d}.png")
    return root
