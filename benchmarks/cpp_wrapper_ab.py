"""What inductor's C++ wrapper gives a compiled batch-1 model on the CPU: `compile_for_inference` with and without it,
compile time (the first call) and latency interleaved in one process (BENCHMARKS.md).

    PYTHONPATH=src python benchmarks/cpp_wrapper_ab.py [--rounds 40] [--model googlenet_bn] [--threads 2]

Median and min of `--rounds` rounds of 5 calls each, the order reversed every round; fp32, the model's input size,
BN statistics calibrated on one random batch (as `inceptorch bench --runtime onnxruntime` does, so that no layer
computes on denormal floats).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from inceptorch import create_model
from inceptorch.bench import time_interleaved
from inceptorch.bench.runtimes import calibrate_batchnorm
from inceptorch.fast import compile_for_inference, optimize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--model", default="googlenet_bn")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = create_model(args.model)
    size = model.default_cfg.input_size
    calibrate_batchnorm(model, size)
    fast = optimize(model)
    x = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    sides = {}
    for name, cpp_wrapper in (("C++ wrapper", True), ("Python wrapper", False)):
        side = compile_for_inference(copy.deepcopy(fast))  # a model of its own: dynamo caches per module
        side.options = {**side.options, "cpp_wrapper": cpp_wrapper}
        sides[name] = side
    compile_s = {}
    with torch.inference_mode():
        reference = fast(x)
        for name, side in sides.items():
            start = time.perf_counter()
            out = side(x)  # compiles
            compile_s[name] = time.perf_counter() - start
            assert (out - reference).abs().max() < 1e-3 * reference.abs().max()
        calls = {name: (lambda side=side: side(x)) for name, side in sides.items()}
        times = {name: [s * 1e3 for s in seconds]
                 for name, seconds in time_interleaved(calls, warmup=2, repeats=args.rounds, iters=5).items()}
    print(f"{args.model}, batch 1, {args.threads} threads, fp32, {size} px, torch {torch.__version__}")
    for name, values in times.items():
        print(f"{name:15s} compile {compile_s[name]:6.1f} s   median {statistics.median(values):6.2f} ms   "
              f"min {min(values):6.2f} ms   quartiles {statistics.quantiles(values, n=4)[0]:6.2f}-"
              f"{statistics.quantiles(values, n=4)[2]:6.2f} ms")


if __name__ == "__main__":
    main()
