"""`torch.compile` set up for inference on an `optimize`d model: the settings measured fastest (BENCHMARKS.md).

- freezing: parameters become constants of the graph, so inductor folds what is left to fold and, on the CPU,
  pre-packs the oneDNN convolution and MKL GEMM weights once at compile time instead of at every call;
- the C++ wrapper on the CPU: the compiled graph calls its ~60 kernels from C++, not Python (at batch 1 a GoogLeNet
  kernel takes 0.02-2 ms, so Python's per-call cost shows).

The settings are applied as an inductor config patch around the calls that compile: the first call with each kind
of input (shape, strides, dtype, device, grad mode: what dynamo guards on for a frozen module). Around every call the
patch cost about 0.3 ms of a 11-12 ms GoogLeNet forward on 2 CPU cores; passing the same settings as
`torch.compile(options=...)` gave a slower model (13.9 against 11.7 ms), so neither route is used.

A kind of input already compiled for runs without dynamo evaluating its guards again
(`torch.compiler.set_stance(skip_guard_eval_unsafe=True)`, which checks only what tells the compiled variants
apart): that check took 0.64 ms of each 11-12 ms GoogLeNet call on 2 CPU cores, 0.03 ms without (BENCHMARKS.md). It
is safe here because the kind includes everything a frozen inference graph depends on (the input's shape, strides,
dtype and device, grad and inference mode, autocast, train/eval) and the weights are constants of the graph anyway.
"""
from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn


def _can_skip_guards() -> bool:
    """Whether this torch's `set_stance` takes `skip_guard_eval_unsafe` (newer than some torch this package runs on)."""
    try:
        return "skip_guard_eval_unsafe" in inspect.signature(torch.compiler.set_stance).parameters
    except (AttributeError, TypeError, ValueError):
        return False


CAN_SKIP_GUARDS = _can_skip_guards()


def inference_compile_options(device: torch.device) -> dict:
    """The inductor settings above for compiled inference on `device`."""
    return {"freezing": True, "cpp_wrapper": torch.device(device).type == "cpu"}


class CompiledForInference:
    """`torch.compile(model, mode=mode)` called under `inference_compile_options`; see the module docstring."""

    def __init__(self, model: nn.Module, mode: str | None = None):
        self.model = model.eval()
        self.options = inference_compile_options(next(model.parameters()).device)
        self.compiled = torch.compile(self.model, mode=mode)
        self.seen: set[tuple] = set()  # kinds of input already compiled for

    def __call__(self, x: Tensor) -> Tensor:
        kind = (x.shape, x.stride(), x.dtype, x.device, torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
                torch.is_autocast_enabled(x.device.type), self.model.training)
        if kind in self.seen:
            if not CAN_SKIP_GUARDS:
                return self.compiled(x)
            with torch.compiler.set_stance(skip_guard_eval_unsafe=True):
                return self.compiled(x)
        import torch._inductor.config as inductor_config

        with inductor_config.patch(self.options):
            out = self.compiled(x)
        self.seen.add(kind)
        return out


def compile_for_inference(model: nn.Module, mode: str | None = None) -> CompiledForInference:
    """`model` (typically `optimize(model)`) compiled with frozen weights; it compiles on its first call.

    The weights are read at that first call and become constants: change them afterwards and compile again.
    """
    return CompiledForInference(model, mode)
