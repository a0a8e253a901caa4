"""Files/s that DataLoader workers hand to the main process: 256 payloads as a list vs packed into one tensor.

Each tensor a worker returns crosses to the main process through shared memory on its own; this measures what
that costs for `--gpu-decode`'s byte batches (data/gpu_pipeline.py `collate_encoded`). CPU only, no decoding.

    PYTHONPATH=src python benchmarks/loader_handover.py --images 2048 --workers 2
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inceptorch.data.datasets import build_dataset
from inceptorch.data.gpu_pipeline import EncodedImages, collate_encoded


def as_list(batch):
    """The unpacked alternative: every payload its own tensor."""
    payloads, labels, indices = zip(*batch)
    return list(payloads), torch.tensor(labels), torch.tensor(indices)


def write_jpegs(root: Path, count: int) -> None:
    """Ordinary 500x375 photos-like JPEGs (smooth colour fields plus grain), about 90 KB at quality 90."""
    rng = np.random.default_rng(0)
    for i in range(count):
        folder = root / f"class{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        base = Image.fromarray(rng.integers(0, 255, (47, 63, 3), dtype=np.uint8)).resize((500, 375), Image.BILINEAR)
        grain = np.asarray(base).astype(np.int16) + rng.integers(-20, 20, (375, 500, 3))
        Image.fromarray(grain.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.jpg", quality=90)


def files_per_second(dataset, collate, workers: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, prefetch_factor=4)
    start, count = time.perf_counter(), 0
    for _, labels, _ in loader:
        count += len(labels)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        write_jpegs(Path(tmp), args.images)
        dataset = EncodedImages(build_dataset(tmp, "train", val_split=0.01))
        files_per_second(dataset, collate_encoded, args.workers, args.batch_size)  # page cache warm for both
        rates = {"list": [], "packed": []}
        for _ in range(args.rounds):  # alternating, so a busy moment hits both
            rates["list"].append(files_per_second(dataset, as_list, args.workers, args.batch_size))
            rates["packed"].append(files_per_second(dataset, collate_encoded, args.workers, args.batch_size))
    for name, values in rates.items():
        print(f"{name:7s} median {np.median(values):7.0f} files/s   ({', '.join(f'{v:.0f}' for v in values)})")
    print(f"packed / list: {np.median(rates['packed']) / np.median(rates['list']):.2f}x")


if __name__ == "__main__":
    main()
