"""The device decode + augmentation path on CPU: the same code as on CUDA, checked against PIL, against the
CPU presets' geometry and normalisation, for seeding, and end to end with `inceptorch train --gpu-decode`."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _train_helpers import TINY, make_jpeg_folder
from inceptorch.cli.main import main
from inceptorch.data import gpu_pipeline as gp
from inceptorch.data.datasets import build_dataset
from inceptorch.data.io import load_image
from inceptorch.data.transforms import SeededDataset, eval_transform, train_transform
from inceptorch.errors import UserError
from inceptorch.models import get_model_cfg
from inceptorch.train.metrics import read_metrics

CFG = get_model_cfg("googlenet_bn")  # ImageNet mean/std, 224 px, crop_pct 0.875


def _textured(height: int, width: int, seed: int) -> Image.Image:
    """Smooth gradients plus noise: photo-like content whose JPEG decode is not trivial."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / width, yy * 255 / height, (xx + yy) * 127 / (width + height)], -1)
    return Image.fromarray(np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """An ImageFolder tree: 2 classes x 3 textured JPEGs of assorted sizes, plus one RGBA PNG."""
    root = tmp_path_factory.mktemp("photos")
    for c, name in enumerate(("cat", "dog")):
        (root / name).mkdir()
        for i, (h, w) in enumerate(((120, 160), (200, 90), (64, 64))):
            _textured(h, w, 10 * c + i).save(root / name / f"{i}.jpg", quality=90)
    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[:20, :, :] = (200, 30, 30, 255)  # top half opaque red, bottom half fully transparent (white on a page)
    Image.fromarray(rgba, "RGBA").save(root / "cat" / "logo.png")
    return root


def _batch(root: Path, files: list[str]):
    dataset = gp.EncodedImages(build_dataset(root, "train", val_split=0.5))
    dataset.base.samples = [(str(root / f), 0) for f in files]
    return gp.collate_encoded([dataset[i] for i in range(len(dataset))])


def test_decode_matches_pil(photos):
    files = ["cat/0.jpg", "cat/1.jpg", "dog/2.jpg"]
    payloads, _, _ = _batch(photos, files)
    assert all(p.dim() == 1 for p in payloads.unpack())  # JPEGs travel encoded, packed into one tensor
    sizes = [(photos / f).stat().st_size for f in files]
    assert payloads.lengths.tolist() == sizes and payloads.flat.numel() == sum(sizes)
    for f, image in zip(files, gp.decode_batch(payloads, torch.device("cpu"))):
        pil = torch.from_numpy(np.array(load_image(photos / f))).permute(2, 0, 1)
        assert image.shape == pil.shape and image.dtype == torch.uint8
        assert (image.int() - pil.int()).abs().max() <= 2  # same libjpeg-turbo; IDCT/upsampling may round apart


def test_png_falls_back_to_load_image_on_cpu(photos):
    """Not a JPEG: decoded in the worker by `load_image`, so alpha is composited on white as on the CPU path."""
    payloads, _, _ = _batch(photos, ["cat/logo.png"])
    assert payloads.unpack()[0].shape == (3, 40, 50) and payloads.lengths.tolist() == [0]
    image = gp.decode_batch(payloads, torch.device("cpu"))[0]
    assert image[:, 0, 0].tolist() == [200, 30, 30] and image[:, -1, -1].tolist() == [255, 255, 255]


def test_rotated_jpeg_is_decoded_upright(tmp_path):
    """nvJPEG ignores EXIF orientation, so a rotated JPEG is decoded by `load_image` in the worker instead."""
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    _textured(30, 60, 0).save(tmp_path / "r.jpg", quality=90, exif=exif)
    payload = gp.EncodedImages(_one_file_list(tmp_path / "r.jpg"))[0][0]
    assert payload.shape == (3, 60, 30)  # decoded, and turned upright (was 30 high x 60 wide)


def _one_file_list(path: Path):
    from inceptorch.data.datasets import ImageList

    return ImageList([(str(path), 0)], ["x"])


def test_crop_boxes_stay_in_the_presets_ranges():
    aug = gp.DeviceAugment(CFG, "paper", seed=3)
    areas, ratios = [], []
    for index in range(400):
        draw = aug.draw(375, 500, index)
        top, left, h, w = draw.box
        assert 0 <= top and top + h <= 375 and 0 <= left and left + w <= 500
        areas.append(h * w / (375 * 500))
        ratios.append(w / h)
        assert 0.6 - 1e-9 <= min(draw.brightness, draw.contrast, draw.saturation)
        assert max(draw.brightness, draw.contrast, draw.saturation) <= 1.4 + 1e-9
    # rounding to whole pixels moves the ratio a little past [3/4, 4/3] for the smallest crops
    assert 0.08 * 0.97 <= min(areas) and max(areas) <= 1.0
    assert 3 / 4 * 0.97 <= min(ratios) and max(ratios) <= 4 / 3 * 1.03
    assert min(areas) < 0.15 and max(areas) > 0.8 and min(ratios) < 0.8 and max(ratios) > 1.25  # the range is used


def test_crop_box_falls_back_to_a_center_crop_like_torchvision():
    """No try fits in a 1000 x 10 strip: the center crop at the closest allowed aspect ratio."""
    assert gp.random_resized_box(10, 1000, (0.08, 1.0), (3 / 4, 4 / 3), [0.99] * 40) == (0, 493, 10, 13)


def test_a_batch_mixing_encoded_and_worker_decoded_files_unpacks_in_order(photos):
    files = ["cat/0.jpg", "cat/logo.png", "dog/2.jpg"]
    payloads, _, _ = _batch(photos, files)
    parts = payloads.unpack()
    assert [p.dim() for p in parts] == [1, 3, 1]
    assert bytes(parts[0].numpy()) == (photos / files[0]).read_bytes()
    assert bytes(parts[2].numpy()) == (photos / files[2]).read_bytes()


def test_same_seed_same_batch_other_seed_or_epoch_other_batch(photos):
    payloads, _, indices = _batch(photos, ["cat/0.jpg", "cat/1.jpg", "dog/0.jpg", "dog/2.jpg"])
    images = gp.decode_batch(payloads, torch.device("cpu"))

    def batch(seed: int, epoch: int = 0) -> torch.Tensor:
        aug = gp.DeviceAugment(CFG, "paper", input_size=64, seed=seed)
        aug.set_epoch(epoch)
        return aug(images, indices)

    assert torch.equal(batch(7), batch(7))
    assert not torch.allclose(batch(7), batch(8))
    assert not torch.allclose(batch(7), batch(7, epoch=1))


def test_output_layout_and_normalisation_of_a_constant_gray_image(tmp_path):
    """Gray 128 everywhere: contrast and saturation leave it alone, brightness scales it by the drawn factor."""
    Image.new("RGB", (80, 60), (128, 128, 128)).save(tmp_path / "g.jpg", quality=90)
    images = gp.decode_batch([gp.EncodedImages(_one_file_list(tmp_path / "g.jpg"))[0][0]] * 3, torch.device("cpu"))
    mean, std = torch.tensor(CFG.mean).view(3, 1, 1), torch.tensor(CFG.std).view(3, 1, 1)
    aug = gp.DeviceAugment(CFG, "paper", seed=1)
    x = aug(images, [0, 1, 2])
    assert x.shape == (3, 3, 224, 224) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    for i in range(3):
        expected = (min(128 * aug.draw(60, 80, i).brightness, 255) / 255 - mean) / std
        assert torch.allclose(x[i], expected.expand(3, 224, 224), atol=1.5 / 255 / 0.224)
    evaluated = gp.DeviceAugment(CFG, "none", dtype=torch.bfloat16)(images, [0, 1, 2])
    assert evaluated.dtype == torch.bfloat16
    assert torch.allclose(evaluated.float(), ((128 / 255 - mean) / std).expand(3, 3, 224, 224), atol=0.02)


def test_eval_geometry_matches_the_cpu_eval_transform(photos):
    """Resize the shorter side to 224 / 0.875 = 256, center-crop 224: the same picture as `eval_transform`."""
    files = ["cat/0.jpg", "cat/1.jpg"]
    payloads, _, _ = _batch(photos, files)
    device = gp.DeviceAugment(CFG, "none")(gp.decode_batch(payloads, torch.device("cpu")), [0, 1])
    cpu = torch.stack([eval_transform(CFG)(load_image(photos / f)) for f in files])
    assert device.shape == cpu.shape
    assert (device - cpu).abs().mean() < 0.03  # PIL's and torch's antialiased bilinear differ by a level or so


def test_presets_without_a_device_version_and_in_memory_data_are_one_line_errors():
    with pytest.raises(UserError, match="light"):
        gp.DeviceAugment(CFG, "light")
    with pytest.raises(UserError, match="in-memory"):
        gp.EncodedImages(build_dataset("digits", "train"))


def test_device_batches_follow_the_sampler_with_workers(photos):
    """Workers only read bytes; labels come back on the device with their images, in the loader's order."""
    dataset = gp.EncodedImages(build_dataset(photos, "train", val_split=0.3))
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2, persistent_workers=True,
                                         collate_fn=gp.collate_encoded)
    batches = list(gp.DeviceBatches(loader, gp.DeviceAugment(CFG, "inception_v3", input_size=32), "cpu"))
    labels = torch.cat([y for _, y in batches])
    assert labels.tolist() == dataset.base.targets and batches[0][0].shape == (2, 3, 32, 32)


def test_seeded_dataset_takes_the_epoch_with_the_index(photos):
    """Persistent workers never see set_epoch: an (epoch, index) key gives what set_epoch(epoch) would have."""
    base = build_dataset(photos, "train", val_split=0.3)
    dataset = SeededDataset(base, train_transform("paper", CFG, input_size=32), seed=0)
    dataset.set_epoch(3)
    by_epoch = dataset[1][0]
    dataset.set_epoch(0)
    assert torch.equal(dataset[(3, 1)][0], by_epoch) and not torch.equal(dataset[1][0], by_epoch)


@pytest.mark.slow
def test_train_with_gpu_decode_on_cpu_and_resume_exactly(tmp_path):
    """`--gpu-decode --device cpu` end to end; a resumed run ends with the same weights as an uninterrupted one."""
    torch.set_num_threads(1)  # tiny convolutions: one thread avoids OpenMP spin-waiting on a shared machine
    data = make_jpeg_folder(tmp_path / "colours", per_class=4, size=40)
    # A schedule that does not depend on the run's length: the first run stops at 1 of 2 epochs.
    common = [*TINY, "--data", str(data), "--batch-size", "3", "--gpu-decode", "--device", "cpu", "--input-size", "32",
              "--set", "schedule=constant", "--set", "warmup_epochs=0"]
    assert main(["train", *common, "--epochs", "2", "--output", str(tmp_path / "straight")]) == 0
    assert main(["train", *common, "--epochs", "1", "--output", str(tmp_path / "resumed")]) == 0
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--epochs", "2", "--no-progress"]) == 0
    rows = read_metrics(tmp_path / "straight" / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2] and all(math.isfinite(r["train_loss"]) for r in rows)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / r / "last.safetensors")) for r in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert "gpu_decode: true" in (tmp_path / "straight" / "config.yaml").read_text()


def test_device_batches_made_ahead_in_a_thread_equal_the_inline_ones(photos):
    dataset = gp.EncodedImages(build_dataset(photos, "train", val_split=0.3))
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, collate_fn=gp.collate_encoded)
    augment = gp.DeviceAugment(CFG, "paper", input_size=32, seed=3)
    inline = gp.DeviceBatches(loader, augment, "cpu")
    ahead = gp.DeviceBatches(loader, augment, "cpu", ahead=2)
    assert (inline.ahead, ahead.ahead) == (0, 2)  # the default on the CPU is inline
    pairs = list(zip(inline, ahead, strict=True))
    assert len(pairs) == len(loader) > 1
    for (x, y), (x2, y2) in pairs:
        assert torch.equal(x, x2) and torch.equal(y, y2)
