"""NCHW against channels_last (NHWC) on the CPU: every model's training step and eval forward, and the demo end
to end (BENCHMARKS.md, "CPU layout").

    PYTHONPATH=src python benchmarks/cpu_layout_ab.py [--models ...] [--threads 2] [--rounds 6] [--eval] [--demo 2]

Steps: `inceptorch train`'s own step (`fast.TrainStep`: the engine's ForwardLoss, train's SGD, foreach on the CPU)
on two copies of one model with the same weights and batch, one per layout, timed interleaved in one process. The
small models run at their 32 px input, batch 32; the ImageNet models at 112 px, batch 8 (their 224-299 px steps
take seconds on two cores, and the layout's gain comes from the same kernels). Speed-up = NCHW time / NHWC time.

`--eval`: instead of the step, what `inceptorch eval` and `predict` run per batch (`Member.probabilities`: uint8
crops normalised, the eval-mode forward, softmax), batch 64 at 32 px and 16 at 112 px. BN statistics are set from
one random batch first (`calibrate_batchnorm`, as `inceptorch bench` does) and denormals are flushed: an untrained
model's eval-mode activations otherwise shrink into denormal floats, which x86 computes ~100x slower.

`--demo N`: N runs of each layout of the demo recipe on the embedded digits (`inceptorch train --config demo --data
digits`, alternating), as a user runs it; the epochs' img/s from metrics.csv and the wall time of each run.
"""
from __future__ import annotations

import argparse
import copy
import csv
import functools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from inceptorch import create_model
from inceptorch.bench.runtimes import calibrate_batchnorm
from inceptorch.bench.timing import time_interleaved
from inceptorch.evaluation import Member
from inceptorch.fast.train_step import TrainStep
from inceptorch.models import get_model_cfg, list_models

IMAGENET_SIZE, IMAGENET_BATCH = 112, 8
SMALL_BATCH = 32
EVAL_SMALL_BATCH, EVAL_IMAGENET_BATCH = 64, 16


def geometry(name: str, evaluating: bool) -> tuple[int, int]:
    cfg = get_model_cfg(name)
    if cfg.input_size <= 64:
        return cfg.input_size, EVAL_SMALL_BATCH if evaluating else SMALL_BATCH
    return max(IMAGENET_SIZE, cfg.min_input_size), EVAL_IMAGENET_BATCH if evaluating else IMAGENET_BATCH


def print_row(name: str, size: int, batch: int, times: dict) -> None:
    a, b = statistics.median(times["nchw"]) * 1e3, statistics.median(times["nhwc"]) * 1e3
    default = "NHWC" if get_model_cfg(name).cpu_channels_last else "NCHW"
    print(f"{name:24s} {size:4d} {batch:5d} {a:9.1f} {b:9.1f} {a / b:7.2f}x  {default}", flush=True)


HEADER = f"{'model':24s} {'size':>4s} {'batch':>5s} {'NCHW ms':>9s} {'NHWC ms':>9s} {'speed-up':>8s}  default"


def eval_speedups(names: list[str], rounds: int) -> None:
    torch.set_flush_denormal(True)
    print("eval forward (Member.probabilities)\n" + HEADER)
    for name in names:
        size, batch = geometry(name, evaluating=True)
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        calibrate_batchnorm(model, size)
        cfg = {"mean": model.default_cfg.mean, "std": model.default_cfg.std}
        members = {layout: Member(copy.deepcopy(model).to(memory_format=torch.channels_last) if layout == "nhwc"
                                  else copy.deepcopy(model), [], cfg, name, channels_last=layout == "nhwc")
                   for layout in ("nchw", "nhwc")}
        crops = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
        runs = {layout: functools.partial(m.probabilities, crops, 1, batch) for layout, m in members.items()}
        print_row(name, size, batch, time_interleaved(runs, warmup=2, repeats=rounds, iters=2))


def step_speedups(names: list[str], rounds: int) -> None:
    print("training step (TrainStep)\n" + HEADER)
    for name in names:
        size, batch = geometry(name, evaluating=False)
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        x = torch.randn(batch, 3, size, size)
        y = torch.randint(0, 10, (batch,))
        nchw = TrainStep(copy.deepcopy(model), channels_last=False, lr=1e-3)
        nhwc = TrainStep(copy.deepcopy(model), channels_last=True, lr=1e-3)
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        runs = {"nchw": functools.partial(nchw, x, y), "nhwc": functools.partial(nhwc, x_nhwc, y)}
        print_row(name, size, batch, time_interleaved(runs, warmup=2, repeats=rounds, iters=2))


def demo_runs(count: int) -> None:
    """The demo recipe, layouts alternating; each run in its own process, as a user starts it."""
    sides = {"NCHW": "channels_last=false", "NHWC": "channels_last=true"}
    results = {side: [] for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(count):
            for side in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
                out = Path(tmp) / f"{side}{r}"
                cmd = [sys.executable, "-m", "inceptorch", "train", "--config", "demo", "--data", "digits",
                       "--output", str(out), "--no-progress", "--set", "tensorboard=false", "--set", sides[side]]
                start = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                wall = time.perf_counter() - start
                with open(out / "metrics.csv") as f:
                    rows = list(csv.DictReader(f))
                speed = statistics.median(float(row["images_per_s"]) for row in rows)
                results[side].append((wall, speed, float(rows[-1]["val_top1"])))
                print(f"demo {side}: {wall:5.1f} s, median epoch {speed:5.0f} img/s, "
                      f"last val top-1 {rows[-1]['val_top1']}", flush=True)
    walls = {side: statistics.median(w for w, _, _ in runs) for side, runs in results.items()}
    print(f"demo wall: NCHW {walls['NCHW']:.1f} s, NHWC {walls['NHWC']:.1f} s, "
          f"speed-up {walls['NCHW'] / walls['NHWC']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list_models())
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--eval", action="store_true", help="time the eval forward instead of the training step")
    parser.add_argument("--demo", type=int, default=0, metavar="N", help="also N demo runs of each layout")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    (eval_speedups if args.eval else step_speedups)(args.models, args.rounds)
    if args.demo:
        demo_runs(args.demo)


if __name__ == "__main__":
    main()
