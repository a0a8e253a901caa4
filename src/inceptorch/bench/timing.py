"""The benchmarks' one timer: every run timed in rounds whose order reverses each time (A B, B A, A B, ...).

Interleaving inside one process means a slow moment of a shared machine hits every side alike; the callers report
medians over the rounds, which a few slow rounds do not move.
"""
from __future__ import annotations

import time
from collections.abc import Callable


def time_interleaved(runs: dict[str, Callable[[], object]], warmup: int, repeats: int, iters: int,
                     sync: Callable[[], None] = lambda: None, pause_s: float = 0.0) -> dict[str, list[float]]:
    """Seconds per call of each run: `repeats` rounds of `iters` calls each, the order reversed every round.

    `sync` waits for queued device work (CUDA) before a clock is read. `pause_s`: an untimed sleep before each timed
    block, for runtimes whose idle threads busy-wait for a while after a call (ONNX Runtime's do by default) and
    would otherwise steal cores from the next block.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
        sync()
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            if pause_s:
                time.sleep(pause_s)
            sync()
            start = time.perf_counter()
            for _ in range(iters):
                runs[name]()
            sync()
            times[name].append((time.perf_counter() - start) / iters)
    return times
