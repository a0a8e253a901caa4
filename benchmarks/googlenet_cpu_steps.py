"""What each step of the optimized inference path gives on the CPU, one step added at a time.

    PYTHONPATH=src python benchmarks/googlenet_cpu_steps.py [--rounds 15] [--compile] [--jit]

One process, every variant timed interleaved (order reversed every round), median and min of `--rounds` rounds of
5 calls, batch 1, 224x224, 2 threads, fp32. Every optimize option is spelled out, so that the rows mean the same on
every CPU (optimize's defaults depend on the CPU vendor).
"""
from __future__ import annotations

import argparse
import copy
import statistics

import torch
import torchvision

from inceptorch import create_model
from inceptorch.bench import optimize_unmerged, time_interleaved
from inceptorch.fast import compile_for_inference, optimize


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--compile", action="store_true",
                   help="add ours through compile_for_inference (inductor, freezing, C++ wrapper)")
    p.add_argument("--jit", action="store_true", help="add ours through torch.jit.trace + freeze")
    args = p.parse_args()
    torch.set_num_threads(2)
    cl = torch.channels_last
    tv = torchvision.models.googlenet(aux_logits=False, init_weights=False).eval()
    ours = create_model("googlenet_bn", aux_logits=False).eval()
    x = torch.randn(1, 3, 224, 224)
    xc = x.contiguous(memory_format=cl)
    variants = {"torchvision nchw eager": (tv, x),
                "torchvision channels_last eager": (copy.deepcopy(tv).to(memory_format=cl), xc),
                "ours plain channels_last eager": (copy.deepcopy(ours).to(memory_format=cl), xc),
                "+ BN folded": (optimize_unmerged(ours, matmul_1x1=False, winograd=False), xc),
                "+ 1x1 merged": (optimize(ours, matmul_1x1=False, winograd=False), xc),
                "+ 1x1 convs as GEMMs": (optimize(ours, matmul_1x1=True, winograd=False), xc)}
    with torch.inference_mode():
        if args.jit:
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(optimize(ours), xc)))
            variants["ours jit.trace + freeze"] = (frozen, xc)
        if args.compile:  # freezing, C++ wrapper; Winograd only changes the compiled model
            for name, gemm, winograd in (("merged, compiled (inductor)", False, False),
                                         ("merged, 1x1 as GEMMs, compiled", True, False),
                                         ("merged, Winograd 3x3, compiled", False, True),
                                         ("merged, 1x1 as GEMMs, Winograd 3x3, compiled", True, True)):
                compiled = compile_for_inference(optimize(ours, matmul_1x1=gemm, winograd=winograd))
                compiled(xc)
                variants[name] = (compiled, xc)
        runs = {name: (lambda model=model, inp=inp: model(inp)) for name, (model, inp) in variants.items()}
        times = time_interleaved(runs, warmup=3, repeats=args.rounds, iters=5)
    for name, seconds in times.items():
        t = [s * 1e3 for s in seconds]
        print(f"{name:44s} median {statistics.median(t):7.2f} ms   min {min(t):7.2f} ms")


if __name__ == "__main__":
    main()
