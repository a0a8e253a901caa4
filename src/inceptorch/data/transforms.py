"""Train-time augmentation presets by name and the evaluation transform, both derived from a model's `ModelCfg`.

Every preset ends in the model's own normalisation (ImageNet mean/std or [-1, 1]) at its own input size, so the
same preset serves a 224 px GoogLeNet, a 299 px Inception-v3 and a 32 px small-input GoogLeNet.
All randomness comes from torch's generator, which `SeededTransform` forks per sample for reproducible runs.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode

from ..errors import UserError
from ..models._registry import ModelCfg

PRESETS = ("small_data", "inspection", "paper", "inception_v3", "light", "none")

_INTERPOLATION = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC,
                  "nearest": InterpolationMode.NEAREST, "area": InterpolationMode.BOX}
# GoogLeNet section 6: "random interpolation methods (bilinear, area, nearest neighbor and cubic, with equal
# probability)". PIL's box filter is the area-averaging resize.
_PAPER_INTERPOLATIONS = ("bilinear", "area", "nearest", "bicubic")
# GoogLeNet section 6: sampled patches cover 8%-100% of the image with aspect ratio in [3/4, 4/3].
_CROP_SCALE, _CROP_RATIO = (0.08, 1.0), (3 / 4, 4 / 3)
# "Photometric distortions" (section 6, after Howard, arXiv:1312.5402): brightness, contrast and saturation jitter.
_COLOR_JITTER = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4}
# For a few hundred to tens of thousands of photos of centred objects: an 8% crop of such an image often holds
# no object at all, so crops keep at least a quarter of the image; milder colour jitter for the same reason.
_SMALL_DATA_SCALE = (0.25, 1.0)
_SMALL_DATA_JITTER = {"brightness": 0.2, "contrast": 0.2, "saturation": 0.2}
# Images without a canonical orientation or framing (inspection, microscopy, textures, aerial): any of the eight
# flips and quarter turns shows a possible image of the same class, and crops keep most of the image, since a
# defect near the border must stay in view for its label to stay true.
_INSPECTION_SCALE, _INSPECTION_RATIO = (0.64, 1.0), (0.8, 1.25)
_INSPECTION_JITTER = {"brightness": 0.2, "contrast": 0.2}


def _to_tensor(cfg: ModelCfg, normalize: bool = True) -> list:
    """PIL -> (3, H, W) tensor: float and normalised, or uint8 for `uint8_batches.DeviceNormalize` to finish."""
    if not normalize:
        return [v2.ToImage()]
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(cfg.mean), std=list(cfg.std))]


def _interpolation(name: str) -> InterpolationMode:
    try:
        return _INTERPOLATION[name]
    except KeyError:
        raise UserError(f"unknown interpolation {name!r}; choose from {', '.join(_INTERPOLATION)}") from None


def eval_transform(cfg: ModelCfg, input_size: int | None = None, normalize: bool = True) -> v2.Compose:
    """Resize the shorter side to input_size / crop_pct, center-crop input_size, normalise (timm's eval recipe).

    `normalize=False` stops at the uint8 tensor (see `train_transform`)."""
    return v2.Compose([*_eval_geometry(cfg, input_size or cfg.input_size), *_to_tensor(cfg, normalize)])


def _eval_geometry(cfg: ModelCfg, size: int) -> list:
    return [v2.Resize(round(size / cfg.crop_pct), interpolation=_interpolation(cfg.interpolation), antialias=True),
            v2.CenterCrop(size)]


AUTO_AUGMENT = ("trivial", "rand", "auto")  # TrivialAugmentWide, RandAugment, AutoAugment (ImageNet policy)


def train_transform(preset: str, cfg: ModelCfg, hflip: float = 0.5, input_size: int | None = None,
                    normalize: bool = True, auto_augment: str | None = None, random_erasing: float = 0.0) -> v2.Compose:
    """The named augmentation preset at the model's input size, then optionally an automatic augmentation policy
    and random erasing; `hflip` is the horizontal-flip probability.

    - `auto_augment`: "trivial" (TrivialAugmentWide, Müller & Hutter 2021: one random operation at a random
      strength, no tuning), "rand" (RandAugment, Cubuk et al. 2020: two operations at magnitude 9) or "auto"
      (AutoAugment's ImageNet policy, Cubuk et al. 2019), applied after the preset's crop and flips;
    - `random_erasing`: the probability of erasing one random rectangle (Zhong et al. 2020), filled with the
      model's mean colour (0 after normalisation), last.

    `normalize=False` ends in the (3, S, S) uint8 tensor instead: DataLoader workers then hand over a quarter of the
    bytes, and `uint8_batches.DeviceNormalize` converts and normalises whole batches where the model runs.

    - `small_data` (the default): crops of 25-100% of the area (aspect 3/4-4/3), mild colour jitter, flips: photos
      of centred objects, from a few hundred to tens of thousands of images.
    - `inspection`: crops of 64-100% of the area, quarter turns, horizontal and vertical flips, mild brightness and
      contrast jitter: images without an "up" whose label a tight crop could change (surfaces, microscopy, aerial).
    - `paper`: GoogLeNet section 6 crops (area 8-100%, aspect 3/4-4/3), colour jitter, a random one of four
      interpolations, flips.
    - `inception_v3`: the same crops and colour at the model's size (299 for v3) with its bilinear resize.
    - `light`: for small data sets: mild scale/translation jitter (area 64-100%, a few percent of shift), flips.
    - `none`: the evaluation transform.
    """
    steps = _preset_steps(preset, cfg, hflip, input_size or cfg.input_size)
    if auto_augment is not None:
        steps.append(_auto_augment(auto_augment, cfg))
    steps += _to_tensor(cfg, normalize)
    if random_erasing > 0:
        fill = 0.0 if normalize else [round(255 * m) for m in cfg.mean]
        steps.append(v2.RandomErasing(random_erasing, value=fill))
    return v2.Compose(steps)


def _auto_augment(name: str, cfg: ModelCfg):
    interpolation = _interpolation(cfg.interpolation)
    if name == "trivial":
        return v2.TrivialAugmentWide(interpolation=interpolation)
    if name == "rand":
        return v2.RandAugment(interpolation=interpolation)
    if name == "auto":
        return v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET, interpolation=interpolation)
    raise UserError(f"unknown auto_augment {name!r}; choose from {', '.join(AUTO_AUGMENT)}")


def _preset_steps(preset: str, cfg: ModelCfg, hflip: float, size: int) -> list:
    """The preset's transforms on PIL images, before the tensor conversion."""
    flip = [v2.RandomHorizontalFlip(hflip)] if hflip > 0 else []
    if preset == "paper":
        crops = [v2.RandomResizedCrop(size, scale=_CROP_SCALE, ratio=_CROP_RATIO, interpolation=_interpolation(n),
                                      antialias=True) for n in _PAPER_INTERPOLATIONS]
        return [v2.RandomChoice(crops), v2.ColorJitter(**_COLOR_JITTER), *flip]
    if preset == "small_data":
        crop = v2.RandomResizedCrop(size, scale=_SMALL_DATA_SCALE, ratio=_CROP_RATIO,
                                    interpolation=_interpolation(cfg.interpolation), antialias=True)
        return [crop, v2.ColorJitter(**_SMALL_DATA_JITTER), *flip]
    if preset == "inspection":
        crop = v2.RandomResizedCrop(size, scale=_INSPECTION_SCALE, ratio=_INSPECTION_RATIO,
                                    interpolation=_interpolation(cfg.interpolation), antialias=True)
        turns = v2.RandomChoice([v2.RandomRotation((angle, angle)) for angle in (0, 90, 180, 270)])
        return [crop, turns, *flip, v2.RandomVerticalFlip(0.5 if hflip > 0 else 0.0),
                v2.ColorJitter(**_INSPECTION_JITTER)]
    if preset == "inception_v3":
        crop = v2.RandomResizedCrop(size, scale=_CROP_SCALE, ratio=_CROP_RATIO,
                                    interpolation=_interpolation(cfg.interpolation), antialias=True)
        return [crop, v2.ColorJitter(**_COLOR_JITTER), *flip]
    if preset == "light":
        resize = round(size / cfg.crop_pct)
        return [v2.Resize(resize, interpolation=_interpolation(cfg.interpolation), antialias=True),
                v2.RandomAffine(degrees=8, translate=(0.08, 0.08), scale=(0.9, 1.1)), v2.CenterCrop(size), *flip]
    if preset == "none":
        return _eval_geometry(cfg, size)
    raise UserError(f"unknown augmentation preset {preset!r}; choose from {', '.join(PRESETS)}")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's augmentation, for this CPU path and the device path (`gpu_pipeline`) alike."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + index


class SeededTransform:
    """Applies `transform` with torch's generator seeded from (seed, epoch, sample index).

    A sample's augmentation is then a pure function of those three numbers: the same in any worker process,
    with any number of workers, and after resuming mid-epoch. The caller's generator state is restored after,
    so dropout and the rest of training keep their own random stream.

    Only the CPU generator, which the transforms draw from, is seeded: `torch.manual_seed` would also reseed every
    CUDA generator of a main process that loads its own data (`--workers 0`), and its lazy CUDA/XPU/MTIA seeding
    cost 70 us a sample, 3% of a worker's time on a 224 px `paper` sample.
    """

    def __init__(self, transform, seed: int):
        self.transform, self.seed, self.epoch = transform, seed, 0

    def __call__(self, image, index: int, epoch: int | None = None):
        epoch = self.epoch if epoch is None else epoch
        state = torch.get_rng_state()
        torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
        try:
            return self.transform(image)
        finally:
            torch.set_rng_state(state)


class SeededDataset(torch.utils.data.Dataset):
    """(tensor, label) pairs from an (image, label) dataset through a `SeededTransform`; `set_epoch` each epoch."""

    def __init__(self, base, transform, seed: int):
        self.base, self.transform = base, SeededTransform(transform, seed)
        self.class_names = getattr(base, "class_names", None)

    def set_epoch(self, epoch: int) -> None:
        self.transform.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]):
        """`key` is an index, or (epoch, index) from a sampler that carries the epoch: a persistent DataLoader
        worker holds its own copy of this dataset, which `set_epoch` in the main process does not reach."""
        epoch, index = key if isinstance(key, tuple) else (None, key)
        image, label = self.base[index]
        return self.transform(image, index, epoch), label
