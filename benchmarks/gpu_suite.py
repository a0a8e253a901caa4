"""The GPU figures in one call: each `inceptorch bench` configuration in its own process, with a time limit.

A separate process per configuration keeps torch.compile's caches and dynamo's recompile counters of one model
from touching the next. Every result is written as JSON under --out as soon as it exists (a lease can end
mid-run), and a table of all of them is printed last.

    PYTHONPATH=src python benchmarks/gpu_suite.py --out $OUT --only googlenet
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# (name, model, reference library, extra bench flags). Batch 256, bf16, channels_last, the figures' settings.
SUITE = [
    ("googlenet_infer_eager", "googlenet_bn", "torchvision", ["--mode", "infer"]),
    ("googlenet_infer_compiled", "googlenet_bn", "torchvision", ["--mode", "infer", "--compile"]),
    ("googlenet_train_eager", "googlenet_bn", "torchvision", ["--mode", "train"]),
    ("googlenet_train_compiled", "googlenet_bn", "torchvision", ["--mode", "train", "--compile"]),
    ("inception_v3_infer_compiled", "inception_v3", "torchvision", ["--mode", "infer", "--compile"]),
    ("inception_v3_train_compiled", "inception_v3", "torchvision", ["--mode", "train", "--compile"]),
    ("inception_v4_infer_compiled", "inception_v4", "timm", ["--mode", "infer", "--compile"]),
    ("inception_v4_train_compiled", "inception_v4", "timm", ["--mode", "train", "--compile"]),
    ("inception_resnet_v2_infer_compiled", "inception_resnet_v2", "timm", ["--mode", "infer", "--compile"]),
    ("inception_resnet_v2_train_compiled", "inception_resnet_v2", "timm", ["--mode", "train", "--compile"]),
    # Does merging the sibling 1x1 convs pay on the GPU? (Inception-v4 lost 4% merged: the split outputs are
    # channel slices, copied before each following conv in channels_last.)
    ("googlenet_infer_compiled_unmerged", "googlenet_bn", "torchvision",
     ["--mode", "infer", "--compile", "--no-merge"]),
    ("inception_v4_infer_compiled_unmerged", "inception_v4", "timm", ["--mode", "infer", "--compile", "--no-merge"]),
    ("googlenet_infer_autotune", "googlenet_bn", "torchvision",
     ["--mode", "infer", "--compile", "--compile-mode", "max-autotune-no-cudagraphs"]),
    # 1x1 convs as GEMMs (on by default only on the CPU, where it was measured faster): on the GPU a GEMM's
    # bias+ReLU epilogue can be fused by inductor, and with max-autotune written straight into the concatenation.
    ("googlenet_infer_compiled_matmul", "googlenet_bn", "torchvision",
     ["--mode", "infer", "--compile", "--matmul-1x1", "on"]),
    ("googlenet_infer_autotune_matmul", "googlenet_bn", "torchvision",
     ["--mode", "infer", "--compile", "--compile-mode", "max-autotune-no-cudagraphs", "--matmul-1x1", "on"]),
]
COMMON = ["--device", "cuda", "--batch-size", "256", "--precision", "bf16", "--warmup", "5", "--repeats", "10",
          "--iters", "10", "--json"]


def run_one(name: str, model: str, library: str, flags: list[str], out: Path, timeout: float) -> dict | None:
    cmd = [sys.executable, "-m", "inceptorch", "bench", "--model", model, "--compare", library, *COMMON, *flags]
    start = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        print(f"{name}: over {timeout:.0f} s, skipped", flush=True)
        return None
    (out / f"{name}.log").write_text(proc.stderr[-20000:])
    if proc.returncode != 0:
        print(f"{name}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    result = json.loads(proc.stdout)
    result["command"] = "PYTHONPATH=src python -m inceptorch " + " ".join(cmd[3:])
    result["wall_s"] = round(time.time() - start, 1)
    (out / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(f"{name}: speed-up {result['speedup']:.3f} ({result['wall_s']} s)", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "bench_out")))
    parser.add_argument("--only", nargs="*", default=None, help="run the configurations whose name holds one of these")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per configuration")
    parser.add_argument("--budget", type=float, default=560, help="stop starting new configurations after this")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start, results = time.time(), {}
    for name, model, library, flags in SUITE:
        if args.only and not any(key in name for key in args.only):
            continue
        left = args.budget - (time.time() - start)
        if left < 30:
            print(f"{name}: no time left", flush=True)
            continue
        r = run_one(name, model, library, flags, args.out, min(args.timeout, left))
        if r:
            results[name] = r
    print(f"\n{'configuration':38s}{'ours img/s':>12s}{'ref img/s':>12s}{'speed-up':>9s}"
          f"{'ours MiB':>10s}{'ref MiB':>9s}")
    for name, r in results.items():
        o, ref = r["ours"], r["reference"]
        print(f"{name:38s}{o['images_per_s']:12.0f}{ref['images_per_s']:12.0f}{r['speedup']:9.3f}"
              f"{o['peak_mem_mb'] or 0:10.0f}{ref['peak_mem_mb'] or 0:9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
