"""`inceptorch bench --runtime onnxruntime`: one model's CPU inference paths timed against each other.

ONNX Runtime on our ONNX export, eager PyTorch, `inceptorch.optimize` (and, asked for, `compile_for_inference`), and
torchvision's model holding the same weights where it has the architecture; CPU fp32, the same input, timed
interleaved (`timing.time_interleaved`).
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from ..export._deploy import inference_copy
from ..export.onnx import export_onnx
from ..export.onnx_runtime import OnnxClassifier
from ..extras import require
from ..fast import compile_for_inference, optimize
from ..weights.fitting import aux_prefixes, fit_state_dict
from .hostinfo import environment
from .latency import torch_threads
from .references import build_reference
from .speedup import BenchConfig, build_ours, inference_compile_config
from .timing import time_interleaved

RUNTIMES = {"onnxruntime": "ONNX Runtime (CPU EP, graph opt all)", "torch_eager": "PyTorch eager (channels_last)",
            "torch_optimized": "PyTorch inceptorch.optimize",
            "torch_compiled": "PyTorch optimize + compile_for_inference",
            "reference_eager": "torchvision eager (channels_last)"}


def same_weights_reference(model: nn.Module) -> nn.Module | None:
    """torchvision's build of the same architecture holding `model`'s weights, or None where there is none.

    torchvision's state dict is fitted onto ours as a weights file would be (`fit_state_dict`: the same keys for
    googlenet_bn, the converter for inception_v3), which pairs each of our tensors with its tensor in the reference;
    ours are copied over, and the two compute the same logits: the timing compares implementations, nothing else.
    """
    name = getattr(model, "model_name", None)
    try:
        classes = getattr(model, "num_classes", 1000)
        reference, _ = build_reference(BenchConfig(model=name, compare="torchvision", num_classes=classes),
                                       model.default_cfg.input_size)
        theirs, missing = fit_state_dict(model, reference.state_dict())  # our keys -> the reference's own tensors
    except (UserError, TypeError):
        return None
    if any(not key.startswith(aux_prefixes(model)) for key in missing):
        return None
    ours = model.state_dict()
    with torch.no_grad():
        for key, tensor in theirs.items():
            tensor.copy_(ours[key])
    return reference.eval()


def compare_runtimes(model: nn.Module | str, input_size: int | None = None, threads: int = 2, batch_size: int = 1,
                     warmup: int = 3, repeats: int = 10, iters: int = 5, spinning: bool = True,
                     pause_s: float = 0.05, compile: bool = False) -> dict:
    """ONNX Runtime, eager PyTorch and `inceptorch.optimize` on the same input, CPU fp32, `threads` threads each.

    `model` is a registered name (built untrained, 1000 classes, aux heads off) or a module. It is exported to a
    temporary ONNX file; the three are checked against eager on the timing input, then timed with
    `time_interleaved` (rounds in alternating order, so a busy moment of a shared machine hits all of them) and
    reported as medians with the speed-up over eager (> 1: faster than eager). `compile` adds the optimized model
    through `fast.compile_for_inference` (inductor with freezing and the C++ wrapper, as `inceptorch bench --compile`).
    Where torchvision has the same architecture with the same keys, its eager model with the same weights is timed
    too (`reference_eager`), and every runtime also gets its speed-up over it.
    """
    onnxruntime = require("onnxruntime", "--runtime onnxruntime")
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
        # ORT's workers busy-wait for the next op by default (`spinning`, kept: what a deployment gets).
        session = OnnxClassifier(path, threads=threads,
                                 session_config=None if spinning else {"session.intra_op.allow_spinning": "0"})
        runs = {"onnxruntime": lambda: session.logits(x_np), "torch_eager": lambda: eager(x_cl),
                "torch_optimized": lambda: fast(x_cl)}
        if compile:
            compiled = compile_for_inference(fast)
            runs["torch_compiled"] = lambda: compiled(x_cl)
        reference = same_weights_reference(model) if named else None
        if reference is not None:  # the CPU yardstick: torchvision's channels_last eager latency
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
                    "images_per_s": batch_size / medians[name],
                    "speedup_vs_eager": medians["torch_eager"] / medians[name],
                    "max_abs_diff_vs_eager": diffs[name], "times_ms": [t * 1e3 for t in times[name]]}
             for name in runs}
    if "reference_eager" in medians:
        for name, side in sides.items():
            side["speedup_vs_reference"] = medians["reference_eager"] / medians[name]
    env = environment(torch.device("cpu"))
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
