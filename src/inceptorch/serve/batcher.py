"""Dynamic batching: requests that arrive together share one forward pass.

Each request puts its preprocessed crops on a bounded queue and awaits a future. One worker task takes the first
waiting request, then keeps taking more until the batch holds `max_batch` images or `max_wait_ms` has passed since
that first one, runs the model on the whole batch in a thread (the event loop keeps accepting and answering), and
hands each request its rows. A full queue refuses at once (`QueueFull`: the server answers 503 with Retry-After)
rather than letting latency grow without bound; the same bound caps memory.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch


class QueueFull(Exception):
    """The server has more waiting images than its queue holds."""


@dataclass
class _Job:
    crops: torch.Tensor  # uint8 [images, 3, S, S]
    future: asyncio.Future
    queued: float = field(default_factory=time.perf_counter)


class Batcher:
    """Gathers jobs into batches for `run(crops) -> probabilities` (a blocking call, run in a worker thread)."""

    def __init__(self, run: Callable[[torch.Tensor], torch.Tensor], max_batch: int = 16, max_wait_ms: float = 5.0,
                 max_queue: int = 256, on_batch: Callable[[int, float], None] | None = None):
        self.run, self.max_batch, self.max_wait = run, max_batch, max_wait_ms / 1000.0
        self.max_queue, self.on_batch = max_queue, on_batch
        self.queue: asyncio.Queue[_Job] | None = None
        self.waiting_images = 0  # images queued or in the forward now: what `max_queue` bounds
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, crops: torch.Tensor) -> torch.Tensor:
        """The probabilities of `crops`' images, computed in some batch; QueueFull when the queue is full."""
        n = crops.shape[0]
        if self.waiting_images + n > self.max_queue:
            raise QueueFull
        self.waiting_images += n
        job = _Job(crops, asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        try:
            return await job.future
        finally:
            self.waiting_images -= n

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self.queue.get()
            jobs, images = [first], first.crops.shape[0]
            deadline = first.queued + self.max_wait
            while images < self.max_batch:
                timeout = deadline - time.perf_counter()
                if timeout <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
                jobs.append(job)
                images += job.crops.shape[0]
            tic = time.perf_counter()
            try:
                probs = await loop.run_in_executor(None, self.run, torch.cat([j.crops for j in jobs]))
            except Exception as exc:  # noqa: BLE001 - the requests of this batch get the error, the server goes on
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(images, time.perf_counter() - tic)
            start = 0
            for job in jobs:
                n = job.crops.shape[0]
                if not job.future.done():
                    job.future.set_result(probs[start:start + n])
                start += n
