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


def _ramps(size: int = 96) -> Image.Image:
    """Red rises left to right, green top to bottom: where each ramp runs after a transform tells the orientation."""
    ramp = torch.linspace(0, 255, size).round().to(torch.uint8)
    pixels = torch.zeros(size, size, 3, dtype=torch.uint8)
    pixels[..., 0] = ramp[None, :]
    pixels[..., 1] = ramp[:, None]
    return Image.fromarray(pixels.numpy())


def _direction(channel: torch.Tensor) -> str:
    """Which way a ramp rises in an image: +x, -x, +y or -y."""
    h, w = channel.shape
    along_x = channel[:, w // 2:].float().mean() - channel[:, :w // 2].float().mean()
    along_y = channel[h // 2:].float().mean() - channel[:h // 2].float().mean()
    if abs(along_x) > abs(along_y):
        return "+x" if along_x > 0 else "-x"
    return "+y" if along_y > 0 else "-y"


def test_the_inspection_preset_shows_all_eight_orientations_and_keeps_most_of_the_image():
    transform = SeededTransform(train_transform("inspection", UNIT, normalize=False), seed=0)
    seen = set()
    for index in range(200):
        x = transform(_ramps(), index)
        seen.add((_direction(x[0]), _direction(x[1])))
        # A crop keeps at least 64% of the area: each ramp still spans most of its range (colour jitter scales
        # the values by at most 20%).
        assert (x[0].float().max() - x[0].float().min()) / 255 > 0.5
    assert len(seen) == 8, seen  # the 4 quarter turns, each mirrored or not


@pytest.mark.parametrize("policy", ["trivial", "rand", "auto"])
def test_automatic_augmentation_changes_images_and_repeats_per_seed(policy):
    plain = SeededTransform(train_transform("none", IMAGENET, normalize=False), seed=0)
    auto = SeededTransform(train_transform("none", IMAGENET, normalize=False, auto_augment=policy), seed=0)
    changed = sum(not torch.equal(auto(_image(), i), plain(_image(), i)) for i in range(20))
    assert changed >= 5
    assert torch.equal(auto(_image(), 3), auto(_image(), 3))  # a pure function of (seed, epoch, index)


def test_random_erasing_fills_a_rectangle_with_the_models_mean_colour():
    transform = SeededTransform(train_transform("none", IMAGENET, normalize=False, random_erasing=1.0), seed=0)
    white = Image.new("RGB", (80, 80), (255, 255, 255))
    x = transform(white, 0)
    mean = torch.tensor([round(255 * m) for m in IMAGENET.mean], dtype=torch.uint8)
    erased = (x == mean.view(3, 1, 1)).all(0)
    assert 0.02 * 64 * 64 <= erased.sum() <= 0.34 * 64 * 64  # torchvision's default area range, 2-33%
    normalized = train_transform("none", IMAGENET, random_erasing=1.0)(white)
    assert (normalized == 0).all(0).sum() > 0  # after normalisation the mean colour is 0


def test_mixup_and_cutmix_make_soft_labels_that_the_training_loss_takes():
    from inceptorch import create_model
    from inceptorch.train.config import resolve
    from inceptorch.train.engine import ForwardLoss, train_one_epoch
    from inceptorch.train.mixing import batch_mixing

    cfg = resolve({}, {"mixup": 0.4, "cutmix": 1.0})
    mix = batch_mixing(cfg, 3)
    images, labels = torch.randn(8, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    mixed, soft = mix(images, labels)
    assert soft.shape == (8, 3) and torch.allclose(soft.sum(1), torch.ones(8))
    assert not torch.equal(mixed, images) and (soft.max(1).values < 1).any()
    assert batch_mixing(resolve({}, {}), 3) is None
    model = create_model("lenet5", num_classes=3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    meter = train_one_epoch(ForwardLoss(model, label_smoothing=0.1), [(images, labels)] * 3, optimizer, scheduler,
                            device=torch.device("cpu"), mix=mix)
    assert meter.count == 24 and 0 < meter.loss < 10 and 0 <= meter.top1 <= 100
