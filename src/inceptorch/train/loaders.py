"""The batches a run reads: augmented training batches, validation batches, and calibration batches (training
images seen as at evaluation, for BatchNorm statistics and data-dependent initialisation)."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, Subset

from ..data.datasets import ImageList
from ..data.gpu_pipeline import DeviceAugment, DeviceBatches, EncodedImages, collate_encoded
from ..data.transforms import SeededDataset, eval_transform, train_transform
from ..data.uint8_batches import DeviceNormalize, NormalizedBatches
from ..errors import UserError
from ..models._registry import ModelCfg
from .config import TrainConfig
from .distributed import DistEnv, ShardSampler
from .samplers import EpochSampler, EpochTagged, balanced_image_weights


@dataclass
class Loaders:
    train: Iterable  # (images, labels) on the device, normalised
    val: Iterable
    calibration: Iterable  # (images, labels): up to `calibration_images` training images, evaluation transform
    sampler: EpochSampler
    augment: SeededDataset | DeviceAugment  # holds the epoch that seeds each sample's augmentation
    batch_size: int
    steps_per_epoch: int
    batches_per_epoch: int  # whole optimizer steps only


def loader_workers(requested: int | None, device: torch.device) -> int:
    """DataLoader processes for `workers: null`, the default: none on the CPU, where the training step already uses
    every core; on a GPU, the cores this process may use, shared with the other training processes on this machine
    (torchrun's LOCAL_WORLD_SIZE), less one for the process itself, at most 16. Loading in the GPU's own process
    starves it: even 15 workers decoding 500x375 JPEGs fed an H100 under a fifth of what GoogLeNet trains at."""
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(16, per_process - 1))


def worker_options(workers: int, prefetch: int = 2) -> dict:
    """DataLoader options: `workers` processes that live for the whole run (none re-spawned each epoch), each
    `prefetch` batches ahead; none at all for 0 workers (loading in the main process)."""
    return {"num_workers": workers, "persistent_workers": True, "prefetch_factor": prefetch} if workers else {}


def build_loaders(cfg: TrainConfig, model_cfg: ModelCfg, train_base: ImageList, val_base: ImageList,
                  input_size: int, device: torch.device, channels_last: bool, workers: int, dist: DistEnv,
                  calibration_images: int) -> Loaders:
    n, world = len(train_base), dist.world_size
    batches = n // (cfg.batch_size * world) if n >= cfg.batch_size * world else 1
    batch_size = max(1, min(cfg.batch_size, n // world))
    if batches < cfg.accum_steps:
        raise UserError(f"{n} training images make {batches} batches of {batch_size}, fewer than "
                        f"--accum-steps {cfg.accum_steps}")
    steps_per_epoch = batches // cfg.accum_steps
    batches_per_epoch = steps_per_epoch * cfg.accum_steps
    weights = balanced_image_weights(train_base.targets) if cfg.class_balance == "sampler" else None
    sampler = EpochSampler(n, batch_size, batches_per_epoch, cfg.seed, dist.rank, world, weights)
    pin = device.type == "cuda"
    # Own generators: creating an iterator then draws nothing from the global generator (exact resume).
    generator = torch.Generator().manual_seed(cfg.seed)
    normalize = DeviceNormalize(model_cfg, device, channels_last)
    if cfg.gpu_decode:  # workers read files; the main process decodes and augments on the device
        augment = DeviceAugment(model_cfg, cfg.aug, input_size, cfg.hflip, cfg.seed, channels_last=channels_last)
        files = DataLoader(EncodedImages(train_base), batch_size=batch_size, sampler=sampler,
                           collate_fn=collate_encoded, generator=generator,
                           **worker_options(workers, prefetch=4))  # batches of file bytes are small
        train = DeviceBatches(files, augment, device)
    else:  # workers decode and augment; batches cross as uint8 and are normalised on the device
        transform = train_transform(cfg.aug, model_cfg, cfg.hflip, input_size, normalize=False,
                                    auto_augment=cfg.auto_augment, random_erasing=cfg.random_erasing)
        augment = SeededDataset(train_base, transform, cfg.seed)
        images = DataLoader(augment, batch_size=batch_size, sampler=EpochTagged(sampler), pin_memory=pin,
                            generator=generator, **worker_options(workers))
        train = NormalizedBatches(images, normalize)
    evaluated = eval_transform(model_cfg, input_size, normalize=False)
    val_base.transform = evaluated
    # Each rank evaluates every world_size-th image, no padding; `evaluate` sums the counts over ranks.
    val_sampler = ShardSampler(len(val_base), dist.rank, world)
    val = NormalizedBatches(DataLoader(val_base, batch_size=max(batch_size, 64), sampler=val_sampler,
                                       pin_memory=pin, generator=torch.Generator(), **worker_options(workers)),
                            normalize)
    # The same images on every rank (a fixed draw of the seed), so every rank computes the same statistics.
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))[:calibration_images].tolist()
    calibration_set = Subset(ImageList(train_base.samples, train_base.class_names, evaluated), chosen)
    # Read a few times per run at most: workers started for each pass, not kept alive beside the training ones.
    calibration = NormalizedBatches(DataLoader(calibration_set, batch_size=max(batch_size, 32), pin_memory=pin,
                                               generator=torch.Generator(), num_workers=min(workers, 4)), normalize)
    return Loaders(train, val, calibration, sampler, augment, batch_size, steps_per_epoch, batches_per_epoch)
