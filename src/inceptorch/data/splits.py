"""Deterministic train/val splits of a list of (sample, label) pairs: the same data and seed always hold out the
same samples, so that training and `inceptorch eval` agree on the validation images."""
from __future__ import annotations

import random

from ..errors import UserError


def random_split(samples: list, split: str, val_split: float, seed: int) -> list:
    """A deterministic split: the same seed and data always put the same samples in val."""
    if not 0 < val_split < 1:
        raise UserError(f"--val-split must be between 0 and 1, not {val_split}")
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(samples) * val_split))
    chosen = sorted(order[:n_val]) if split == "val" else sorted(order[n_val:])
    return [samples[i] for i in chosen]


def stratified_split(samples: list, split: str, val_split: float, seed: int) -> list:
    """A deterministic split that keeps each class's share: `val_split` of every class (at least one image of a
    class with two or more) goes to val, so a rare class is never missing from it by chance."""
    if not 0 < val_split < 1:
        raise UserError(f"--val-split must be between 0 and 1, not {val_split}")
    by_class: dict[int, list[int]] = {}
    for i, (_, label) in enumerate(samples):
        by_class.setdefault(label, []).append(i)
    held_out = set()
    for label, indices in sorted(by_class.items()):
        random.Random(seed * 1_000_003 + label).shuffle(indices)
        n_val = max(1, round(len(indices) * val_split)) if len(indices) > 1 else 0
        held_out.update(indices[:n_val])
    return [sample for i, sample in enumerate(samples) if (i in held_out) == (split == "val")]
