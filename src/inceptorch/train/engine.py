"""The training and evaluation loops, apart from run orchestration (ConvNeXt / DeiT's `engine.py` shape).

`train_one_epoch` knows nothing about files or signals: after each optimizer step it calls `on_step`, which the
orchestrator uses to draw progress, write checkpoints and stop on a signal.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..losses import aux_loss
from ..models.layers import ModelOutput
from .distributed import all_reduce_sum


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; raised before the optimizer applies the step."""

    def __init__(self, value: float):
        super().__init__(f"loss became {value}")
        self.value = value


@dataclass
class Meter:
    """Running sums over one epoch's training batches (saved with mid-epoch checkpoints)."""

    loss_sum: float = 0.0
    correct: int = 0
    count: int = 0
    seconds: float = 0.0

    @property
    def loss(self) -> float:
        return self.loss_sum / max(self.count, 1)

    @property
    def top1(self) -> float:
        return 100.0 * self.correct / max(self.count, 1)

    @property
    def images_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@dataclass
class StepInfo:
    step: int  # optimizer steps in the whole run so far
    batches_done: int  # batches done in this epoch, counting from its start (not from a resume point)
    loss: float
    lr: float
    meter: Meter


def autocast(device: torch.device, enabled: bool, dtype: torch.dtype = torch.bfloat16):
    """bf16 autocast on GPU (no loss scaling needed, unlike fp16); CPU runs stay in fp32 for exact resumes."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def compute_loss(model: nn.Module, images: Tensor, targets: Tensor, aux_weight: float,
                 label_smoothing: float = 0.0, class_weights: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(loss, main logits). Models with auxiliary heads add `aux_weight` x each head's loss (GoogLeNet: 0.3).
    `class_weights` weigh each class's examples in the loss (the heads' too), for imbalanced data."""
    criterion = _criterion(label_smoothing, class_weights)
    if aux_weight > 0 and getattr(model, "has_aux", False):
        output: ModelOutput = model.forward_train(images)
        return aux_loss(output, targets, aux_weight, criterion), output.logits
    logits = model(images)
    return criterion(logits, targets), logits


def _criterion(label_smoothing: float, class_weights: Tensor | None = None) -> Callable[[Tensor, Tensor], Tensor]:
    # Inception-v3 label smoothing (arXiv:1512.00567 section 7): (1 - eps) * onehot + eps / K.
    return lambda logits, targets: F.cross_entropy(logits.float(), targets, weight=class_weights,
                                                   label_smoothing=label_smoothing)


class ForwardLoss:
    """One batch's forward pass and loss, `(images, targets) -> (loss, logits)`: the part of a training step that
    `compile=True` hands to `torch.compile`, as one graph (`fullgraph=True`, the aux heads included) unless the model
    is wrapped in DDP, whose gradient buckets split the graph on purpose.

    `inceptorch train` builds one per run and `inceptorch bench --mode train` times the same object (through
    `fast.TrainStep`), so the published training figures are those of the path users run.
    """

    def __init__(self, model: nn.Module, aux_weight: float = 0.0, label_smoothing: float = 0.0,
                 class_weights: Tensor | None = None, autocast_dtype: torch.dtype | None = None,
                 compile: bool = False, fullgraph: bool = True, backend: str = "inductor", mode: str | None = None):
        self.model, self.aux_weight, self.label_smoothing = model, aux_weight, label_smoothing
        self.class_weights, self.autocast_dtype = class_weights, autocast_dtype
        self.fn = torch.compile(self.forward_loss, fullgraph=fullgraph, backend=backend, mode=mode) if compile \
            else self.forward_loss

    def forward_loss(self, images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        if self.autocast_dtype is None:
            return compute_loss(self.model, images, targets, self.aux_weight, self.label_smoothing,
                                self.class_weights)
        with torch.autocast(images.device.type, dtype=self.autocast_dtype):
            return compute_loss(self.model, images, targets, self.aux_weight, self.label_smoothing,
                                self.class_weights)

    def __call__(self, images: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return self.fn(images, targets)


def train_one_epoch(forward_loss: ForwardLoss, batches: Iterable, optimizer: torch.optim.Optimizer, scheduler, *,
                    device: torch.device, accum_steps: int = 1, clip_grad: float | None = None, ema=None,
                    channels_last: bool = False, mix: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
                    eval_modules: Iterable[nn.Module] = (), step: int = 0, batches_done: int = 0,
                    meter: Meter | None = None, on_step: Callable[[StepInfo], None] | None = None) -> Meter:
    """One pass over `batches` (which start at batch `batches_done` of the epoch) with the model and loss that
    `forward_loss` holds; returns the epoch's meter.

    Gradients accumulate over `accum_steps` batches, each loss divided by `accum_steps` so the step matches one
    large batch. A non-finite loss raises `NonFiniteLoss` before the optimizer step. `mix` turns a batch and its
    labels into a mixed batch and soft labels (MixUp / CutMix); top-1 is then counted against each image's larger
    share. `eval_modules` stay in eval mode (the BN layers of a frozen pretrained trunk keep their statistics).
    """
    meter = meter or Meter()
    model = forward_loss.model
    model.train()
    for module in eval_modules:
        module.eval()
    optimizer.zero_grad(set_to_none=True)
    tic = time.perf_counter()
    for images, targets in batches:
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if mix is not None:
            images, targets = mix(images, targets)
        loss, logits = forward_loss(images, targets)
        hard = targets.argmax(1) if targets.dim() == 2 else targets
        correct = (logits.argmax(1) == hard).sum()
        (loss / accum_steps).backward()
        # Read the loss only now: on a GPU, `.item()` before backward would make the host wait for the forward
        # and leave the device idle while backward is launched. The weights are still untouched here (the
        # optimizer step comes below), so a non-finite loss stops the run before it can harm them. Under DDP the
        # ranks decide together: one rank's NaN reaches every rank's gradients through the all-reduce.
        value, total = loss.item(), all_reduce_sum(loss.detach().float().reshape(1)).item()
        if not math.isfinite(total):
            raise NonFiniteLoss(value if not math.isfinite(value) else total)
        batches_done += 1
        meter.loss_sum += value * hard.numel()
        meter.correct += int(correct)
        meter.count += hard.numel()
        if batches_done % accum_steps:
            continue
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)  # Inception-v3: clipping at 2.0
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        step += 1
        if ema is not None:
            ema.update(getattr(model, "unwrapped", model))  # the plain model's keys, also under DDP
        meter.seconds += time.perf_counter() - tic
        if on_step is not None:
            on_step(StepInfo(step, batches_done, value, optimizer.param_groups[0]["lr"], meter))
        tic = time.perf_counter()
    return meter


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, device: torch.device, amp: bool = True,
             channels_last: bool = False, num_classes: int | None = None) -> dict:
    """Mean cross-entropy, top-1, top-5 and balanced accuracy (percent) of `model` over `batches`, with each class's
    recall and how many images each class has and was predicted as.

    Balanced accuracy is the mean of the per-class recalls over the classes present (scikit-learn's
    `balanced_accuracy_score`): on imbalanced data a model that always answers the majority class scores that
    class's share in top-1 but 1 / classes here. Under torchrun give `num_classes`: a rank with no images must
    still take part in the per-class sum."""
    model.eval()
    loss_sum, top1, top5, count = 0.0, 0, 0, 0
    hits_per_class = images_per_class = predicted_per_class = None
    if num_classes:
        hits_per_class, images_per_class, predicted_per_class = (
            torch.zeros(num_classes, dtype=torch.float64, device=device) for _ in range(3))
    for images, targets in batches:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp):
            logits = model(images)
        logits = logits.float()
        if hits_per_class is None:
            hits_per_class, images_per_class, predicted_per_class = (
                torch.zeros(logits.shape[1], dtype=torch.float64, device=device) for _ in range(3))
        loss_sum += F.cross_entropy(logits, targets, reduction="sum").item()
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == targets[:, None]
        top1 += int(hits[:, 0].sum())
        top5 += int(hits.any(1).sum())
        count += targets.numel()
        hits_per_class.index_add_(0, targets, hits[:, 0].double())
        images_per_class.index_add_(0, targets, torch.ones_like(targets, dtype=torch.float64))
        predicted_per_class.index_add_(0, logits.argmax(1), torch.ones_like(targets, dtype=torch.float64))
    # Under torchrun each rank saw its own shard (every image exactly once): sum the counts, then divide.
    totals = all_reduce_sum(torch.tensor([loss_sum, top1, top5, count], dtype=torch.float64, device=device))
    loss_sum, top1, top5, count = totals.tolist()
    n = max(count, 1)
    result = {"loss": loss_sum / n, "top1": 100.0 * top1 / n, "top5": 100.0 * top5 / n, "count": int(count),
              "balanced": 0.0, "recall": [], "images_per_class": [], "predicted_per_class": []}
    if hits_per_class is not None:
        per_class = all_reduce_sum(torch.stack([hits_per_class, images_per_class, predicted_per_class]))
        hits_c, images_c, predicted_c = per_class.cpu().tolist()
        recall = [100.0 * h / c if c else float("nan") for h, c in zip(hits_c, images_c)]
        present = [r for r, c in zip(recall, images_c) if c]
        result.update(balanced=sum(present) / max(len(present), 1), recall=recall,
                      images_per_class=[int(c) for c in images_c], predicted_per_class=[int(c) for c in predicted_c])
    return result
