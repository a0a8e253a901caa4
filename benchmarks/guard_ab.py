"""What dynamo's guard check costs a compiled batch-1 model: the same `compile_for_inference` object called with its
guards evaluated (as before) and skipped (its default now), interleaved in one process (BENCHMARKS.md).

    PYTHONPATH=src python benchmarks/guard_ab.py [--rounds 60] [--model googlenet_bn]

Median and min of `--rounds` rounds of 5 calls each, the order reversed every round; 2 threads, fp32, the model's
input size; also the profiler's "TorchDynamo Cache Lookup" time per call for both.
"""
from __future__ import annotations

import argparse
import statistics

import torch
from torch.profiler import profile

from inceptorch import create_model
from inceptorch.bench import time_interleaved
from inceptorch.fast import compile_for_inference, compiled, optimize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--model", default="googlenet_bn")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = create_model(args.model).eval()
    size = model.default_cfg.input_size
    x = torch.randn(1, 3, size, size).contiguous(memory_format=torch.channels_last)
    fast = compile_for_inference(optimize(model))

    def evaluated() -> torch.Tensor:  # what a seen input ran as before: plain torch.compile dispatch
        return fast.compiled(x)

    def skipped() -> torch.Tensor:
        return fast(x)

    calls = {"guards evaluated": evaluated, "guards skipped": skipped}
    with torch.inference_mode():
        reference = fast(x)  # compiles
        assert all(torch.equal(call(), reference) for call in calls.values())
        times = {name: [s * 1e3 for s in seconds]
                 for name, seconds in time_interleaved(calls, warmup=1, repeats=args.rounds, iters=5).items()}
        lookups = {}
        for name, call in calls.items():
            with profile() as prof:
                for _ in range(20):
                    call()
            lookups[name] = sum(e.self_cpu_time_total for e in prof.key_averages() if "Cache Lookup" in e.key) / 20
    print(f"{args.model}, batch 1, 2 threads, fp32, torch {torch.__version__}, "
          f"guard skipping available: {compiled.CAN_SKIP_GUARDS}")
    for name, values in times.items():
        print(f"{name:17s} median {statistics.median(values):6.2f} ms   min {min(values):6.2f} ms   "
              f"dynamo cache lookup {lookups[name] / 1e3:5.2f} ms per call")


if __name__ == "__main__":
    main()
