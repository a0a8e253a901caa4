"""Progress inside an epoch: a rich bar on a terminal, a plain line every few seconds in a log file or pipe."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

from .engine import StepInfo

LOG_INTERVAL_S = 10.0  # a log that is not a terminal hears from the run at least this often


class EpochProgress:
    """Loss, accuracy, learning rate and images/s while an epoch runs; nothing at all when not `enabled`."""

    def __init__(self, total: int, done: int, title: str, enabled: bool, log: Callable[[str], None] = print,
                 interval_s: float | None = None):
        self.total, self.title, self.log = total, title, log
        self.interval_s = LOG_INTERVAL_S if interval_s is None else interval_s
        self.bar = enabled and sys.stderr.isatty()
        self.lines = enabled and not self.bar
        self.last_line = time.monotonic()
        if self.bar:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), transient=True)
            self.task = self.progress.add_task(title, total=total, completed=done, stats="")

    def __enter__(self):
        if self.bar:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar:
            self.progress.stop()

    def update(self, info: StepInfo) -> None:
        m = info.meter
        stats = f"loss {m.loss:.4f}  top1 {m.top1:.1f}%  lr {info.lr:.3g}  {m.images_per_s:.0f} img/s"
        if self.bar:
            self.progress.update(self.task, completed=info.batches_done, stats=stats)
        elif self.lines and time.monotonic() - self.last_line >= self.interval_s:
            self.last_line = time.monotonic()
            self.log(f"{self.title}  batch {info.batches_done}/{self.total}  {stats}")
