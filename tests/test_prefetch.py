"""Batches produced ahead in a background thread (data/prefetch.py): same batches, same order, errors and early
stops handled; on the CPU here, on a side CUDA stream in tests/test_cuda.py."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from inceptorch.data.prefetch import prefetched
from inceptorch.errors import UserError

CPU = torch.device("cpu")


def numbered(n: int, produced: list[int] | None = None, fail_at: int | None = None):
    def make():
        for i in range(n):
            if i == fail_at:
                raise UserError(f"bad file at batch {i}")
            if produced is not None:
                produced.append(i)
            yield torch.full((2, 3), float(i)), torch.tensor([i])
    return make


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "inceptorch-prefetch"]


@pytest.mark.parametrize("depth", [1, 3])
def test_prefetched_gives_the_same_batches_in_order(depth):
    plain = list(numbered(7)())
    ahead = list(prefetched(numbered(7), CPU, depth))
    assert len(ahead) == 7
    for (x, y), (x2, y2) in zip(plain, ahead):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not prefetch_threads()


def test_the_producer_stays_at_most_depth_batches_ahead():
    produced: list[int] = []
    batches = prefetched(numbered(20, produced), CPU, depth=2)
    first = next(batches)
    time.sleep(0.3)  # time for the producer to run as far ahead as the queue lets it
    # one consumed, two waiting in the queue, one made and waiting for a place: never the whole epoch
    assert first[1].item() == 0 and 2 <= len(produced) <= 4
    batches.close()
    assert not prefetch_threads()


def test_an_error_in_the_producer_is_raised_where_its_batch_would_be():
    seen = []
    with pytest.raises(UserError, match="bad file at batch 3"):
        for _, y in prefetched(numbered(6, fail_at=3), CPU):
            seen.append(y.item())
    assert seen == [0, 1, 2]
    assert not prefetch_threads()


def test_a_consumer_that_stops_early_stops_the_producer():
    produced: list[int] = []
    for _, y in prefetched(numbered(1000, produced), CPU):
        if y.item() == 2:
            break
    assert not prefetch_threads() and len(produced) < 10
