"""Benchmarks, apart from the library: our models against the reference implementations, runtimes against each
other, CPU latency; one timer (`timing.time_interleaved`). `inceptorch bench` and `inceptorch quantize` use them."""
from .._lazy import lazy_exports

_EXPORTS = {
    ".speedup": ("BenchConfig", "build_ours", "format_result", "optimize_unmerged", "run_bench"),
    ".references": ("REFERENCES", "build_reference"),
    ".runtimes": ("compare_runtimes", "format_runtimes"),
    ".latency": ("LatencyStats", "bench_onnxruntime", "bench_torch"),
    ".timing": ("time_interleaved",),
    ".hostinfo": ("environment",),
}
lazy_exports(__name__, _EXPORTS)
__all__ = [name for names in _EXPORTS.values() for name in names]
