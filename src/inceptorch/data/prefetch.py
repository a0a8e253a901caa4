"""Produce the next batches in a background thread, on a side CUDA stream, while the current one trains.

The device decode path (`gpu_pipeline.DeviceBatches`) decodes and augments a batch in the main process. Done inline,
each step waits for its batch: the host launches the decode and the augmentation kernels, then the training kernels,
and on the H100 the measured training rate fell to 27% of the synthetic-input rate (BENCHMARKS.md). Here a thread
builds batch k+1 (reading from the DataLoader, launching its kernels on its own stream) while the main thread
launches step k; PyTorch releases the GIL inside its operators, so the two overlap on the host and on the device.

Order and content are those of the plain iterator: one producer, a FIFO queue. An exception in the producer (a bad
file, say) is raised in the consumer at the batch where it happened; a consumer that stops early stops the producer.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import torch
from torch import Tensor

_DONE = object()
_POLL_S = 0.1  # how often a producer blocked on a full queue looks whether the consumer has gone


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(make_batches: Callable[[], Iterable[tuple[Tensor, ...]]], device: torch.device,
               depth: int = 1) -> Iterator[tuple[Tensor, ...]]:
    """The batches of `make_batches()`, up to `depth` of them produced ahead in a thread (on a side stream on CUDA).

    Each batch is a tuple of tensors on `device`. On CUDA the consumer's stream waits for the producer's event
    before it uses a batch, and `record_stream` tells the caching allocator that the batch is used there, so its
    memory is not handed back to the producer while a step still reads it.
    """
    device = torch.device(device)
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                for batch in make_batches():
                    event = None
                    if stream is not None:
                        event = torch.cuda.Event()
                        event.record(stream)
                    if not put((batch, event)):
                        return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it in its own thread
            put(_Failed(exc))

    thread = threading.Thread(target=produce, name="inceptorch-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            batch, event = item
            if event is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(event)
                for tensor in batch:
                    tensor.record_stream(current)
            yield batch
    finally:
        stop.set()
        thread.join()
