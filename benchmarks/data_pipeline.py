"""Does the data pipeline keep the GPU fed? (training fed from JPEG files at >= 80% of synthetic speed)

    # H100 defaults: 4096 images, batch 256, 12 workers
    PYTHONPATH=src python benchmarks/data_pipeline.py --out results/
    PYTHONPATH=src python benchmarks/data_pipeline.py --images 64 --batch-size 16 --workers 2 --device cpu  # smoke

One process. Writes `--images` ordinary photos' worth of JPEGs (500x375, textured, quality 90, about 100 KB) in
ImageFolder layout to a temporary folder (so all are in the page cache, as a warm data set is), then times, each after
one untimed pass that starts the workers and compiles what is compiled:
  (a) the CPU path: `load_image` + the `paper` train transform in W workers, batches moved to the device (pinned):
      as float32 (the transform normalises in the worker), then as uint8 normalised on the device (what `train`
      does), then `TrainStep` fed by the uint8 one,
  (b) the device path: workers read bytes, `decode_jpeg` on the device, `DeviceAugment("paper")`,
  (c) `TrainStep` (bf16 autocast on CUDA, channels_last) fed by (b), whose batches a background thread makes one
      ahead on a side stream on CUDA (`--ahead`); then, as `train_fed_inline_decode`, the same with (b) inline,
  (d) the same `TrainStep` on one batch that is already on the device (the ceiling),
and prints images/s for each and each fed rate over (d). On CUDA every timing is bracketed by torch.cuda.synchronize.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from inceptorch.data.datasets import build_dataset
from inceptorch.data.gpu_pipeline import DeviceAugment, DeviceBatches, EncodedImages, collate_encoded
from inceptorch.data.transforms import SeededDataset, train_transform
from inceptorch.data.uint8_batches import DeviceNormalize, NormalizedBatches
from inceptorch.fast.train_step import TrainStep
from inceptorch.models import create_model

WIDTH, HEIGHT, CLASSES = 500, 375, 10


def _photo(job: tuple[Path, int]) -> None:
    """Smooth colour fields plus fine noise: a JPEG of roughly a real photo's size (about 100 KB at quality 90)."""
    path, seed = job
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((WIDTH, HEIGHT),
                                                                                        Image.BICUBIC)
    pixels = np.asarray(coarse, dtype=np.float32) + rng.normal(0, 16, (HEIGHT, WIDTH, 3))
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def make_images(root: Path, n: int, processes: int) -> float:
    """n JPEGs in root/train/<class>/ (and one per class in root/val/); returns their mean size in KB."""
    jobs = []
    for i in range(n):
        folder = root / "train" / f"c{i % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        jobs.append((folder / f"{i}.jpg", i))
    for c in range(CLASSES):
        (root / "val" / f"c{c}").mkdir(parents=True, exist_ok=True)
        jobs.append((root / "val" / f"c{c}" / "0.jpg", n + c))
    with multiprocessing.Pool(max(1, processes)) as pool:
        pool.map(_photo, jobs, chunksize=16)
    return sum(p.stat().st_size for p, _ in jobs[:n]) / n / 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(batches, device: torch.device, step=None, passes: int = 1) -> float:
    """Images per second over `passes` full passes of `batches`, after one untimed pass."""
    def one_pass() -> int:
        count = 0
        for images, labels in batches:
            images = images.to(device, non_blocking=True)
            if step is not None:
                step(images, labels.to(device, non_blocking=True))
            count += labels.numel()
        return count

    one_pass()
    _sync(device)
    tic = time.perf_counter()
    count = sum(one_pass() for _ in range(passes))
    _sync(device)
    return count / (time.perf_counter() - tic)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=None, metavar="DIR", help="write data_pipeline.json here")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--images", type=int, default=4096)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--model", default="googlenet_bn")
    p.add_argument("--input-size", type=int, default=None, help="default: the model's (small for a CPU smoke run)")
    p.add_argument("--passes", type=int, default=2, help="timed passes over the images for each measurement")
    p.add_argument("--ahead", type=int, default=None,
                   help="batches the device path makes ahead in a background thread (default: 1 on CUDA, 0 on CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the train step's forward+loss")
    args = p.parse_args()
    device = torch.device(args.device)
    model = create_model(args.model, num_classes=CLASSES).to(device)
    cfg = model.default_cfg
    size = args.input_size or cfg.input_size
    root = Path(tempfile.mkdtemp(prefix="inceptorch_pipeline_"))
    try:
        tic = time.perf_counter()
        kb = make_images(root, args.images, args.workers or 1)
        print(f"{args.images} JPEGs {WIDTH}x{HEIGHT}, mean {kb:.0f} KB, written in {time.perf_counter() - tic:.1f}s")
        train = build_dataset(root, "train")
        loader_options = {"batch_size": args.batch_size, "shuffle": True, "drop_last": True,
                          "num_workers": args.workers, "persistent_workers": args.workers > 0}
        if args.workers:
            loader_options["prefetch_factor"] = 4
        pin = device.type == "cuda"
        float_set = SeededDataset(train, train_transform("paper", cfg, input_size=size), seed=0)
        float_loader = DataLoader(float_set, pin_memory=pin, **loader_options)
        uint8_set = SeededDataset(train, train_transform("paper", cfg, input_size=size, normalize=False), seed=0)
        cpu_loader = NormalizedBatches(DataLoader(uint8_set, pin_memory=pin, **loader_options),
                                       DeviceNormalize(cfg, device, channels_last=True))
        files = DataLoader(EncodedImages(train), collate_fn=collate_encoded, **loader_options)
        device_batches = DeviceBatches(files, DeviceAugment(cfg, "paper", size, seed=0), device, ahead=args.ahead)
        inline_batches = DeviceBatches(files, DeviceAugment(cfg, "paper", size, seed=0), device, ahead=0)

        results = {"cpu_decode_augment_float32": timed(float_loader, device, passes=args.passes)}
        del float_loader  # its workers would compete with the others for the CPU cores
        results["cpu_decode_augment_uint8"] = timed(cpu_loader, device, passes=args.passes)
        step = TrainStep(model, precision="bf16" if device.type == "cuda" else "fp32", compile=args.compile)
        results["train_fed_by_cpu_path"] = timed(cpu_loader, device, step, passes=args.passes)
        del cpu_loader
        results["device_decode_augment"] = timed(device_batches, device, passes=args.passes)
        results["train_fed_by_device_path"] = timed(device_batches, device, step, passes=args.passes)
        if device_batches.ahead:  # the same without the background producer: what making batches ahead gives
            results["train_fed_inline_decode"] = timed(inline_batches, device, step, passes=args.passes)
        x = torch.randn(args.batch_size, 3, size, size, device=device)
        synthetic = [(x, torch.randint(0, CLASSES, (args.batch_size,), device=device))] * len(files)
        results["train_synthetic"] = timed(synthetic, device, step, passes=args.passes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratios = {path: results[f"train_fed_by_{path}_path"] / results["train_synthetic"] for path in ("cpu", "device")}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"\n{args.model} at {size} px, batch {args.batch_size}, {args.workers} workers, {name}, "
          f"compile={args.compile}")
    print(f"{'measurement':<34}{'images/s':>10}")
    for key, value in results.items():
        print(f"{key:<34}{value:>10.0f}")
    for path, ratio in ratios.items():
        print(f"{f'fed by the {path} path / synthetic':<34}{ratio:>10.1%}   (target: >= 80%)")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        record = {**vars(args), "device_name": name, "jpeg_kb": kb, "images_per_s": results, "fed_ratio": ratios,
                  "torch": torch.__version__}
        (out / "data_pipeline.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
