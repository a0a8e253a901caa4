"""Decoding and augmenting on the device, for when the CPU cannot decode JPEGs as fast as the GPU trains.

DataLoader workers only read files (`EncodedImages`); the main process decodes a whole batch at once with
`torchvision.io.decode_jpeg(list, device=...)` (nvJPEG's batched decoder on CUDA; libjpeg-turbo on CPU, so the tests
run the same code) and `DeviceAugment` crops, resizes, flips, jitters and normalises on the device:

    loader = DataLoader(EncodedImages(dataset), batch_size=256, num_workers=12, collate_fn=collate_encoded)
    for images, labels in DeviceBatches(loader, DeviceAugment(model.default_cfg, "paper", device=device, seed=0)):
        ...  # images: (B, 3, S, S) channels_last on `device`, normalised like `train_transform`

The geometry is the CPU presets' (`transforms.py`): random-resized crops of 8-100% of the area with aspect ratio in
[3/4, 4/3] (GoogLeNet section 6), brightness/contrast/saturation jitter of 0.4, horizontal flips, the model's mean and
std. Two differences: the `paper` preset's random choice among four interpolations is always bilinear here
(antialiased), and the three jitters are applied in a fixed order rather than a random one.
As in `SeededTransform`, each sample's randomness is a pure function of (seed, epoch, index), so batches are the same
with any number of workers and after an exact resume.
"""
from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.functional import pil_to_tensor

from ..errors import UserError
from ..models._registry import ModelCfg
from .io import load_image, max_image_pixels
from .prefetch import prefetched
from .transforms import _COLOR_JITTER, _CROP_RATIO, _CROP_SCALE, _SMALL_DATA_JITTER, _SMALL_DATA_SCALE, sample_seed

_EXIF_ORIENTATION = 0x0112
# Images decode_jpeg turns into the same pixels as `load_image`: 8-bit RGB or gray, no rotation to apply.
_PLAIN_JPEG_MODES = ("RGB", "L")


@dataclass(frozen=True)
class DevicePreset:
    """One augmentation preset as numbers: random-resized-crop ranges and jitter strength, or eval geometry."""

    scale: tuple[float, float] | None  # crop area as a fraction of the image; None: resize + center crop (eval)
    ratio: tuple[float, float] = _CROP_RATIO
    jitter: float = 0.0  # brightness, contrast and saturation factors drawn from [1 - jitter, 1 + jitter]


# `transforms.train_transform`'s presets that have a device version; `light` (RandomAffine) has none.
DEVICE_PRESETS = {
    "small_data": DevicePreset(_SMALL_DATA_SCALE, _CROP_RATIO, _SMALL_DATA_JITTER["brightness"]),
    "paper": DevicePreset(_CROP_SCALE, _CROP_RATIO, _COLOR_JITTER["brightness"]),
    "inception_v3": DevicePreset(_CROP_SCALE, _CROP_RATIO, _COLOR_JITTER["brightness"]),
    "none": DevicePreset(None),
}
assert all(len(set(j.values())) == 1 for j in (_COLOR_JITTER, _SMALL_DATA_JITTER)), \
    "DevicePreset has one jitter strength for all three"


# ---- reading (DataLoader workers) -------------------------------------------------------------------------------
class EncodedImages(Dataset):
    """(payload, label, index) for each file of an `ImageList`; a payload is the file's bytes as a 1-D uint8 tensor.

    A file that decode_jpeg would not turn into the pixels `load_image` gives (PNG and every other format, CMYK
    JPEGs, JPEGs with an EXIF rotation: nvJPEG applies no EXIF orientation) is decoded here instead, on the CPU by
    `load_image`, and its payload is the decoded (3, H, W) uint8 image. Such files are rare in photo data sets.
    """

    def __init__(self, base):
        paths = [source for source, _ in base.samples]
        if any(not isinstance(p, (str, Path)) for p in paths):
            raise UserError("--gpu-decode reads image files; this data set holds in-memory images (drop --gpu-decode)")
        self.base, self.class_names = base, getattr(base, "class_names", None)

    def __len__(self) -> int:
        return len(self.base.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, int, int]:
        path, label = self.base.samples[index]
        data = Path(path).read_bytes()  # torchvision.io.read_file's job, without its deprecation warning
        if _decodes_as_is(data):
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), label, index
        return pil_to_tensor(load_image(path)), label, index


def _decodes_as_is(data: bytes) -> bool:
    """A JPEG whose decode_jpeg(mode=RGB) pixels equal `load_image`'s; reads the header only, no pixels."""
    if not data.startswith(b"\xff\xd8\xff"):
        return False
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            return (img.format == "JPEG" and img.mode in _PLAIN_JPEG_MODES and width * height <= max_image_pixels()
                    and img.getexif().get(_EXIF_ORIENTATION, 1) == 1)
    except Exception:  # noqa: BLE001 - anything odd goes to load_image, which names the problem in one line
        return False


class PackedPayloads(NamedTuple):
    """A batch's encoded files as one flat uint8 tensor plus lengths.

    A worker hands each tensor of a batch to the main process through shared memory on its own; 256 separate
    payloads made the hand-over, not decoding, the slow part (BENCHMARKS.md). Packed, a batch is one tensor:
    2.2x the files/s on 2 CPU cores with 2 workers (BENCHMARKS.md).
    """

    flat: Tensor  # the encoded payloads, concatenated
    lengths: Tensor  # bytes of each sample's payload in `flat`; 0 where the sample was decoded by the worker
    decoded: list  # per sample: the (3, H, W) image a worker decoded, or None when its bytes are in `flat`

    def unpack(self) -> list[Tensor]:
        """The per-sample payloads, in batch order (views of `flat`, no copies)."""
        lengths = self.lengths.tolist()
        parts = iter(torch.split(self.flat, [n for n in lengths if n]))
        return [next(parts) if n else image for n, image in zip(lengths, self.decoded)]


def collate_encoded(batch: list[tuple[Tensor, int, int]]) -> tuple[PackedPayloads, Tensor, Tensor]:
    """(payloads packed into one tensor, labels, indices)."""
    payloads, labels, indices = zip(*batch)
    encoded = [p for p in payloads if p.dim() == 1]
    packed = PackedPayloads(torch.cat(encoded) if encoded else torch.empty(0, dtype=torch.uint8),
                            torch.tensor([p.numel() if p.dim() == 1 else 0 for p in payloads]),
                            [None if p.dim() == 1 else p for p in payloads])
    return packed, torch.tensor(labels), torch.tensor(indices)


# ---- decoding and augmenting (main process, on the device) ------------------------------------------------------
def decode_batch(payloads: list[Tensor] | PackedPayloads, device: torch.device) -> list[Tensor]:
    """(3, H, W) uint8 images on `device`: encoded JPEGs decoded in one batched call, decoded payloads moved."""
    device = torch.device(device)
    if isinstance(payloads, PackedPayloads):
        payloads = payloads.unpack()
    encoded = [i for i, p in enumerate(payloads) if p.dim() == 1]
    images = [p.to(device, non_blocking=True) if p.dim() == 3 else None for p in payloads]
    if encoded:
        batch = [payloads[i] for i in encoded]
        with warnings.catch_warnings():  # torchvision 0.29 deprecates its decoders in favour of TorchCodec
            warnings.simplefilter("ignore")
            try:
                decoded = decode_jpeg(batch, mode=ImageReadMode.RGB, device=device)
            except RuntimeError:
                if device.type != "cuda":
                    raise
                # nvJPEG refuses a few JPEG variants that libjpeg-turbo reads (12-bit, arithmetic coding): such a
                # batch is decoded on the CPU instead, rather than stopping the run
                decoded = [image.to(device) for image in decode_jpeg(batch, mode=ImageReadMode.RGB)]
        for i, image in zip(encoded, decoded):
            images[i] = image
    return images


@dataclass(frozen=True)
class SampleDraw:
    """One sample's random choices: crop box (top, left, height, width), flip, and jitter factors."""

    box: tuple[int, int, int, int]
    flip: bool
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


def random_resized_box(height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float],
                       uniforms: list[float]) -> tuple[int, int, int, int]:
    """torchvision's `RandomResizedCrop.get_params` (10 tries, then a center crop), fed with 40 uniforms in [0, 1)."""
    area, log_lo, log_hi = height * width, math.log(ratio[0]), math.log(ratio[1])
    for k in range(10):
        u_area, u_ratio, u_top, u_left = uniforms[4 * k: 4 * k + 4]
        target = area * (scale[0] + (scale[1] - scale[0]) * u_area)
        aspect = math.exp(log_lo + (log_hi - log_lo) * u_ratio)
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            return int(u_top * (height - h + 1)), int(u_left * (width - w + 1)), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class DeviceAugment:
    """A batch of decoded uint8 images -> (B, 3, S, S) normalised, channels_last by default, on their device.

    `preset` names a `DEVICE_PRESETS` row; `set_epoch` each epoch so that a sample's draw depends on
    (seed, epoch, index) only.
    """

    def __init__(self, cfg: ModelCfg, preset: str = "paper", input_size: int | None = None, hflip: float = 0.5,
                 seed: int = 0, dtype: torch.dtype = torch.float32, channels_last: bool = True):
        if preset not in DEVICE_PRESETS:
            raise UserError(f"--gpu-decode has no device version of the {preset!r} preset; "
                            f"use --aug {' or '.join(DEVICE_PRESETS)}")
        self.preset, self.size, self.hflip = DEVICE_PRESETS[preset], input_size or cfg.input_size, hflip
        self.crop_pct, self.seed, self.dtype, self.epoch = cfg.crop_pct, seed, dtype, 0
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(cfg.mean).view(1, 3, 1, 1) * 255  # normalising pixels in 0..255 saves a divide
        self.std = torch.tensor(cfg.std).view(1, 3, 1, 1) * 255

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def draw(self, height: int, width: int, index: int) -> SampleDraw:
        """Sample `index`'s crop, flip and jitter for an image of height x width, from its own seeded generator."""
        p = self.preset
        if p.scale is None:  # eval geometry: nothing random
            return SampleDraw((0, 0, height, width), False)
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, index))
        u = torch.rand(44, generator=g, dtype=torch.float64).tolist()
        box = random_resized_box(height, width, p.scale, p.ratio, u[:40])
        b, c, s = (1 - p.jitter + 2 * p.jitter * x for x in u[41:44])
        return SampleDraw(box, u[40] < self.hflip, b, c, s)

    def __call__(self, images: list[Tensor], indices: Tensor | list[int]) -> Tensor:
        draws = [self.draw(img.shape[-2], img.shape[-1], int(i)) for img, i in zip(images, indices)]
        x = torch.stack([self._crop_resize(img, d.box) for img, d in zip(images, draws)])  # (B, 3, S, S), 0..255
        device = x.device
        flips = [d.flip for d in draws]
        if any(flips):  # decided on the host: `tensor.any()` here would wait for the device to catch up
            x = torch.where(torch.tensor(flips, device=device).view(-1, 1, 1, 1), x.flip(-1), x)
        if self.preset.jitter:
            factors = torch.tensor([(d.brightness, d.contrast, d.saturation) for d in draws], device=device)
            x = _jitter(x, *factors.view(-1, 3, 1, 1, 1).unbind(1))
        x = (x - self.mean.to(device)) / self.std.to(device)
        return x.to(self.dtype).contiguous(memory_format=self.memory_format)

    def _crop_resize(self, image: Tensor, box: tuple[int, int, int, int]) -> Tensor:
        top, left, h, w = box
        crop = image[None, :, top:top + h, left:left + w].float()
        if self.preset.scale is not None:
            return _resize(crop, (self.size, self.size))[0]
        # eval: shorter side to size / crop_pct (v2.Resize's rounding), then the center size x size
        short = round(self.size / self.crop_pct)
        long = int(short * max(h, w) / min(h, w))
        resized = _resize(crop, (short, long) if h <= w else (long, short))
        top, left = (resized.shape[-2] - self.size) // 2, (resized.shape[-1] - self.size) // 2
        return resized[0, :, top:top + self.size, left:left + self.size]


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    # antialias: a 500 px crop shrunk to 224 px needs it, as the CPU path's `antialias=True` does
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 255)


def _jitter(x: Tensor, brightness: Tensor, contrast: Tensor, saturation: Tensor) -> Tensor:
    """torchvision's adjust_brightness/contrast/saturation on a batch in 0..255, each factor of shape (B, 1, 1, 1)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)  # ITU-R 601 luma, as torchvision
    x = (x * brightness).clamp_(0, 255)
    mean = (x * weights).sum(1, keepdim=True).mean((2, 3), keepdim=True)
    x = (contrast * x + (1 - contrast) * mean).clamp_(0, 255)
    gray = (x * weights).sum(1, keepdim=True)
    return (saturation * x + (1 - saturation) * gray).clamp_(0, 255)


class DeviceBatches:
    """Wraps a DataLoader over `EncodedImages` (with `collate_encoded`): yields (images, labels) on `device`.

    `ahead`: batches decoded and augmented in advance by a background thread on a side CUDA stream
    (`prefetch.prefetched`), so that decoding overlaps the training step; None: 1 on CUDA, 0 (inline) on the CPU,
    where the thread would compete with the training step for the same cores.
    """

    def __init__(self, loader, augment: DeviceAugment, device: torch.device | str, ahead: int | None = None):
        self.loader, self.augment, self.device = loader, augment, torch.device(device)
        self.ahead = (1 if self.device.type == "cuda" else 0) if ahead is None else ahead

    def set_epoch(self, epoch: int) -> None:
        self.augment.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        if self.ahead > 0:
            return prefetched(self._batches, self.device, self.ahead)
        return self._batches()

    def _batches(self):
        for payloads, labels, indices in self.loader:
            images = decode_batch(payloads, self.device)
            yield self.augment(images, indices), labels.to(self.device, non_blocking=True)
