"""Winograd inside a whole compiled model: one process, torchvision's channels_last eager model as yardstick,
ours compiled with direct 3x3 convs and with Winograd F(2x2, 3x3), timed interleaved (BENCHMARKS.md, AMD EPYC).

    PYTHONPATH=src python benchmarks/winograd_ab.py [--rounds 60] [--model googlenet_bn|inception_v3]

Median and min of `--rounds` rounds of 5 calls each, the order reversed every round; batch 1, the model's input size,
2 threads, fp32, 1x1 convs as oneDNN convs on both of ours (so only Winograd differs).
"""
from __future__ import annotations

import argparse
import statistics

import torch
import torchvision

from inceptorch import create_model
from inceptorch.bench import time_interleaved
from inceptorch.fast import compile_for_inference, optimize


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--model", choices=("googlenet_bn", "inception_v3"), default="googlenet_bn")
    args = p.parse_args()
    torch.set_num_threads(2)
    cl = torch.channels_last
    arch = "googlenet" if args.model == "googlenet_bn" else args.model
    reference = getattr(torchvision.models, arch)(aux_logits=False, init_weights=False).eval().to(memory_format=cl)
    ours = create_model(args.model, aux_logits=False).eval()
    size = ours.default_cfg.input_size
    x = torch.randn(1, 3, size, size).contiguous(memory_format=cl)
    with torch.inference_mode():
        models = {"torchvision channels_last eager": reference}
        for name, winograd in (("ours compiled, direct 3x3", False), ("ours compiled, Winograd 3x3", True)):
            models[name] = compile_for_inference(optimize(ours, matmul_1x1=False, winograd=winograd))
        runs = {name: (lambda m=m: m(x)) for name, m in models.items()}
        times = time_interleaved(runs, warmup=5, repeats=args.rounds, iters=5)
    yardstick = statistics.median(times["torchvision channels_last eager"]) * 1e3
    for name, seconds in times.items():
        t = [s * 1e3 for s in seconds]
        med = statistics.median(t)
        print(f"{name:32s} median {med:6.2f} ms   min {min(t):6.2f} ms   speed-up {yardstick / med:.3f}")


if __name__ == "__main__":
    main()
