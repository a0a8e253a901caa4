"""`torch.compile` set up for inference on an `optimize`d model: the settings measured fastest (BENCHMARKS.md).

- freezing: parameters become constants of the graph, so inductor folds what is left to fold and, on the CPU,
  pre-packs the oneDNN convolution and MKL GEMM weights once at compile time instead of at every call;
- the C++ wrapper on the CPU: the compiled graph calls its ~60 kernels from C++, not Python (at batch 1 a GoogLeNet
  kernel takes 0.02-2 ms, so Python's per-call cost shows);
- no guards on module attributes: dynamo would otherwise check every parameter of the module before each call
  (about 0.2 ms a call for GoogLeNet on 2 CPU cores). Frozen weights are constants already, so a guard on them
  could never trigger a useful recompile; the input's shape, dtype and device are still guarded.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def inference_compile_options(device: torch.device, mode: str | None = None) -> dict:
    """Inductor options for compiled inference on `device`; `mode` (a torch.compile mode) adds its own options."""
    import torch._inductor

    options = dict(torch._inductor.list_mode_options(mode)) if mode else {}
    options.update(freezing=True, cpp_wrapper=torch.device(device).type == "cpu")
    return options


def compile_for_inference(model: nn.Module, mode: str | None = None) -> Callable[[Tensor], Tensor]:
    """`model` (typically `optimize(model)`) through `torch.compile` with the settings above; compiles on first call.

    The module's weights are read once, at that first call: change them afterwards and compile again.
    """
    device = next(model.parameters()).device
    options = inference_compile_options(device, mode)
    skip_module_guards = getattr(torch.compiler, "skip_guard_on_all_nn_modules_unsafe", None)  # torch >= 2.8
    if skip_module_guards is not None:
        options["guard_filter_fn"] = skip_module_guards
    return torch.compile(model.eval(), options=options)
