"""CPU latency of one model's forward pass (PyTorch or ONNX Runtime), as `inceptorch quantize` reports it.

Each runtime gets `threads` intra-op threads (2 and batch 1 by default: a small CPU deployment), a warm-up, then
`iters` timed calls through `timing.time_interleaved`; we report milliseconds per batch (median and 90th percentile
are robust to a noisy shared machine, the mean is not).
"""
from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from .timing import time_interleaved


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

    @classmethod
    def of(cls, seconds: list[float], runtime: str, batch_size: int, threads: int) -> LatencyStats:
        """The statistics of per-call times in seconds."""
        ms = sorted(t * 1e3 for t in seconds)
        return cls(runtime, batch_size, threads, len(ms), statistics.median(ms),
                   ms[min(len(ms) - 1, int(0.9 * len(ms)))], statistics.fmean(ms), ms[0])

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"{self.runtime}: median {self.median_ms:.2f} ms, p90 {self.p90_ms:.2f} ms, min {self.min_ms:.2f} ms "
                f"(batch {self.batch_size}, {self.threads} threads, {self.iters} iters)")


def time_calls(fn: Callable[[], object], runtime: str, batch_size: int, threads: int, iters: int = 50,
               warmup: int = 5) -> LatencyStats:
    """`iters` single calls of `fn` after `warmup` untimed ones: `time_interleaved` with one run, one call a round."""
    seconds = time_interleaved({runtime: fn}, warmup, repeats=iters, iters=1)[runtime]
    return LatencyStats.of(seconds, runtime, batch_size, threads)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
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
    from ..export.onnx import export_onnx
    from ..export.onnx_runtime import OnnxClassifier

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(model) if isinstance(model, (str, Path)) else export_onnx(model, Path(tmp) / "m.onnx", input_size)
        session = OnnxClassifier(path, threads=threads)
        size = input_size or session.preprocessing["input_size"]
        x = torch.randn(batch_size, 3, size, size).numpy()
        return time_calls(lambda: session.logits(x), "onnxruntime", batch_size, threads, iters, warmup)
