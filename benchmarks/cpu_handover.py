"""Images/s of the CPU decode path: workers hand over float32 batches (normalised there) vs uint8 batches.

    PYTHONPATH=src python benchmarks/cpu_handover.py --images 2048 --workers 2 --batch-size 128 --rounds 3

1. Decoding: the same `paper` augmentation at 224 px on generated 500x375 JPEGs (data_pipeline.py's), rounds
   alternating between the two. The uint8 side includes `DeviceNormalize` in the main process (here on the CPU; on
   a GPU machine it runs on the device). Also what one worker's load + transform costs per image on its own.
2. The main process's share: workers that return a ready 224 px image (no decoding), batches of 256, each copied
   once into a reused buffer as the pin-memory thread does. Its CPU time per batch is the part that does not
   shrink with more workers, so it bounds the images/s of any number of them.
CPU only.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from data_pipeline import make_images
from torch.utils.data import DataLoader, Dataset

from inceptorch.data.datasets import build_dataset
from inceptorch.data.transforms import SeededDataset, train_transform
from inceptorch.data.uint8_batches import DeviceNormalize, NormalizedBatches
from inceptorch.models import create_model


def images_per_second(batches) -> float:
    start, count = time.perf_counter(), 0
    for images, labels in batches:
        count += len(labels)
    return count / (time.perf_counter() - start)


class ReadyImages(Dataset):
    """A decoded 224 px image, the same one every time: what is left is the hand-over."""

    def __init__(self, dtype: torch.dtype, count: int = 4096):
        self.image, self.count = torch.ones(3, 224, 224, dtype=dtype), count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return self.image, index


def main_process_ms_per_batch(dtype: torch.dtype, workers: int, batch_size: int = 256) -> float:
    loader = DataLoader(ReadyImages(dtype), batch_size=batch_size, num_workers=workers, persistent_workers=True,
                        prefetch_factor=4)
    images_per_second(loader)
    buffer = torch.empty(batch_size, 3, 224, 224, dtype=dtype)
    start, batches = time.process_time(), 0
    for images, _ in loader:
        buffer.copy_(images)
        batches += 1
    return (time.process_time() - start) / batches * 1e3


def worker_ms_per_image(base, cfg, normalize: bool, count: int = 256, warmup: int = 32) -> float:
    """Load + `paper` transform of `count` different images in this process, after `warmup` untimed ones."""
    samples = SeededDataset(base, train_transform("paper", cfg, normalize=normalize), seed=0)
    for i in range(warmup):
        samples[i]
    start = time.perf_counter()
    for i in range(count):
        samples[(warmup + i) % len(samples)]
    return (time.perf_counter() - start) / count * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="googlenet_bn")
    args = parser.parse_args()
    cfg = create_model(args.model, num_classes=10).default_cfg
    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp), args.images, args.workers)
        base = build_dataset(tmp, "train")
        options = {"batch_size": args.batch_size, "num_workers": args.workers, "persistent_workers": True,
                   "prefetch_factor": 4, "drop_last": True}
        paths = {
            "float32": DataLoader(SeededDataset(base, train_transform("paper", cfg), seed=0), **options),
            "uint8": NormalizedBatches(
                DataLoader(SeededDataset(base, train_transform("paper", cfg, normalize=False), seed=0), **options),
                DeviceNormalize(cfg, "cpu")),
        }
        for batches in paths.values():  # start the workers, warm the page cache
            images_per_second(batches)
        rates = {name: [] for name in paths}
        for _ in range(args.rounds):  # alternating, so a busy moment hits both
            for name, batches in paths.items():
                rates[name].append(images_per_second(batches))
        del paths
        torch.set_num_threads(1)  # as in a DataLoader worker
        per_image_ms = {name: [] for name in ("float32", "uint8")}
        for _ in range(args.rounds):
            for name, values in per_image_ms.items():
                values.append(worker_ms_per_image(base, cfg, normalize=name == "float32"))
    shares = {name: [] for name in ("float32", "uint8")}
    for _ in range(args.rounds):
        for name, values in shares.items():
            values.append(main_process_ms_per_batch(getattr(torch, name), args.workers))
    print(f"1. decode + paper augmentation at 224 px, {args.workers} workers, batch {args.batch_size}")
    for name, values in rates.items():
        print(f"{name:8s} median {np.median(values):6.0f} img/s   ({', '.join(f'{v:.0f}' for v in values)})")
    print(f"uint8 / float32: {np.median(rates['uint8']) / np.median(rates['float32']):.2f}x")
    for name, values in per_image_ms.items():
        print(f"one worker's time per image, {name:7s} transform: median {np.median(values):.2f} ms "
              f"({', '.join(f'{v:.2f}' for v in values)})")
    print("2. main-process CPU time per batch of 256 ready images (receive + one copy), and the bound it sets")
    for name, values in shares.items():
        ms = np.median(values)
        print(f"{name:8s} median {ms:6.1f} ms   ({', '.join(f'{v:.1f}' for v in values)})"
              f"   -> at most {256e3 / ms:6.0f} img/s")


if __name__ == "__main__":
    main()
