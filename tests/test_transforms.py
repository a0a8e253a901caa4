"""Augmentation presets and the evaluation transform follow the model's ModelCfg."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from inceptorch.data.transforms import PRESETS, SeededTransform, eval_transform, train_transform
from inceptorch.data.uint8_batches import DeviceNormalize, NormalizedBatches
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


# ---- uint8 hand-over: the workers stop at uint8, DeviceNormalize finishes the batch -------------------
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("cfg", [IMAGENET, UNIT])
def test_uint8_transform_then_device_normalize_equals_the_float_transform(preset, cfg):
    """Same seed, same picture: bit-identical on the CPU, since the same operations run in the same order."""
    images = [_image(90 + 7 * i, 70 + 3 * i) for i in range(3)]
    floats = SeededTransform(train_transform(preset, cfg), seed=1)
    uint8s = SeededTransform(train_transform(preset, cfg, normalize=False), seed=1)
    expected = torch.stack([floats(img, i) for i, img in enumerate(images)])
    batch = torch.stack([uint8s(img, i) for i, img in enumerate(images)])
    assert batch.dtype == torch.uint8 and batch.shape == expected.shape
    assert torch.equal(DeviceNormalize(cfg, "cpu")(batch), expected)
    channels_last = DeviceNormalize(cfg, "cpu", channels_last=True)(batch)
    assert channels_last.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(channels_last, expected)


def test_uint8_eval_transform_then_device_normalize_equals_the_float_one():
    img = _image(100, 80)
    expected = eval_transform(UNIT)(img)
    assert torch.equal(DeviceNormalize(UNIT, "cpu")(eval_transform(UNIT, normalize=False)(img)[None])[0], expected)


def test_normalized_batches_yield_float_images_and_labels():
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    loader = [(images, torch.tensor([0, 1, 2, 3]))] * 2
    batches = NormalizedBatches(loader, DeviceNormalize(IMAGENET, "cpu"))
    assert len(batches) == 2
    (x, y), _ = list(batches)
    mean, std = torch.tensor(IMAGENET.mean).view(1, 3, 1, 1), torch.tensor(IMAGENET.std).view(1, 3, 1, 1)
    assert x.dtype == torch.float32 and torch.allclose(x, (images / 255 - mean) / std, atol=1e-6)
    assert y.tolist() == [0, 1, 2, 3]


def test_device_normalize_refuses_a_float_batch():
    with pytest.raises(ValueError, match="uint8"):
        DeviceNormalize(IMAGENET, "cpu")(torch.zeros(2, 3, 8, 8))
