"""A training run: data, model, optimizer and checkpoints in a run folder, resumable at any checkpoint.

Run folder:
  config.yaml            the resolved configuration (defaults < recipe < flags)
  last.safetensors       the latest weights, a self-describing model file (`load_model_file`)
  best.safetensors       the evaluated weights (EMA when on) at the best validation top-1
  last.state.pt          everything `--resume` needs (see `state.py`), loadable with weights_only=True
  diverged.state.pt      only after a non-finite loss: the state at that step, kept apart from `last`
  metrics.csv            one row per epoch; tensorboard/ holds the same as TensorBoard events
  curves.png             loss, top-1 and learning rate against epochs

Reproducibility: the shuffling order of epoch e comes from its own generator seeded with (seed, e), each sample's
augmentation from (seed, e, index) (`SeededDataset`, or `DeviceAugment` under --gpu-decode), and the global generator
(dropout) is saved with every checkpoint. Hence a run resumed from any checkpoint, even mid-epoch, replays exactly
what the uninterrupted run did.
"""
from __future__ import annotations

import csv
import dataclasses
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..checkpoint import model_metadata, save_model_file
from ..data.checks import preflight
from ..data.datasets import build_dataset
from ..data.gpu_pipeline import DeviceAugment, DeviceBatches, EncodedImages, collate_encoded
from ..data.transforms import SeededDataset, eval_transform, train_transform
from ..data.uint8_batches import DeviceNormalize, NormalizedBatches
from ..errors import UserError
from ..extras import MissingExtra, require
from ..models import create_model
from ..models.layers import ModelOutput
from .config import TrainConfig, save_config
from .distributed import ShardSampler, init_distributed, scaled_lr, shutdown_distributed
from .ema import ModelEMA
from .engine import Meter, NonFiniteLoss, StepInfo, evaluate, train_one_epoch
from .optim import build_optimizer, build_scheduler
from .state import DIVERGED_NAME, STATE_NAME, load_state, rng_state, save_state, set_rng_state

METRIC_FIELDS = ("epoch", "step", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                 "images_per_s", "epoch_time_s")
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run stopped cleanly."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = SIGNAL_EXIT.get(signum, 1)


class EpochSampler(Sampler):
    """Epoch e's order is a permutation from a generator seeded with (seed, e), cut to whole optimizer steps,
    started at any batch so that a resumed epoch sees exactly the batches the interrupted one had left."""

    def __init__(self, n: int, batch_size: int, batches_per_epoch: int, seed: int, rank: int = 0,
                 world_size: int = 1):
        self.n, self.batch_size, self.batches, self.seed = n, batch_size, batches_per_epoch, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        # One permutation for all ranks; global batch b is its b-th slice of batch_size x world_size images,
        # of which rank r takes the r-th batch_size: every image once per epoch, none twice (DistributedSampler's job).
        order = torch.randperm(self.n, generator=g)[: self.batches * self.batch_size * self.world_size]
        shards = order.view(self.batches, self.world_size, self.batch_size)[:, self.rank]
        return iter(shards[self.start_batch:].reshape(-1).tolist())

    def __len__(self) -> int:
        return (self.batches - self.start_batch) * self.batch_size


class EpochTagged(Sampler):
    """(epoch, index) pairs from an `EpochSampler`, for `SeededDataset` behind persistent workers: each worker keeps
    its own copy of the dataset, which never sees `set_epoch`, so the epoch travels with every index instead."""

    def __init__(self, sampler: EpochSampler):
        self.sampler = sampler

    def __iter__(self):
        epoch = self.sampler.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)


@dataclass
class RunResult:
    run_dir: Path
    best_top1: float = 0.0
    best_epoch: int = -1
    last_metrics: dict = field(default_factory=dict)
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but torch sees no CUDA device")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


def loader_workers(requested: int | None, device: torch.device) -> int:
    """DataLoader processes for `workers: null`, the default: none on the CPU, where the training step already uses
    every core; on a GPU, the cores this process may use, shared with the other training processes on this machine
    (torchrun's LOCAL_WORLD_SIZE), less one for the process itself, at most 16. Loading in the GPU's own process
    starves it (issue 5: even 15 workers decoding 500x375 JPEGs gave an H100 under a fifth of what GoogLeNet trains
    at; REFERENCE.md)."""
    if requested is not None:
        return requested
    if device.type != "cuda":
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_process = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(16, per_process - 1))


def build_model(cfg: TrainConfig, num_classes: int, log: Callable[[str], None] = print,
                load_weights: bool = True) -> tuple[nn.Module, dict]:
    """The model for `cfg` with `num_classes` outputs, fine-tuned from `cfg.pretrained` when given."""
    kwargs = {**cfg.model_kwargs, "num_classes": num_classes}
    try:
        model = create_model(cfg.model, **kwargs)
    except TypeError as exc:  # an option the builder does not take
        raise UserError(f"model {cfg.model} does not accept these options {cfg.model_kwargs}: {exc}") from None
    if cfg.pretrained and load_weights:
        from ..models.weights import load_pretrained

        # Fine-tuning: every layer but the classifier (and the auxiliary classifiers) comes from the file.
        reset = load_pretrained(model, cfg.pretrained, reset_classifier=True)
        log(f"fine-tuning from {cfg.pretrained}: {len(reset)} tensors start fresh "
            f"(classifier{'s' if getattr(model, 'has_aux', False) else ''} for {num_classes} classes)")
    return model, kwargs


class Trainer:
    """Owns one run; `run()` trains to `cfg.epochs` and returns a `RunResult`."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print,
                 progress: bool = True):
        self.dist = init_distributed(cfg.device)
        self.is_main = self.dist.is_main
        # Rank 0 alone logs, draws progress and writes files; the other ranks train and evaluate their shards.
        self.cfg, self.log, self.show_progress = cfg, (log if self.is_main else _quiet), progress and self.is_main
        if not cfg.model or not cfg.data or not cfg.output:
            missing = [k for k in ("model", "data", "output") if not getattr(cfg, k)]
            raise UserError(f"missing setting{'s' if len(missing) > 1 else ''}: {', '.join(missing)} "
                            f"(give --{' --'.join(missing)} or put them in the recipe)")
        self.run_dir = Path(cfg.output)
        if not resume and (self.run_dir / STATE_NAME).exists():
            raise UserError(f"{self.run_dir} already holds a run; continue it with --resume {self.run_dir} "
                            "or choose another --output")
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self._build_data()
        # On resume the state holds every weight: the --pretrained file is not read again (it may be gone).
        self.model, self.model_kwargs = build_model(cfg, len(self.class_names), log, load_weights=not resume)
        self.input_size = cfg.input_size or self.model.default_cfg.input_size
        if self.input_size < self.model.default_cfg.min_input_size:
            raise UserError(f"input size {self.input_size} is below {cfg.model}'s minimum of "
                            f"{self.model.default_cfg.min_input_size} (try --small-input for 28-64 px images)")
        self.channels_last = cfg.channels_last and self.device.type == "cuda"
        self.workers = loader_workers(cfg.workers, self.device)
        self._build_loaders()
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.aux_weight = self.model.default_cfg.aux_weight if cfg.aux_weight is None else cfg.aux_weight
        if cfg.scale_lr and self.dist.world_size > 1:
            lr = scaled_lr(cfg.lr, cfg.batch_size * self.dist.world_size, cfg.batch_size)
            self.log(f"{self.dist.world_size} processes: global batch {cfg.batch_size * self.dist.world_size}, "
                     f"lr {cfg.lr:g} x {self.dist.world_size} = {lr:g} (linear scaling; scale_lr: false keeps it)")
            cfg = dataclasses.replace(cfg, lr=lr)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.steps_per_epoch)
        self.ema = ModelEMA(self.model, cfg.ema_decay) if cfg.ema_decay else None
        self.epoch, self.batch, self.step, self.best_top1, self.best_epoch = 0, 0, 0, -1.0, -1
        self.meter = Meter()
        if resume:
            for partial in self.run_dir.glob(".*.tmp"):  # a write that a SIGKILL cut short; never read
                partial.unlink()
            self._load_state(load_state(self.run_dir / STATE_NAME))
        self.train_model = self._wrap_distributed()
        if cfg.compile:
            self.model.compile()  # compiles forward; forward_train (aux heads) is compiled alongside
            if hasattr(self.model, "forward_train"):
                self.model.forward_train = torch.compile(self.model.forward_train)
        self._signal = None

    # ---- setup -------------------------------------------------------------------------------------------------
    def _wrap_distributed(self) -> nn.Module:
        """The module the training loop calls: the model itself, or DDP around it under torchrun."""
        if not self.dist.enabled:
            return self.model
        if self.cfg.sync_bn and self.device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        return DistributedTrainModel(self.model, self.device, self.aux_weight)

    def _build_data(self) -> None:
        cfg = self.cfg
        # The train/val split of a single folder or CSV uses build_dataset's default seed, not the training seed,
        # so `inceptorch eval` and every run on the same data see the same validation images.
        train_base = build_dataset(cfg.data, "train", cfg.val_split)
        val_base = build_dataset(cfg.data, "val", cfg.val_split)
        self.class_names = list(train_base.class_names)
        # Decode every file before epoch 1 (issue 8): a bad image stops the run now, not hours in, unless skipped.
        cache = self.run_dir / "verified_images.json" if self.is_main else None
        self.train_base, self.val_base = (
            preflight(ds, skip_bad=cfg.skip_bad_images, max_bad_fraction=cfg.max_bad_fraction,
                      workers=cfg.workers or None, warn=self.log, cache=cache)
            for ds in (train_base, val_base))

    def _build_loaders(self) -> None:
        cfg, model_cfg = self.cfg, self.model.default_cfg
        n, world = len(self.train_base), self.dist.world_size
        batches = n // (cfg.batch_size * world) if n >= cfg.batch_size * world else 1
        batch_size = max(1, min(cfg.batch_size, n // world))
        if batches < cfg.accum_steps:
            raise UserError(f"{n} training images make {batches} batches of {batch_size}, fewer than "
                            f"--accum-steps {cfg.accum_steps}")
        self.steps_per_epoch = batches // cfg.accum_steps
        self.batches_per_epoch = self.steps_per_epoch * cfg.accum_steps  # whole optimizer steps only
        self.sampler = EpochSampler(n, batch_size, self.batches_per_epoch, cfg.seed, self.dist.rank,
                                    self.dist.world_size)
        pin = self.device.type == "cuda"
        # Own generators: creating an iterator then draws nothing from the global generator (see the docstring).
        generator = torch.Generator().manual_seed(cfg.seed)
        normalize = DeviceNormalize(model_cfg, self.device, self.channels_last)
        if cfg.gpu_decode:  # workers read files; the main process decodes and augments on the device (issue 5)
            self.seeded = DeviceAugment(model_cfg, cfg.aug, self.input_size, cfg.hflip, cfg.seed,
                                        channels_last=self.channels_last)
            files = DataLoader(EncodedImages(self.train_base), batch_size=batch_size, sampler=self.sampler,
                               collate_fn=collate_encoded, generator=generator,
                               **_worker_options(self.workers, prefetch=4))  # batches of file bytes are small
            self.train_loader = DeviceBatches(files, self.seeded, self.device)
        else:  # workers decode and augment; batches cross as uint8 and are normalised on the device (issue 5)
            self.seeded = SeededDataset(self.train_base, train_transform(cfg.aug, model_cfg, cfg.hflip,
                                                                         self.input_size, normalize=False), cfg.seed)
            images = DataLoader(self.seeded, batch_size=batch_size, sampler=EpochTagged(self.sampler),
                                pin_memory=pin, generator=generator, **_worker_options(self.workers))
            self.train_loader = NormalizedBatches(images, normalize)
        self.val_base.transform = eval_transform(model_cfg, self.input_size, normalize=False)
        # Each rank evaluates every world_size-th image, no padding; `evaluate` sums the counts over ranks.
        val_sampler = ShardSampler(len(self.val_base), self.dist.rank, self.dist.world_size)
        self.val_loader = NormalizedBatches(
            DataLoader(self.val_base, batch_size=max(batch_size, 64), sampler=val_sampler, pin_memory=pin,
                       generator=torch.Generator(), **_worker_options(self.workers)), normalize)

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch": self.batch,
                 "step": self.step, "best_top1": self.best_top1, "best_epoch": self.best_epoch,
                 "meter": [self.meter.loss_sum, self.meter.correct, self.meter.count, self.meter.seconds],
                 "rng": rng_state()}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        return state

    def _load_state(self, state: dict) -> None:
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"] if "ema" in state else state["model"])
        except (KeyError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"the training state in {self.run_dir} does not fit this configuration: {first[:160]}") \
                from None
        self.epoch, self.batch, self.step = state["epoch"], state["batch"], state["step"]
        self.best_top1, self.best_epoch = state["best_top1"], state["best_epoch"]
        loss_sum, correct, count, seconds = state["meter"]
        self.meter = Meter(loss_sum, correct, count, seconds)
        set_rng_state(state["rng"])

    def _metadata(self, extra: dict | None = None) -> dict:
        meta = model_metadata(self.model, self.model_kwargs, self.class_names)
        meta["model_cfg"]["input_size"] = self.input_size
        meta["train"] = {"epoch": self.epoch, "step": self.step, **(extra or {})}
        return meta

    def save_checkpoint(self) -> None:
        """State first, then the weights file: `--resume` reads only the state, which is never half-updated."""
        if not self.is_main:  # the ranks hold identical weights (DDP); one writer
            return
        try:
            save_state(self.run_dir / STATE_NAME, self._state())
            save_model_file(self.model, self.run_dir / "last.safetensors", self._metadata())
        except OSError as exc:
            raise UserError(f"could not write a checkpoint in {self.run_dir} ({exc.strerror or exc}); "
                            "the previous checkpoint is intact") from None

    def _save_best(self, eval_model: nn.Module, top1: float) -> None:
        if not self.is_main:
            return
        try:
            save_model_file(eval_model, self.run_dir / "best.safetensors", self._metadata({"val_top1": top1}))
        except OSError as exc:
            raise UserError(f"could not write {self.run_dir / 'best.safetensors'} ({exc.strerror or exc}); "
                            "the previous checkpoint is intact") from None

    # ---- signals ------------------------------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        if self._signal is not None and signum == signal.SIGINT:  # a second Ctrl-C: stop now, no checkpoint
            raise KeyboardInterrupt
        self._signal = signum

    def _check_signal(self) -> None:
        if self._signal is None:
            return
        self.save_checkpoint()
        name = signal.Signals(self._signal).name
        raise Interrupted(self._signal, f"{name} at epoch {self.epoch + 1} batch {self.batch}: saved a checkpoint "
                                        f"in {self.run_dir}; continue with --resume {self.run_dir}")

    # ---- the loop -----------------------------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            save_config(self.cfg, self.run_dir / "config.yaml")
        writer = self._tensorboard() if self.is_main else None
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        tic = time.perf_counter()
        result = RunResult(self.run_dir)
        try:
            self._describe()
            while self.epoch < self.cfg.epochs:
                result.last_metrics = self._run_epoch(writer)
        finally:
            for s, h in handlers.items():
                signal.signal(s, h)
            if writer is not None:
                writer.close()
            if self.is_main and self.cfg.plot and (self.run_dir / "metrics.csv").is_file():
                try:
                    plot_curves(self.run_dir / "metrics.csv", self.run_dir / "curves.png", self.cfg.model)
                except MissingExtra as exc:  # metrics.csv has the numbers
                    self.log(f"no curves.png: {exc}")
        result.best_top1, result.best_epoch, result.seconds = self.best_top1, self.best_epoch, time.perf_counter() - tic
        return result

    def _describe(self) -> None:
        cfg = self.cfg
        params = sum(p.numel() for p in self.model.parameters())
        where = f"resuming at epoch {self.epoch + 1} batch {self.batch}" if self.step else "starting"
        skipped = len(getattr(self.train_base, "skipped", [])) + len(getattr(self.val_base, "skipped", []))
        if skipped:
            self.log(f"skipped {skipped} bad image{'s' if skipped > 1 else ''} (--skip-bad-images); "
                     f"list them with `inceptorch check-data {cfg.data}`")
        self.log(f"{where}: {cfg.model} ({params / 1e6:.2f}M params) on {len(self.train_base)} train / "
                 f"{len(self.val_base)} val images, {len(self.class_names)} classes, {self.input_size} px, "
                 f"{cfg.epochs} epochs x {self.steps_per_epoch} steps, device {self.device.type}, "
                 f"{self.workers} loader worker{'s' if self.workers != 1 else ''}; run in {self.run_dir}")

    def _run_epoch(self, writer) -> dict:
        cfg = self.cfg
        self.seeded.set_epoch(self.epoch)  # the train augmentation: SeededDataset, or DeviceAugment
        self.sampler.set_epoch(self.epoch, self.batch)
        bar = _Progress(self.batches_per_epoch, self.batch, f"epoch {self.epoch + 1}/{cfg.epochs}",
                        self.show_progress)

        def on_step(info: StepInfo) -> None:
            self.step, self.batch = info.step, info.batches_done
            bar.update(info)
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.batch < self.batches_per_epoch:
                self.save_checkpoint()
            self._check_signal()

        epoch_tic = time.perf_counter()
        try:
            with bar:
                train_one_epoch(self.train_model, self.train_loader, self.optimizer, self.scheduler, device=self.device,
                                aux_weight=self.aux_weight, label_smoothing=cfg.label_smoothing,
                                accum_steps=cfg.accum_steps, clip_grad=cfg.clip_grad, ema=self.ema, amp=cfg.amp,
                                channels_last=self.channels_last, step=self.step, batches_done=self.batch,
                                meter=self.meter, on_step=on_step)
        except NonFiniteLoss as exc:
            if self.is_main:
                save_state(self.run_dir / DIVERGED_NAME, self._state())
            raise UserError(f"training diverged: {exc} at epoch {self.epoch + 1} step {self.step + 1}; its state is "
                            f"in {self.run_dir / DIVERGED_NAME}, the last good checkpoint is untouched "
                            "(lower the learning rate, or add clip_grad / warmup)") from None
        eval_model = self.ema.module if self.ema is not None else self.model
        val = evaluate(eval_model, self.val_loader, self.device, cfg.amp, self.channels_last)
        row = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[0]["lr"],
               "train_loss": self.meter.loss, "train_top1": self.meter.top1, "val_loss": val["loss"],
               "val_top1": val["top1"], "val_top5": val["top5"], "images_per_s": self.meter.images_per_s,
               "epoch_time_s": time.perf_counter() - epoch_tic}
        self.epoch, self.batch, self.meter = self.epoch + 1, 0, Meter()
        if val["top1"] > self.best_top1:
            self.best_top1, self.best_epoch = val["top1"], self.epoch
            self._save_best(eval_model, val["top1"])
        # The row before the checkpoint: a crash in between repeats the epoch, whose new row then replaces this one.
        if self.is_main:
            _append_row(self.run_dir / "metrics.csv", row)
        self.save_checkpoint()
        if writer is not None:
            for key in METRIC_FIELDS[2:]:
                writer.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
        self.log(f"epoch {row['epoch']}/{cfg.epochs}  train loss {row['train_loss']:.4f} top1 {row['train_top1']:.2f}%"
                 f"  val loss {row['val_loss']:.4f} top1 {row['val_top1']:.2f}% top5 {row['val_top5']:.2f}%"
                 f"  lr {row['lr']:.4g}  {row['images_per_s']:.0f} img/s  {row['epoch_time_s']:.1f}s")
        self._check_signal()
        return row

    def _tensorboard(self):
        if not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.log("tensorboard is not installed: no TensorBoard logs (metrics.csv has the same numbers; "
                     "pip install 'inceptorch[tensorboard]')")
            return None
        return SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.epoch + 1 if self.epoch else None)


class _Progress:
    """A rich progress bar with loss, accuracy, learning rate and images/s; silent when output is not a terminal."""

    def __init__(self, total: int, done: int, title: str, enabled: bool):
        import sys

        self.enabled = enabled and sys.stderr.isatty()
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), transient=True)
            self.task = self.progress.add_task(title, total=total, completed=done, stats="")

    def __enter__(self):
        if self.enabled:
            self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.progress.stop()

    def update(self, info: StepInfo) -> None:
        if self.enabled:
            m = info.meter
            stats = f"loss {m.loss:.4f}  top1 {m.top1:.1f}%  lr {info.lr:.3g}  {m.images_per_s:.0f} img/s"
            self.progress.update(self.task, completed=info.batches_done, stats=stats)


def _append_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.csv rows as floats; a resumed epoch's row replaces the interrupted attempt's."""
    rows: dict[int, dict] = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows[int(r["epoch"])] = {k: float(v) for k, v in r.items()}
    return [rows[e] for e in sorted(rows)]


def plot_curves(metrics: str | Path, out: str | Path, title: str = "") -> None:
    """curves.png: loss, top-1 and learning rate against epochs."""
    matplotlib = require("matplotlib", "curves.png")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics)
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        axes[0].plot(epochs, [r[key] for r in rows], marker=".", label=label)
    for key, label in (("train_top1", "train"), ("val_top1", "val")):
        axes[1].plot(epochs, [r[key] for r in rows], marker=".", label=label)
    axes[2].plot(epochs, [r["lr"] for r in rows], marker=".")
    for ax, name in zip(axes, ("loss", "top-1 (%)", "learning rate (end of epoch)")):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].legend()
    axes[1].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print,
          progress: bool = True) -> RunResult:
    try:
        return Trainer(cfg, resume, log, progress).run()
    finally:
        shutdown_distributed()


def _worker_options(workers: int, prefetch: int = 2) -> dict:
    """DataLoader options: `workers` processes that live for the whole run (none re-spawned each epoch), each
    `prefetch` batches ahead; none at all for 0 workers (loading in the main process)."""
    return {"num_workers": workers, "persistent_workers": True, "prefetch_factor": prefetch} if workers else {}


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""


class _TrainForward(nn.Module):
    """forward() = the model's forward_train(): DDP synchronises gradients only through its wrapped forward."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_train(x) if hasattr(self.model, "forward_train") else self.model(x)


class DistributedTrainModel(nn.Module):
    """DDP around a model, keeping the engine's interface: `forward` gives logits, `forward_train` ModelOutput."""

    def __init__(self, model: nn.Module, device: torch.device, aux_weight: float):
        super().__init__()
        from torch.nn.parallel import DistributedDataParallel

        self.has_aux = getattr(model, "has_aux", False)
        # Heads whose loss is not used (aux weight 0) get no gradient; DDP must then look for unused parameters.
        unused = self.has_aux and aux_weight <= 0
        self.ddp = DistributedDataParallel(_TrainForward(model), device_ids=[device] if device.type == "cuda" else None,
                                           find_unused_parameters=unused)
        self.unwrapped = model

    def forward_train(self, x: torch.Tensor):
        return self.ddp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ddp(x)
        return out.logits if isinstance(out, ModelOutput) else out

