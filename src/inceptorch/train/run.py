"""A training run: data, model, optimizer and checkpoints in a run folder, resumable at any checkpoint.

Run folder:
  config.yaml            the resolved configuration (defaults < recipe < flags)
  last.safetensors       the latest weights, a self-describing model file (`load_model_file`)
  best.safetensors       the better of the raw and the averaged (EMA) weights at the best validation score; its
                         metadata says which ("weights": "raw" or "ema")
  last.state.pt          everything `--resume` needs (see `state.py`), loadable with weights_only=True
  diverged.state.pt      only after a non-finite loss: the state at that step, kept apart from `last`
  metrics.csv            one row per epoch (`metrics.py`); tensorboard/ holds the same as TensorBoard events
  curves.png             loss, accuracy and learning rate against epochs, raw and EMA weights labelled

Each epoch ends with validation of the raw weights and, when the recipe averages them, of the EMA weights; BN
statistics are recomputed from training images first while they are young (`precise_bn.py`).

Reproducibility: the shuffling order of epoch e comes from its own generator seeded with (seed, e), each sample's
augmentation from (seed, e, index) (`SeededDataset`, or `DeviceAugment` under --gpu-decode), and the global generator
(dropout) is saved with every checkpoint. Hence a run resumed from any checkpoint, even mid-epoch, replays exactly
what the uninterrupted run did.
"""
from __future__ import annotations

import dataclasses
import gc
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.checks import class_warnings, counts_by_name, preflight_splits
from ..data.datasets import build_dataset, check_training_classes
from ..devices import prefers_channels_last, resolve_device
from ..errors import UserError
from ..extras import MissingExtra
from ..models import create_model
from ..text import count
from ..weights.model_file import model_metadata, read_metadata, restore_recorded, save_model_file
from .best import BestSoFar
from .config import TrainConfig, save_config
from .data_init import data_dependent_init, has_normalization
from .diagnosis import diagnose
from .distributed import (
    DistributedTrainModel,
    all_reduce_sum,
    barrier,
    init_distributed,
    is_distributed,
    scaled_lr,
    shutdown_distributed,
)
from .ema import ModelEMA
from .engine import ForwardLoss, Meter, NonFiniteLoss, StepInfo, autocast, evaluate, train_one_epoch
from .length import epochs_for_budget
from .loaders import build_loaders, loader_workers
from .lr_find import LR_FIND_END, LR_FIND_START, LR_FIND_STEPS, LRFindResult, repeat, sweep, write_lr_find
from .metrics import (
    append_row,
    class_share_note,
    eval_columns,
    metric_fields,
    missing_classes_note,
    plot_curves,
    prediction_note,
    read_metrics,
)
from .mixing import batch_mixing
from .optim import build_optimizer, build_scheduler, fit_warmup
from .precise_bn import BATCH_NORMS, needs_recompute, recompute_bn_stats
from .progress import EpochProgress
from .run_folder import RunFolderLock, check_output, remove_unstarted
from .samplers import balanced_class_weights
from .state import DIVERGED_NAME, STATE_NAME, load_state, rng_state, save_state, set_rng_state

SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
LR_FIND_EPOCHS = 1_000_000  # the range test's data order and augmentation are drawn as epochs from here on


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; a checkpoint was written and the run stopped cleanly."""

    def __init__(self, signum: int, message: str):
        super().__init__(message)
        self.exit_code = SIGNAL_EXIT.get(signum, 1)


class Diverged(UserError):
    """The loss became NaN or infinite; the state at that step was kept apart from the last good checkpoint."""


@dataclass
class RunResult:
    run_dir: Path
    best: BestSoFar = field(default_factory=BestSoFar)  # what best.safetensors holds
    last_metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    diagnosis: str = ""  # the last epoch's finding ("underfitting", "overfitting") or ""
    config: TrainConfig | None = None  # the settings the run used, the data-dependent defaults resolved


def build_model(cfg: TrainConfig, num_classes: int, log: Callable[[str], None] = print,
                load_weights: bool = True, class_names: list[str] | None = None) -> tuple[nn.Module, dict, list[str]]:
    """The model for `cfg` with `num_classes` outputs, fine-tuned from `cfg.pretrained` when given; also the
    state-dict keys that start fresh (the new classifiers) when weights were loaded. Weights that name exactly
    `class_names` keep their classifiers (a run of ours trained on to other settings)."""
    kwargs = {**cfg.model_kwargs, "num_classes": num_classes}
    try:
        model = create_model(cfg.model, **kwargs)
    except TypeError as exc:  # an option the builder does not take
        raise UserError(f"model {cfg.model} does not accept these options {cfg.model_kwargs}: {exc}") from None
    except ValueError as exc:  # an option's value the builder refuses (`head=`, `init=`: it names the choices)
        raise UserError(f"model {cfg.model} cannot be built with {cfg.model_kwargs}: {exc}") from None
    fresh: list[str] = []
    if cfg.pretrained and load_weights:
        from ..weights.pretrained import load_pretrained

        # Fine-tuning: every layer but the classifier (and the auxiliary classifiers) comes from the file.
        fresh = load_pretrained(model, cfg.pretrained, reset_classifier=True, log=log, classes=class_names)
        heads = f"classifier{'s' if getattr(model, 'has_aux', False) else ''}"
        log(f"fine-tuning from {cfg.pretrained}: {len(fresh)} tensors start fresh ({heads} for {num_classes} classes)"
            if fresh else f"fine-tuning from {cfg.pretrained}: its {heads} already name these {num_classes} "
                          "classes, in this order: kept")
    return model, kwargs, fresh


class Trainer:
    """Owns one run; `run()` trains to `cfg.epochs` and returns a `RunResult`."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print,
                 progress: bool = True, on_epoch: Callable[[dict], None] | None = None, command: str | None = None):
        self.dist = init_distributed(cfg.device)
        self.on_epoch = on_epoch  # called with each epoch's metrics row (a recipe search prunes trials with it)
        self.command = command  # the command line that started this run, appended to command.txt
        self.is_main = self.dist.is_main
        # Rank 0 alone logs, draws progress and writes files; the other ranks train and evaluate their shards.
        self.cfg, self.log, self.show_progress = cfg, (log if self.is_main else _quiet), progress and self.is_main
        if not cfg.model or not cfg.data or not cfg.output:
            missing = [k for k in ("model", "data", "output") if not getattr(cfg, k)]
            several = len(missing) > 1
            raise UserError(f"missing setting{'s' if several else ''}: {', '.join(missing)} "
                            f"(give --{' --'.join(missing)} or put {'them' if several else 'it'} in the recipe)")
        if cfg.freeze_epochs and not cfg.pretrained:
            raise UserError("freeze_epochs freezes pretrained layers: give --pretrained, or set freeze_epochs=0")
        self.run_dir = Path(cfg.output)
        check_output(self.run_dir, resume, STATE_NAME, cfg.data)
        # One writer per run folder: a second run started into it stops here (an OS lock, gone with its process).
        created = not self.run_dir.exists()
        self.lock = RunFolderLock(self.run_dir) if self.is_main else None
        try:
            self._setup(cfg, resume, log)
        except BaseException:
            if self.lock is not None:  # a start that fails (bad data, a missing device) leaves nothing behind
                self.lock.release()
                if created:
                    remove_unstarted(self.run_dir)
            raise

    def _setup(self, cfg: TrainConfig, resume: bool, log: Callable[[str], None]) -> None:
        """Data, model, loaders, loss and optimizer, each built by its own step below; the state of a resumed run."""
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        if resume and self.is_main:
            # Writes that a SIGKILL cut short; never read. The writer removes them before it writes again: another
            # rank doing it could remove a file the writer is still writing.
            for partial in self.run_dir.glob(".*.tmp"):
                partial.unlink()
        self.notes: list[str] = []  # how the defaults were resolved, printed with the run's header
        self._build_data()
        state = load_state(self.run_dir / STATE_NAME) if resume else None
        self._build_model(state, log)
        self.workers = loader_workers(cfg.workers, self.device)
        self.loaders = build_loaders(cfg, self.model.default_cfg, self.train_base, self.val_base, self.input_size,
                                     self.device, self.channels_last, self.workers, self.dist, cfg.precise_bn_images)
        self.steps_per_epoch, self.batches_per_epoch = self.loaders.steps_per_epoch, self.loaders.batches_per_epoch
        if state is None and not cfg.pretrained and cfg.data_init == "auto" and not has_normalization(self.model):
            self._data_dependent_init()
        self._resolve_defaults()
        self._build_loss()
        if self.cfg.lr == "auto":  # only a new run: a resumed one reads the lr it found from its config.yaml
            self._choose_lr()
        else:
            self.optimizer, self.scheduler = self._build_optimizer()
        self.ema = ModelEMA(self.model, self.cfg.ema_decay, self.cfg.ema_warmup) if self.cfg.ema_decay else None
        self.epoch, self.batch, self.step = 0, 0, 0
        self.best = BestSoFar(metric=self.cfg.best_metric)
        self.meter = Meter()
        self.history: list[dict] = []  # metrics.csv's rows so far, for the diagnosis
        if state is not None:
            self._load_state(state)
        self.fields = metric_fields(self.class_names, ema=self.ema is not None)
        self._signal = None

    def _build_model(self, state: dict | None, log: Callable[[str], None]) -> None:
        """The model on its device and in its layout; fine-tuning's trunk; a data-dependent init where it needs one."""
        cfg = self.cfg
        # On resume the state holds every weight: the --pretrained file is not read again (it may be gone).
        self.model, self.model_kwargs, fresh = build_model(cfg, len(self.class_names), log, load_weights=state is None,
                                                           class_names=self.class_names)
        self.fresh_keys = list(state.get("fresh_keys", [])) if state is not None else fresh
        if state is not None and (self.run_dir / "last.safetensors").is_file():
            # The weights' preprocessing (transform_input, mean/std) and provenance, as the run started with them.
            restore_recorded(self.model, read_metadata(self.run_dir / "last.safetensors"))
        self.input_size = cfg.input_size or self.model.default_cfg.input_size
        if self.input_size < self.model.default_cfg.min_input_size:
            raise UserError(f"input size {self.input_size} is below {cfg.model}'s minimum of "
                            f"{self.model.default_cfg.min_input_size} (try --small-input for 28-64 px images)")
        self.channels_last = cfg.channels_last and prefers_channels_last(self.device, self.model.default_cfg)
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.aux_weight = self.model.default_cfg.aux_weight if cfg.aux_weight is None else cfg.aux_weight
        # Classifiers kept from the file (it names these very classes) leave no new layer: a frozen trunk would
        # leave nothing to train.
        self.freeze_epochs = cfg.freeze_epochs if self.fresh_keys or not cfg.pretrained else 0
        if cfg.freeze_epochs and not self.freeze_epochs:
            self.notes.append(f"no layer is new, so none is frozen (freeze_epochs {cfg.freeze_epochs} left unused): "
                              f"every layer learns from epoch 1, at lr x trunk_lr_scale ({cfg.trunk_lr_scale:g})")
        self.train_model = self._wrap_distributed()
        # Fine-tuning: the layers that came from the file form the trunk (lr x trunk_lr_scale, frozen at first).
        fresh_names = set(self.fresh_keys)
        self.trunk = ({name for name, _ in self.model.named_parameters() if name not in fresh_names}
                      if cfg.pretrained else set())
        self.trunk_norm_names = frozenset(name for name, m in self.model.named_modules()
                                          if isinstance(m, BATCH_NORMS) and f"{name}.weight" in self.trunk)
        self.trunk_norms = [self.model.get_submodule(name) for name in sorted(self.trunk_norm_names)]

    def _resolve_defaults(self) -> None:
        """The settings whose default depends on the data: the length (`epochs: auto`, a budget of optimizer steps)
        and what picks best.safetensors (`best_metric: auto`). config.yaml records what they resolved to."""
        cfg = self.cfg
        changes = {}
        if cfg.epochs == "auto":
            changes["epochs"], note = epochs_for_budget(cfg.step_budget, self.steps_per_epoch)
            self.notes.append(note)
        if cfg.best_metric == "auto":
            imbalanced = class_share_note(self.val_base.targets, self.class_names) is not None
            metric = "balanced" if imbalanced or cfg.class_balance != "none" else "top1"
            changes["best_metric"] = metric
            if metric == "balanced":
                why = "the classes are imbalanced" if imbalanced else f"--class-balance {cfg.class_balance}"
                self.notes.append(f"best.safetensors: the epoch with the best val balanced accuracy ({why}; "
                                  "--set best_metric=top1 to rank by top-1)")
        if changes:
            self.cfg = dataclasses.replace(cfg, **changes)

    def _build_loss(self) -> None:
        """The loss as one object (`ForwardLoss`: model, auxiliary weight, label smoothing, class weights, autocast;
        what --compile compiles), and the batch mixing (MixUp / CutMix) in front of it."""
        cfg = self.cfg
        self.class_weights = (balanced_class_weights(self.train_base.targets, len(self.class_names)).to(self.device)
                              if cfg.class_balance == "loss" else None)
        # The whole forward + loss is what --compile compiles: one graph, except under DDP.
        self.forward_loss = ForwardLoss(self.train_model, self.aux_weight, cfg.label_smoothing, self.class_weights,
                                        torch.bfloat16 if cfg.amp and self.device.type == "cuda" else None,
                                        compile=cfg.compile, fullgraph=not self.dist.enabled)
        self.mix = batch_mixing(cfg, len(self.class_names))

    def _build_optimizer(self):
        """The optimizer and its per-step schedule at the configured lr (scaled by the number of processes)."""
        cfg = self.cfg
        # The schedule and learning rate actually used; config.yaml keeps the settings as given.
        # Its notes are printed with the run's header (_describe): a finished run that is resumed trains nothing.
        schedule_cfg, note = fit_warmup(cfg)
        self.schedule_notes = [note] if note else []
        if cfg.scale_lr and self.dist.world_size > 1:
            lr = scaled_lr(cfg.lr, cfg.batch_size * self.dist.world_size, cfg.batch_size)
            self.schedule_notes.append(
                f"{self.dist.world_size} processes: global batch {cfg.batch_size * self.dist.world_size}, "
                f"lr {cfg.lr:g} x {self.dist.world_size} = {lr:g} (linear scaling; scale_lr: false keeps it)")
            schedule_cfg = dataclasses.replace(schedule_cfg, lr=lr)
        optimizer = build_optimizer(self.model, schedule_cfg, self.trunk)
        return optimizer, build_scheduler(optimizer, schedule_cfg, self.steps_per_epoch)

    def _choose_lr(self) -> None:
        """`--lr auto`: the range test's suggestion becomes the run's lr; its curve is saved in the run folder."""
        self.cfg = dataclasses.replace(self.cfg, lr=LR_FIND_START)  # the sweep sets its own rates
        self.optimizer, self.scheduler = self._build_optimizer()
        result = self.find_lr()
        if not math.isfinite(result.suggestion):
            raise UserError(f"--lr auto: the learning-rate range test found no lr ({result.stopped}); give --lr")
        if self.is_main:
            write_lr_find(result, self.run_dir, f"{self.cfg.model} on {self.cfg.data}", self.log)
        self.cfg = dataclasses.replace(self.cfg, lr=float(f"{result.suggestion:.2g}"))
        self.notes.append(f"--lr auto: {result.summary()}; training at lr {self.cfg.lr:g} "
                          f"(curve in {self.run_dir / 'lr_find.png'})")
        self.optimizer, self.scheduler = self._build_optimizer()

    # ---- setup -------------------------------------------------------------------------------------------------
    def _wrap_distributed(self) -> nn.Module:
        """The module the training loop calls: the model itself, or DDP around it under torchrun."""
        if not self.dist.enabled:
            return self.model
        if self.cfg.sync_bn and self.device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        # Heads whose loss weight is 0 and a frozen trunk get no gradient: DDP must then look for unused ones.
        unused = (getattr(self.model, "has_aux", False) and self.aux_weight <= 0) or self.freeze_epochs > 0
        return DistributedTrainModel(self.model, self.device, find_unused_parameters=unused)

    def _build_data(self) -> None:
        cfg = self.cfg
        # The train/val split of a single folder or CSV uses build_dataset's default seed, not the training seed,
        # so `inceptorch eval` and every run on the same data see the same validation images.
        train_base = build_dataset(cfg.data, "train", cfg.val_split)
        val_base = build_dataset(cfg.data, "val", cfg.val_split)
        self.class_names = list(train_base.class_names)
        if not train_base.samples:
            raise UserError(f"--val-split {cfg.val_split} holds out all {len(val_base)} images of {cfg.data}: none "
                            "are left to train on")
        check_training_classes(self.class_names, cfg.data)
        # Decode every file before epoch 1: a bad image stops the run now, not hours in, unless skipped.
        cache = self.run_dir / "verified_images.json" if self.is_main else None
        self.train_base, self.val_base = preflight_splits(
            [train_base, val_base], skip_bad=cfg.skip_bad_images, max_bad_fraction=cfg.max_bad_fraction,
            workers=cfg.workers or None, warn=self.log, cache=cache)
        # Labels that look mistyped (a class spelt two ways, a class of one image), said before epoch 1.
        self.class_warnings = class_warnings(counts_by_name(train_base.targets + val_base.targets, self.class_names))

    def _data_dependent_init(self) -> None:
        """Rescale a network without normalisation layers on one batch of training images (`data_init.py`)."""
        from ..weights.fitting import classifier_keys

        classifiers = {self.model.get_submodule(key.rsplit(".", 1)[0]) for key in classifier_keys(self.model)}
        images, _ = next(iter(self.loaders.calibration))
        with autocast(self.device, self.cfg.amp):
            layers = data_dependent_init(self.model, images, keep=classifiers)
        self.log(f"{self.cfg.model} has no normalisation layers: {layers} layers rescaled to unit-variance outputs on "
                 f"{images.shape[0]} training images (data-dependent init; data_init: never turns it off)")

    # ---- learning-rate range test -------------------------------------------------------------------------------
    def find_lr(self, start_lr: float = LR_FIND_START, end_lr: float = LR_FIND_END,
                steps: int = LR_FIND_STEPS) -> LRFindResult:
        """The learning-rate range test (`lr_find.py`) on this run's model, data, loss and optimizer (a fine-tuned
        trunk keeps its lr x trunk_lr_scale). Weights, optimizer and random generators are restored afterwards, so
        the run that follows is the one it would have been. Under torchrun the ranks sweep together on the
        average of their losses, so that every rank reads the same suggestion."""
        rng = rng_state()
        world = self.dist.world_size

        def average(value: float) -> float:
            total = all_reduce_sum(torch.tensor([value], dtype=torch.float64, device=self.device))
            return total.item() / world

        def set_epoch(epoch: int) -> None:  # epochs of their own: the run's first epochs keep their draws
            self.loaders.augment.set_epoch(LR_FIND_EPOCHS + epoch)
            self.loaders.sampler.set_epoch(LR_FIND_EPOCHS + epoch, 0)

        frozen_norms = self._set_trunk_frozen(self.freeze_epochs > 0)
        try:
            result = sweep(self.train_model, repeat(self.loaders.train, set_epoch), self.optimizer,
                           self.forward_loss, self.device, self.channels_last, start_lr, end_lr, steps,
                           eval_modules=frozen_norms, average=average if world > 1 else None)
        finally:
            set_rng_state(rng)
            self._set_trunk_frozen(False)
        return result

    # ---- checkpoints --------------------------------------------------------------------------------------------
    def _state(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "epoch": self.epoch, "batch": self.batch,
                 "step": self.step, "best": self.best.state_dict(), "fresh_keys": self.fresh_keys,
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
        self.best = BestSoFar.from_state(state, self.cfg.best_metric, averaged=self.ema is not None)
        if self.is_main and (self.run_dir / "metrics.csv").is_file():
            self.history = [row for row in read_metrics(self.run_dir / "metrics.csv") if row["epoch"] <= self.epoch]
        loss_sum, correct, seen, seconds = state["meter"]
        self.meter = Meter(loss_sum, correct, seen, seconds)
        set_rng_state(state["rng"])

    def _metadata(self, extra: dict | None = None) -> dict:
        meta = model_metadata(self.model, self.model_kwargs, self.class_names)
        meta["model_cfg"]["input_size"] = self.input_size
        meta["train"] = {"epoch": self.epoch, "step": self.step, **(extra or {})}
        return meta

    def _write(self, what: str, write: Callable[[], None]) -> None:
        """A checkpoint write; a full disk (or any OS refusal) is one line, and the previous file stays intact."""
        try:
            write()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if getattr(exc, "errno", None) in (28, 27):  # ENOSPC, EFBIG
                reason = f"{reason}: the disk is full or the file size limit is reached"
            raise UserError(f"could not write {what} in {self.run_dir} ({reason}); the previous checkpoint is "
                            "intact") from None

    def save_checkpoint(self) -> None:
        """State first, then the weights file: `--resume` reads only the state, which is never half-updated."""
        if not self.is_main:  # the ranks hold identical weights (DDP); one writer
            return
        self._write("a checkpoint", lambda: (save_state(self.run_dir / STATE_NAME, self._state()),
                                             save_model_file(self.model, self.run_dir / "last.safetensors",
                                                             self._metadata())))

    def _save_best(self, eval_model: nn.Module, which: str, result: dict) -> None:
        if not self.is_main:
            return
        extra = {"weights": which, "val_top1": result["top1"], "val_balanced": result["balanced"]}
        self._write("best.safetensors", lambda: save_model_file(eval_model, self.run_dir / "best.safetensors",
                                                                self._metadata(extra)))

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
            if self.command:  # each start of the run (a resume adds its line): the report shows how it was made
                with open(self.run_dir / "command.txt", "a", encoding="utf-8") as f:
                    f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {self.command}\n")
        writer = self._tensorboard() if self.is_main else None
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        tic = time.perf_counter()
        result = RunResult(self.run_dir)
        try:
            if self.epoch >= self.cfg.epochs:  # --resume of a run that ended
                done = (f"has trained all its {count(self.cfg.epochs, 'epoch')}" if self.epoch == self.cfg.epochs
                        else f"has trained {count(self.epoch, 'epoch')} already, more than --epochs {self.cfg.epochs}")
                self.log(f"{self.run_dir} {done}: nothing to resume (to train longer: inceptorch train --resume "
                         f"{self.run_dir} --epochs N, with N > {self.epoch})")
            else:
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
            if self.lock is not None:
                self.lock.release()
        result.best, result.seconds, result.config = self.best, time.perf_counter() - tic, self.cfg
        result.diagnosis = self.history[-1].get("diagnosis", "") if self.history else ""
        return result

    def _describe(self) -> None:
        cfg = self.cfg
        for note in [*self.notes, *self.schedule_notes]:
            self.log(note)
        aux = sum(p.numel() for head in getattr(self.model, "aux_taps", {}).values()
                  if getattr(self.model, head, None) is not None for p in getattr(self.model, head).parameters())
        params = sum(p.numel() for p in self.model.parameters()) - aux
        where = f"resuming at epoch {self.epoch + 1} batch {self.batch}" if self.step else "starting"
        skipped = len(getattr(self.train_base, "skipped", [])) + len(getattr(self.val_base, "skipped", []))
        if skipped:
            self.log(f"skipped {count(skipped, 'bad image')} (--skip-bad-images); "
                     f"list them with `inceptorch check-data {cfg.data}`")
        aux_note = f" + {aux:,} in auxiliary heads (training only)" if aux else ""
        self.log(f"{where}: {cfg.model} ({params:,} params{aux_note}) on {len(self.train_base)} train / "
                 f"{len(self.val_base)} val images, {count(len(self.class_names), 'class')}"
                 f", {self.input_size} px, {count(cfg.epochs, 'epoch')} x {count(self.steps_per_epoch, 'step')}, "
                 f"device {self._device_text()}, {count(self.workers, 'loader worker')}; run in {self.run_dir}")
        for note in (missing_classes_note(self.val_base.targets, self.class_names),
                     class_share_note(self.val_base.targets, self.class_names), *self.class_warnings,
                     self._frozen_note()):
            if note:
                self.log(note)

    def _device_text(self) -> str:
        """The device; on the CPU with its thread count, which decides how the kernels split their sums: the same
        run with another count rounds otherwise and ends at other figures."""
        if self.device.type != "cpu":
            return self.device.type
        return f"cpu ({count(torch.get_num_threads(), 'thread')})"

    def _frozen_note(self) -> str | None:
        """Which epochs train only the new layers, said when the run starts (or resumes) inside them."""
        if self.epoch >= self.freeze_epochs:
            return None
        last = min(self.freeze_epochs, self.cfg.epochs)
        epochs = f"epoch {last}" if self.epoch + 1 == last else f"epochs {self.epoch + 1}-{last}"
        new = sum(p.numel() for name, p in self.model.named_parameters() if name not in self.trunk)
        then = ("" if last == self.cfg.epochs else
                f"; from epoch {last + 1} on they learn too, at lr x trunk_lr_scale ({self.cfg.trunk_lr_scale:g})")
        return (f"trunk frozen for {epochs} of {self.cfg.epochs}: only the new layers learn "
                f"({count(new, 'parameter')}); the pretrained layers and their BatchNorm statistics stay as "
                f"loaded{then}")

    def _set_trunk_frozen(self, frozen: bool) -> list[nn.Module]:
        """Freeze or thaw the pretrained trunk; returns the BN layers to keep in eval mode while it is frozen."""
        for name, p in self.model.named_parameters():
            if name in self.trunk:
                p.requires_grad_(not frozen)
        return self.trunk_norms if frozen else []

    def _validate(self) -> dict[str, tuple[nn.Module, dict]]:
        """Each kept set of weights ("raw", and "ema" when averaging) with its validation result."""
        cfg = self.cfg
        candidates = {"raw": self.model, **({"ema": self.ema.module} if self.ema is not None else {})}
        # A frozen trunk keeps the BN statistics it came with, PreciseBN or not: only the new layers' are its to set.
        keep = self.trunk_norm_names if self.epoch < self.freeze_epochs else frozenset()
        results = {}
        for which, model in candidates.items():
            if needs_recompute(model, cfg.precise_bn):
                with autocast(self.device, cfg.amp):
                    recompute_bn_stats(model, (images for images, _ in self.loaders.calibration), keep)
            results[which] = model, evaluate(model, self.loaders.val, self.device, cfg.amp, self.channels_last,
                                             num_classes=len(self.class_names))
        return results

    def _run_epoch(self, writer) -> dict:
        cfg = self.cfg
        self.loaders.augment.set_epoch(self.epoch)  # the train augmentation: SeededDataset, or DeviceAugment
        self.loaders.sampler.set_epoch(self.epoch, self.batch)
        frozen_norms = self._set_trunk_frozen(self.epoch < self.freeze_epochs)
        if self.freeze_epochs and self.epoch == self.freeze_epochs:
            self.log(f"epoch {self.epoch + 1}: trunk unfrozen: the pretrained layers learn from here on, at lr x "
                     f"trunk_lr_scale ({cfg.trunk_lr_scale:g}), and their BatchNorm statistics follow the data")
        title = f"epoch {self.epoch + 1}/{cfg.epochs}"
        bar = EpochProgress(self.batches_per_epoch, self.batch, title, self.show_progress, self.log)

        def on_step(info: StepInfo) -> None:
            self.step, self.batch = info.step, info.batches_done
            bar.update(info)
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and self.batch < self.batches_per_epoch:
                self.save_checkpoint()
            self._check_signal()

        epoch_tic = time.perf_counter()
        try:
            with bar:
                train_one_epoch(self.forward_loss, self.loaders.train, self.optimizer, self.scheduler,
                                device=self.device, accum_steps=cfg.accum_steps, clip_grad=cfg.clip_grad,
                                ema=self.ema, channels_last=self.channels_last, mix=self.mix,
                                eval_modules=frozen_norms, step=self.step, batches_done=self.batch,
                                meter=self.meter, on_step=on_step)
        except NonFiniteLoss as exc:
            if self.is_main:
                save_state(self.run_dir / DIVERGED_NAME, self._state())
            raise Diverged(f"training diverged: {exc} at epoch {self.epoch + 1} step {self.step + 1}; its state is "
                            f"in {self.run_dir / DIVERGED_NAME}, the last good checkpoint is untouched "
                            "(lower the learning rate, or add clip_grad / warmup)") from None
        results = self._validate()
        metric = self.best.metric
        # The better of the two; on a tie the average, the smoother of them.
        which = max(results, key=lambda k: (results[k][1][metric], k == "ema"))
        best_model, best = results[which]
        row = {"epoch": self.epoch + 1, "step": self.step, "lr": self.optimizer.param_groups[-1]["lr"],
               "train_loss": self.meter.loss, "train_top1": self.meter.top1, "best_weights": which,
               "images_per_s": self.meter.images_per_s, "epoch_time_s": time.perf_counter() - epoch_tic}
        for name, (_, result) in results.items():
            row.update(eval_columns("val" if name == "raw" else "ema_val", result, self.class_names))
        finding = diagnose([*self.history, row], *self._majority_of_training())
        row["diagnosis"] = finding.kind if finding else ""
        self.epoch, self.batch, self.meter = self.epoch + 1, 0, Meter()
        if self.best.beaten_by(best):
            self.best.take(best, self.epoch, which)
            self._save_best(best_model, which, best)
        # The row before the checkpoint: a crash in between repeats the epoch, whose new row then replaces this one.
        if self.is_main:
            append_row(self.run_dir / "metrics.csv", row, self.fields)
        self.history.append(row)
        self.save_checkpoint()
        if writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "best_weights", "diagnosis") and "_recall_" not in key:
                    writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
        self.log(self._epoch_line(row, results))
        for note in (prediction_note(best, self.class_names, which), finding and finding.message):
            if note:
                self.log(note)
        self._check_signal()
        if self.on_epoch is not None:
            self.on_epoch(row)
        return row

    def _majority_of_training(self) -> tuple[float, str]:
        """What always answering one class scores on the training batches, and that class: the largest class's
        share, or an even share when the sampler draws every class equally often."""
        counts = torch.bincount(torch.tensor(self.train_base.targets), minlength=len(self.class_names))
        top = int(counts.argmax())
        share = 1 / len(self.class_names) if self.cfg.class_balance == "sampler" else float(counts[top]) / counts.sum()
        return float(share), self.class_names[top]

    def _epoch_line(self, row: dict, results: dict) -> str:
        def scores(result: dict) -> str:
            top5 = f" top5 {result['top5']:.2f}%" if len(self.class_names) > 5 else ""
            return f"loss {result['loss']:.4f} top1 {result['top1']:.2f}%{top5} balanced {result['balanced']:.2f}%"

        parts = [f"epoch {row['epoch']}/{self.cfg.epochs}",
                 f"train loss {row['train_loss']:.4f} top1 {row['train_top1']:.2f}%",
                 f"val {scores(results['raw'][1])}"]
        if "ema" in results:
            parts.append(f"ema val {scores(results['ema'][1])}")
        parts += [self._lr_text(frozen=row["epoch"] <= self.freeze_epochs), f"{row['images_per_s']:.0f} img/s",
                  f"{row['epoch_time_s']:.1f}s"]
        return "  ".join(parts)

    def _lr_text(self, frozen: bool = False) -> str:
        """The learning rate now; when fine-tuning, the new layers' and the pretrained trunk's, labelled (the
        trunk's as frozen in an epoch that did not train it)."""
        rates = {}
        for group in self.optimizer.param_groups:
            name = group.get("name", "all")
            rates.setdefault(f"{name}, frozen" if frozen and name == "pretrained" else name, group["lr"])
        if len(rates) == 1:
            return f"lr {next(iter(rates.values())):.4g}"
        return "lr " + " ".join(f"{lr:.4g} ({name})" for name, lr in rates.items())

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


def train(cfg: TrainConfig, resume: bool = False, log: Callable[[str], None] = print,
          progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
          command: str | None = None) -> RunResult:
    try:
        result = Trainer(cfg, resume, log, progress, on_epoch, command).run()
        # Every rank leaves together, once rank 0 has written its files: a rank that tore its process group down
        # while rank 0 was still at work sometimes aborted ("terminate called without an active exception"), and
        # torchrun then failed the finished run and stopped rank 0 with SIGTERM.
        barrier()
        return result
    finally:
        if is_distributed():
            # The model and its DDP wrapper sit in reference cycles that keep the process group's gloo threads
            # alive; freed at interpreter exit instead, they sometimes aborted a rank (SIGABRT) after a finished run.
            gc.collect()
        shutdown_distributed()


def _quiet(message: str) -> None:
    """The log of ranks other than 0."""
