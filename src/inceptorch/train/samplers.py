"""Which training images each optimizer step sees: one seeded order per epoch, resumable at any batch.

Epoch e's order comes from a generator seeded with (seed, e), so a run resumed mid-epoch replays exactly the
batches the interrupted one had left, and under torchrun every rank cuts the same order into its own slices.
"""
from __future__ import annotations

from collections import Counter

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Epoch e's order is a permutation from a generator seeded with (seed, e), cut to whole optimizer steps,
    started at any batch so that a resumed epoch sees exactly the batches the interrupted one had left.

    With `weights` (one per image) the order is drawn with replacement in proportion to them instead:
    class-balanced sampling when each image weighs 1 / (its class's image count).
    """

    def __init__(self, n: int, batch_size: int, batches_per_epoch: int, seed: int, rank: int = 0,
                 world_size: int = 1, weights: torch.Tensor | None = None):
        self.n, self.batch_size, self.batches, self.seed = n, batch_size, batches_per_epoch, seed
        self.rank, self.world_size, self.weights = rank, world_size, weights
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        # One order for all ranks; global batch b is its b-th slice of batch_size x world_size images,
        # of which rank r takes the r-th batch_size: every image once per epoch, none twice (DistributedSampler's job).
        total = self.batches * self.batch_size * self.world_size
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)[:total]
        else:
            order = torch.multinomial(self.weights, total, replacement=True, generator=g)
        shards = order.view(self.batches, self.world_size, self.batch_size)[:, self.rank]
        return iter(shards[self.start_batch:].reshape(-1).tolist())

    def __len__(self) -> int:
        return (self.batches - self.start_batch) * self.batch_size


class EpochTagged(Sampler):
    """(epoch, index) pairs from an `EpochSampler`, for `SeededDataset` behind persistent workers: each worker keeps
    its own copy of the dataset, which never sees `set_epoch`, so the epoch travels with every index instead."""

    def __init__(self, sampler: EpochSampler):
        self.sampler = sampler

    def __iter__(self):
        epoch = self.sampler.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


def balanced_image_weights(targets: list[int]) -> torch.Tensor:
    """1 / (class size) per image: every class is drawn equally often, whatever its share of the data."""
    counts = Counter(targets)
    return torch.tensor([1.0 / counts[t] for t in targets], dtype=torch.float64)


def balanced_class_weights(targets: list[int], num_classes: int) -> torch.Tensor:
    """Loss weights n / (classes x class size) (scikit-learn's "balanced"): each class contributes as much to the
    loss as if the data were balanced, and the weights average 1 over the images. Absent classes weigh 0."""
    counts = torch.bincount(torch.tensor(targets, dtype=torch.long), minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, len(targets) / (present * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()
