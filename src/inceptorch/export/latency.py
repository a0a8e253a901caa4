"""CPU latency of one forward pass: ONNX Runtime, eager PyTorch, int8; same timer and statistics for all.

Each runtime gets `threads` intra-op threads (2 and batch 1 by default: the issue's deployment setting), a warm-up,
then `iters` timed calls; we report milliseconds per batch (median and 90th percentile are robust to a noisy
shared machine, the mean is not).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class LatencyStats:
    runtime: str
    batch_size: int
    threads: int
    iters: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.runtime}: median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, min {self.min_ms:.2f} ms "
                f"(batch {self.batch_size}, {self.threads} threads, {self.iters} iters)")


def time_calls(fn: Callable[[], object], runtime: str, batch_size: int, threads: int, iters: int = 50,
               warmup: int = 5) -> LatencyStats:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return LatencyStats(runtime, batch_size, threads, iters, statistics.median(times),
                        times[min(len(times) - 1, int(0.9 * len(times)))], statistics.fmean(times), times[0])


@contextmanager
def torch_threads(threads: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def bench_torch(model: nn.Module | Callable, input_size: int, threads: int = 2, iters: int = 50,
                batch_size: int = 1, warmup: int = 5, runtime: str = "pytorch-eager") -> LatencyStats:
    """Latency of `model(x)` under no_grad with `threads` intra-op threads."""
    x = torch.randn(batch_size, 3, input_size, input_size)
    if isinstance(model, nn.Module):
        model.eval()
    with torch_threads(threads), torch.inference_mode():
        return time_calls(lambda: model(x), runtime, batch_size, threads, iters, warmup)


def bench_onnxruntime(model: nn.Module | str | Path, input_size: int | None = None, threads: int = 2,
                      iters: int = 50, batch_size: int = 1, warmup: int = 5) -> LatencyStats:
    """Latency of ONNX Runtime (CPU provider) on `model`: an ONNX file, or a module exported to a temporary one."""
    from .onnx import export_onnx
    from .onnx_runtime import OnnxClassifier

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(model) if isinstance(model, (str, Path)) else export_onnx(model, Path(tmp) / "m.onnx", input_size)
        session = OnnxClassifier(path, threads=threads)
        size = input_size or session.preprocessing["input_size"]
        x = torch.randn(batch_size, 3, size, size).numpy()
        return time_calls(lambda: session.logits(x), "onnxruntime", batch_size, threads, iters, warmup)


# ---------------------------------------------------------------------------------------------------------------
# `inceptorch bench --runtime onnxruntime`: the three CPU inference paths of one model, timed interleaved.

RUNTIMES = {"onnxruntime": "ONNX Runtime (CPU EP, graph opt all)", "torch_eager": "PyTorch eager (channels_last)",
            "torch_optimized": "PyTorch inceptorch.optimize",
            "torch_compiled": "PyTorch optimize + compile_for_inference",
            "reference_eager": "torchvision eager (channels_last)"}


def same_weights_reference(model: nn.Module) -> nn.Module | None:
    """torchvision's build of the same architecture holding `model`'s weights, or None where there is none.

    Our torchvision-layout builds (googlenet_bn, inception_v3) share torchvision's keys, so the weights load with
    strict=True and the two compute the same logits: the timing compares implementations, nothing else.
    """
    from ..bench import BenchConfig, build_reference
    from ..errors import UserError

    name = getattr(model, "model_name", None)
    try:
        reference, _ = build_reference(BenchConfig(model=name, compare="torchvision"), model.default_cfg.input_size)
        reference.load_state_dict(model.state_dict(), strict=True)
    except (UserError, RuntimeError, TypeError):
        return None
    return reference.eval()


def compare_runtimes(model: nn.Module | str, input_size: int | None = None, threads: int = 2, batch_size: int = 1,
                     warmup: int = 3, repeats: int = 10, iters: int = 5, spinning: bool = True,
                     pause_s: float = 0.05, compile: bool = False) -> dict:
    """ONNX Runtime, eager PyTorch and `inceptorch.optimize` on the same input, CPU fp32, `threads` threads each.

    `model` is a registered name (built untrained, 1000 classes, aux heads off) or a module. It is exported to a
    temporary ONNX file; the three are checked against eager on the timing input, then timed with `bench`'s
    `time_interleaved` (rounds in alternating order, so a busy moment of a shared machine hits all of them) and
    reported as medians with the speed-up over eager (> 1: faster than eager). `compile` adds the optimized model
    through `fast.compile_for_inference` (inductor with freezing and the C++ wrapper, as `inceptorch bench --compile`).
    Where torchvision has the same architecture with the same keys, its eager model with the same weights is timed
    too (`reference_eager`), and every runtime also gets its speed-up over it.
    """
    from ..bench import BenchConfig, build_ours, environment, inference_compile_config, time_interleaved
    from ..errors import UserError
    from ..fast import compile_for_inference, optimize
    from ._deploy import inference_copy
    from .onnx import export_onnx
    from .onnx_runtime import OnnxClassifier

    named = isinstance(model, str)
    model = build_ours(BenchConfig(model=model)) if named else model
    cfg = model.default_cfg
    size = input_size or cfg.input_size
    if size < cfg.min_input_size:
        raise UserError(f"input size {size} is below {model.model_name}'s minimum of {cfg.min_input_size}")
    if named:
        calibrate_batchnorm(model, size)
    eager = inference_copy(model).to(memory_format=torch.channels_last)
    fast = optimize(model)
    x = torch.randn(batch_size, 3, size, size, generator=torch.Generator().manual_seed(0))
    x_cl, x_np = x.contiguous(memory_format=torch.channels_last), x.numpy()
    with tempfile.TemporaryDirectory() as tmp, torch_threads(threads), torch.inference_mode():
        path = export_onnx(model, Path(tmp) / "model.onnx", size)
        session = OnnxClassifier(path, threads=threads, spinning=spinning)
        runs = {"onnxruntime": lambda: session.logits(x_np), "torch_eager": lambda: eager(x_cl),
                "torch_optimized": lambda: fast(x_cl)}
        if compile:
            compiled = compile_for_inference(fast)
            runs["torch_compiled"] = lambda: compiled(x_cl)
        reference = same_weights_reference(model) if named else None
        if reference is not None:  # issue 5's CPU yardstick: torchvision's channels_last eager latency
            reference = reference.to(memory_format=torch.channels_last)
            runs["reference_eager"] = lambda: reference(x_cl)
        ref = eager(x_cl)
        with inference_compile_config(compile, torch.device("cpu")):  # the compiled run compiles on its first call
            diffs = {name: float((torch.as_tensor(run()) - ref).abs().max()) for name, run in runs.items()}
            times = time_interleaved(runs, warmup, repeats, iters, pause_s=pause_s)
        # ORT's idle workers busy-wait after each run (its default, kept: what a deployment gets). Back to back,
        # they took a core from the PyTorch block timed next: eager measured ~30% slower right after ORT than right
        # after optimized PyTorch. An untimed pause before each block (pause_s) lets them go idle first.
    medians = {name: statistics.median(t) for name, t in times.items()}
    sides = {name: {"name": RUNTIMES[name], "time_ms": medians[name] * 1e3, "min_ms": min(times[name]) * 1e3,
                    "images_per_s": batch_size / medians[name], "speedup_vs_eager": medians["torch_eager"] / medians[name],
                    "max_abs_diff_vs_eager": diffs[name], "times_ms": [t * 1e3 for t in times[name]]}
             for name in runs}
    if "reference_eager" in medians:
        for name, side in sides.items():
            side["speedup_vs_reference"] = medians["reference_eager"] / medians[name]
    env = environment(torch.device("cpu"))
    import onnxruntime

    env["onnxruntime"] = onnxruntime.__version__
    return {"runtime": "onnxruntime", "model": getattr(model, "model_name", type(model).__name__),
            "device": "cpu", "precision": "fp32", "input_size": size, "batch_size": batch_size, "threads": threads,
            "warmup": warmup, "repeats": repeats, "iters": iters, "onnxruntime_spinning": spinning,
            "pause_s": pause_s,
            "eager_logits_max_abs": float(ref.abs().max()),  # the scale the differences are to be read against
            "runtimes": sides, "environment": env}


def calibrate_batchnorm(model: nn.Module, input_size: int, batch_size: int = 4, seed: int = 1) -> None:
    """Set every BN's running statistics to those of one random batch, as training would leave them.

    An untrained GoogLeNet (conv weights of std 0.01, running var 1) shrinks its activations ~10x per layer in eval
    mode until they are denormal floats, which x86 computes ~100x slower: eager PyTorch timed 1.6 s at 80 px. With
    calibrated statistics every layer's output is O(1), the regime of a trained model.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    x = torch.randn(batch_size, 3, input_size, input_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.train()(x)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum
    model.eval()


def format_runtimes(r: dict) -> str:
    """The human-readable table of `compare_runtimes`: one line per runtime."""
    head = (f"{r['model']} inference on {r['environment']['device']} (cpu, {r['threads']} threads), fp32, "
            f"batch {r['batch_size']}, {r['input_size']}x{r['input_size']}; median of {r['repeats']} x {r['iters']} "
            f"interleaved calls")
    has_ref = "reference_eager" in r["runtimes"]
    lines = [head, f"{'':40s}{'latency ms':>12s}{'min ms':>10s}{'images/s':>11s}{'vs eager':>10s}"
                   + (f"{'vs torchvision':>15s}" if has_ref else "") + f"{'max|diff|':>11s}"]
    for side in r["runtimes"].values():
        lines.append(f"{side['name']:40s}{side['time_ms']:12.2f}{side['min_ms']:10.2f}{side['images_per_s']:11.1f}"
                     f"{side['speedup_vs_eager']:9.2f}x"
                     + (f"{side['speedup_vs_reference']:14.2f}x" if has_ref else "")
                     + f"{side['max_abs_diff_vs_eager']:11.1e}")
    lines.append(f"max|diff|: largest absolute logit difference from eager (eager's largest |logit| "
                 f"{r['eager_logits_max_abs']:.2e})")
    return "\n".join(lines)
