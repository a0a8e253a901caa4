"""Augmentation presets and the evaluation transform follow the model's ModelCfg (issue 4)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from inceptorch.data.transforms import PRESETS, SeededTransform, eval_transform, train_transform
from inceptorch.errors import UserError
from inceptorch.models._registry import INCEPTION_MEAN, INCEPTION_STD, ModelCfg

IMAGENET = ModelCfg(input_size=64, crop_pct=0.875)
UNIT = ModelCfg(input_size=48, crop_pct=1.0, mean=INCEPTION_MEAN, std=INCEPTION_STD)


def _image(w: int = 90, h: int = 70) -> Image.Image:
    g = torch.Generator().manual_seed(0)
    return Image.fromarray(torch.randint(0, 256, (h, w, 3), generator=g, dtype=torch.uint8).numpy())


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cfg", [IMAGENET, UNIT])
def test_presets_give_the_models_size(preset, cfg):
    x = train_transform(preset, cfg)(_image())
    assert x.shape == (3, cfg.input_size, cfg.input_size) and x.dtype == torch.float32


def test_eval_transform_resizes_by_crop_pct_then_center_crops():
    # A white square in the center of a black image: resize 70 -> 64/0.875 = 73, center crop 64.
    img = Image.new("RGB", (70, 70))
    img.paste((255, 255, 255), (25, 25, 45, 45))
    x = eval_transform(IMAGENET)(img)
    assert x.shape == (3, 64, 64)
    white = (1 - torch.tensor(IMAGENET.mean)) / torch.tensor(IMAGENET.std)
    assert torch.allclose(x[:, 32, 32], white, atol=0.02)
    black = -torch.tensor(IMAGENET.mean) / torch.tensor(IMAGENET.std)
    assert torch.allclose(x[:, 0, 0], black, atol=0.02)


def test_unit_range_normalisation():
    x = eval_transform(UNIT)(Image.new("RGB", (48, 48), (255, 0, 255)))
    assert torch.allclose(x[0], torch.ones(48, 48)) and torch.allclose(x[1], -torch.ones(48, 48))


def test_seeded_transform_is_a_function_of_seed_epoch_index():
    t = SeededTransform(train_transform("paper", IMAGENET), seed=3)
    img = _image()
    state = torch.get_rng_state()
    a, b = t(img, 5), t(img, 5)
    assert torch.equal(a, b) and torch.equal(torch.get_rng_state(), state)  # caller's generator untouched
    assert not torch.equal(a, t(img, 6))
    t.epoch = 1
    assert not torch.equal(a, t(img, 5))


def test_unknown_preset_is_a_user_error():
    with pytest.raises(UserError, match="light"):
        train_transform("heavy", IMAGENET)
