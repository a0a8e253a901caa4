"""The learning-rate range test: train a few hundred steps while the learning rate grows exponentially, and read
a good learning rate off the loss curve.

Smith, "Cyclical Learning Rates for Training Neural Networks" (arXiv:1506.01186, section 3.3), as fastai's
`lr_find` and Lightning's `Tuner.lr_find` run it: the loss is smoothed with an exponential moving average (bias
corrected), the sweep stops once the smoothed loss exceeds 4x its minimum, and the weights are restored afterwards.

The suggestion is fastai's "valley" rule (the default of `lr_find` since fastai 2.5): the longest stretch over
which the smoothed loss keeps falling, and the point half-way into its second third. It is more robust than the
steepest slope (Lightning's rule), which one noisy step can move by an order of magnitude; both are reported,
with the minimum / 10 (the older rule of thumb).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

SMOOTHING = 0.98     # fastai's beta: an average over the last ~50 steps
DIVERGED = 4.0       # stop once the smoothed loss is this many times its minimum
LR_FIND_START, LR_FIND_END, LR_FIND_STEPS = 1e-7, 10.0, 100  # fastai's defaults


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float  # the valley rule's lr
    steepest: float    # the lr of the steepest descent of the smoothed loss
    minimum: float     # the lr at the smoothed minimum, divided by 10
    stopped: str       # why the sweep ended

    def summary(self) -> str:
        return (f"suggested lr {self.suggestion:.2g} (longest valley); steepest descent at {self.steepest:.2g}, "
                f"minimum / 10 = {self.minimum:.2g}; {len(self.lrs)} steps, {self.stopped}")


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> list[float]:
    """`steps` learning rates growing exponentially from start_lr to end_lr."""
    ratio = end_lr / start_lr
    return [start_lr * ratio ** (i / max(steps - 1, 1)) for i in range(steps)]


def range_test(step: Callable[[float], float], start_lr: float = LR_FIND_START, end_lr: float = LR_FIND_END,
               steps: int = LR_FIND_STEPS) -> tuple[list[float], list[float], list[float], str]:
    """Call `step(lr)` (one optimizer step at that lr, returning its loss) along the exponential schedule until the
    smoothed loss diverges; returns the lrs, raw losses and smoothed losses reached, and why it stopped."""
    lrs, losses, smoothed = [], [], []
    average, best = 0.0, math.inf
    for i, lr in enumerate(lr_schedule(start_lr, end_lr, steps)):
        loss = step(lr)
        if not math.isfinite(loss):
            return lrs, losses, smoothed, f"the loss became {loss} at lr {lr:.2g}"
        average = SMOOTHING * average + (1 - SMOOTHING) * loss
        value = average / (1 - SMOOTHING ** (i + 1))
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if i > 10 and value > DIVERGED * best:
            return lrs, losses, smoothed, f"the loss diverged at lr {lr:.2g}"
    return lrs, losses, smoothed, f"reached lr {end_lr:.2g}"


def valley(lrs: list[float], smoothed: list[float]) -> float:
    """fastai's valley rule: the longest run of falling losses (as a longest decreasing subsequence, O(n^2)),
    and the lr at start + 1/3 + 1/6 of its length: well inside the fall, before the bottom."""
    n = len(smoothed)
    if n < 3:
        return lrs[0] if lrs else math.nan
    longest = [1] * n
    end = 0
    for i in range(1, n):
        for j in range(i):
            if smoothed[i] < smoothed[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
        if longest[i] > longest[end]:
            end = i
    start = end - longest[end] + 1
    third = (end - start) / 3
    return lrs[min(n - 1, start + int(third) + int(third / 2))]


def steepest(lrs: list[float], smoothed: list[float]) -> float:
    """The lr where the smoothed loss falls fastest per decade of lr (ignoring the sweep's noisy first steps)."""
    if len(lrs) < 3:
        return lrs[0] if lrs else math.nan
    logs = [math.log10(lr) for lr in lrs]
    skip = min(10, len(lrs) // 10)
    slopes = [(smoothed[i + 1] - smoothed[i]) / (logs[i + 1] - logs[i]) for i in range(skip, len(lrs) - 1)]
    return lrs[skip + min(range(len(slopes)), key=slopes.__getitem__)]


def suggest(lrs: list[float], losses: list[float], smoothed: list[float], stopped: str) -> LRFindResult:
    at_min = min(range(len(smoothed)), key=smoothed.__getitem__) if smoothed else 0
    return LRFindResult(lrs, losses, smoothed, valley(lrs, smoothed), steepest(lrs, smoothed),
                        lrs[at_min] / 10 if lrs else math.nan, stopped)


def repeat(batches: Iterable, set_epoch: Callable[[int], None]) -> Iterator:
    """The training batches, epoch after epoch, for as many steps as the sweep takes."""
    epoch = 0
    while True:
        set_epoch(epoch)
        yield from batches
        epoch += 1


def sweep(model: nn.Module, batches: Iterator, optimizer: torch.optim.Optimizer,
          forward_loss: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], device: torch.device,
          channels_last: bool, start_lr: float, end_lr: float, steps: int, eval_modules: Iterable[nn.Module] = (),
          average: Callable[[float], float] | None = None) -> LRFindResult:
    """The range test on `model` with `optimizer`, whose parameter groups keep their relative lrs (a fine-tuned
    trunk at lr x trunk_lr_scale); the model's and optimizer's states are restored afterwards. `eval_modules` stay
    in eval mode (a frozen trunk's BN layers); `average` turns each rank's loss into the mean over ranks."""
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    saved_optimizer = optimizer.state_dict()
    scales = [group["lr"] / max(group["lr"] for group in optimizer.param_groups) for group in optimizer.param_groups]
    model.train()
    for module in eval_modules:
        module.eval()

    def step(lr: float) -> float:
        for group, scale in zip(optimizer.param_groups, scales):
            group["lr"] = lr * scale
        images, targets = next(batches)
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss, _ = forward_loss(images, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item() if average is None else average(loss.item())
        if math.isfinite(value):
            optimizer.step()
        return value

    try:
        return suggest(*range_test(step, start_lr, end_lr, steps))
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        optimizer.zero_grad(set_to_none=True)


def write_lr_find(result: LRFindResult, folder: Path, title: str, log: Callable[[str], None]) -> None:
    """lr_find.csv and, with matplotlib, lr_find.png in `folder`."""
    from ..extras import MissingExtra

    write_csv(result, folder / "lr_find.csv")
    try:
        plot(result, folder / "lr_find.png", title)
    except MissingExtra as exc:  # the csv has the numbers
        log(f"no lr_find.png: {exc}")


def write_csv(result: LRFindResult, path: str | Path) -> None:
    from ..fileio import atomic_write

    lines = ["step,lr,loss,smoothed_loss"]
    lines += [f"{i},{lr:.6g},{loss:.6g},{s:.6g}"
              for i, (lr, loss, s) in enumerate(zip(result.lrs, result.losses, result.smoothed))]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def plot(result: LRFindResult, path: str | Path, title: str = "") -> None:
    """Loss against lr (log scale), the suggestion and the other two rules marked."""
    from ..plotting import figure, save

    fig, ax = figure(7, 4)
    ax.plot(result.lrs, result.losses, color="0.75", linewidth=0.8, label="loss")
    ax.plot(result.lrs, result.smoothed, color="C0", label="smoothed loss")
    for lr, name, color in ((result.suggestion, "suggested (valley)", "C3"), (result.steepest, "steepest", "C2"),
                            (result.minimum, "minimum / 10", "C1")):
        if math.isfinite(lr):
            ax.axvline(lr, color=color, linestyle="--", linewidth=1, label=f"{name}: {lr:.2g}")
    ax.set_xscale("log")
    if result.smoothed:
        low, high = min(result.smoothed), result.smoothed[0]
        ax.set_ylim(low - 0.1 * (high - low + 1e-9), max(high, low) * 1.5 + 1e-9)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title(title or "learning-rate range test")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, path)
