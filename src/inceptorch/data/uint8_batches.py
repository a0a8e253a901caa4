"""Batches that leave the DataLoader workers as uint8 and are normalised where the model runs.

A worker whose transform ends in `ToDtype(float32) + Normalize` hands the main process four bytes per pixel through
shared memory; the main process then pins and copies those bytes again. Ending the transform at the uint8 tensor
(`train_transform(..., normalize=False)`) moves a quarter of the bytes, and the conversion runs once per batch on
the device, where it costs a few elementwise kernels. timm's `PrefetchLoader` does the same for the same reason.
Measured in BENCHMARKS.md ("CPU decode path: uint8 hand-over").

    loader = DataLoader(SeededDataset(base, train_transform("paper", cfg, normalize=False), seed), ...)
    for images, labels in NormalizedBatches(loader, DeviceNormalize(cfg, device, channels_last=True)):
        ...  # images: float32 (B, 3, S, S) on `device`, equal to what `train_transform("paper", cfg)` gives
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from ..models._registry import ModelCfg


def normalize_uint8(images: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 images (..., 3, H, W) -> float32 (x / 255 - mean) / std, with `mean` and `std` shaped to broadcast.

    torchvision's `ToDtype(float32, scale=True)` then `Normalize`, the same operations in the same order, so the
    result is bit-identical to the float transforms' on the CPU.
    """
    return images.to(torch.float32, copy=True).mul_(1.0 / 255).sub_(mean).div_(std)  # never in place on the input


class DeviceNormalize:
    """(B, 3, H, W) uint8 batch -> float32 on `device`, normalised with the model's mean and std (`normalize_uint8`,
    whose mean and std tensors are made on the device once). `channels_last` reorders the uint8 batch, before the
    conversion, so that the float batch is born in the layout the model wants.
    """

    def __init__(self, cfg: ModelCfg, device: torch.device | str, channels_last: bool = False):
        self.device = torch.device(device)
        self.mean = torch.tensor(cfg.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: Tensor) -> Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) uint8 batch, got {images.dtype} {tuple(images.shape)}")
        x = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        return normalize_uint8(x, self.mean, self.std)


class NormalizedBatches:
    """Wraps a DataLoader of (uint8 images, labels): yields (normalised float images, labels), both on the device."""

    def __init__(self, loader: Iterable, normalize: DeviceNormalize):
        self.loader, self.normalize = loader, normalize

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        device = self.normalize.device
        for images, labels in self.loader:
            yield self.normalize(images), labels.to(device, non_blocking=True)
