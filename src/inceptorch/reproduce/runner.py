"""Training an experiment's variants over several seeds, each run through the normal training path.

Output folder, one run folder per variant and seed (what `inceptorch train` writes, plus `reproduce.json`):
    OUTPUT/EXPERIMENT/VARIANT/seed-S/   config.yaml, metrics.csv, best.safetensors, ... and reproduce.json
`reproduce.json` records how the run ended ("finished" with the `RunResult`, or "diverged" with the trainer's
message) and the resolved configuration. A run that has one is not trained again (same configuration) or refused
(another configuration); a run folder without one was interrupted and is resumed from its last checkpoint.

Several experiments share a configuration (the demo's GoogLeNet is the baseline of four of them). Runs are
deterministic, so a run whose settings, output folder aside, equal those of a run already ended under the same
OUTPUT is not trained again: that run's folder is copied, and its `reproduce.json` names the original (`same_as`).
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..train.config import TrainConfig, load_saved_config, read_recipe, resolve
from ..train.engine import NonFiniteLoss
from .experiments import Experiment, Variant

RECORD = "reproduce.json"
# Settings that belong to a variant or to this runner, never to the pinned recipe.
_NOT_FROM_RECIPE = ("model", "model_kwargs", "data", "output", "pretrained", "seed", "epochs")


@dataclass(frozen=True)
class Budget:
    """What every run of an invocation shares."""

    data: str = "digits"
    seeds: int = 3
    epochs: int | None = None        # None: the experiment's own
    device: str = "auto"
    settings: dict | None = None     # recipe settings for every run (`--set`), applied over the experiment's
    width_mult: float = 1.0          # multiplies the `width` of every variant whose model has one


def run_dir(output: Path, exp: Experiment, variant: Variant, seed: int) -> Path:
    return output / exp.name / variant.name / f"seed-{seed}"


def run_config(exp: Experiment, variant: Variant, seed: int, budget: Budget, output: Path) -> TrainConfig:
    """The resolved configuration of one run: pinned recipe < experiment < variant < budget."""
    recipe = {k: v for k, v in read_recipe(exp.recipe).items() if k not in _NOT_FROM_RECIPE}
    kwargs = dict(variant.model_kwargs)
    if budget.width_mult != 1.0 and _takes_width(variant.model):
        kwargs["width"] = kwargs.get("width", 1.0) * budget.width_mult
    settings = {**exp.overrides, **variant.overrides, **(budget.settings or {})}
    for key in _NOT_FROM_RECIPE:
        if key in (budget.settings or {}):
            raise UserError(f"--set {key}=... is not a recipe setting here; use the command's own options")
    return resolve({**recipe, **settings}, {
        "model": variant.model, "model_kwargs": kwargs, "data": budget.data, "seed": seed,
        "epochs": budget.epochs or exp.epochs, "device": budget.device,
        "output": str(run_dir(output, exp, variant, seed)),
        # The experiment's own plot replaces each run's curves.png and TensorBoard logs.
        "tensorboard": False, "plot": False}, f"recipe {exp.recipe}")


def _takes_width(model: str) -> bool:
    import inspect

    from ..models import create_model

    return "width" in inspect.signature(type(create_model(model)).__init__).parameters


def run_experiment(exp: Experiment, budget: Budget, output: str | Path, log: Callable[[str], None] = print,
                   progress: bool = True) -> Path:
    """Train every variant of `exp` for `budget.seeds` seeds (skipping runs already done); returns its folder."""
    output = Path(output)
    if budget.seeds < 1:
        raise UserError(f"--seeds must be at least 1, not {budget.seeds}")
    configs = [(v, s, run_config(exp, v, s, budget, output)) for v in exp.variants for s in range(budget.seeds)]
    for i, (variant, seed, cfg) in enumerate(configs, 1):
        where = f"[{exp.name} {i}/{len(configs)}] {variant.name} seed {seed}"
        status = train_once(cfg, log=lambda m, w=where: log(f"{w}: {m}"), progress=progress)
        log(f"{where}: {status}")
    return output / exp.name


def train_once(cfg: TrainConfig, log: Callable[[str], None] = print, progress: bool = True) -> str:
    """One run; a run whose loss turns non-finite counts as diverged and is recorded, not raised."""
    from ..train.run import train

    folder = Path(cfg.output)
    record_path, wanted = folder / RECORD, cfg.to_dict()
    resume = False
    twin = None if record_path.is_file() or (folder / "config.yaml").is_file() else _ended_twin(folder, wanted)
    if twin is not None:
        return _copy_run(twin, cfg)
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record["config"] != wanted:
            raise UserError(f"{folder} holds a run with other settings ({_difference(record['config'], wanted)}); "
                            "choose another --output or delete that folder")
        return f"{record['status']} earlier, not run again"
    if (folder / "config.yaml").is_file():
        saved = load_saved_config(folder)
        saved["betas"] = list(saved.get("betas", []))
        if saved != wanted:
            raise UserError(f"{folder} holds an unfinished run with other settings ({_difference(saved, wanted)}); "
                            "choose another --output or delete that folder")
        resume = (folder / "last.state.pt").is_file()
    tic = time.perf_counter()
    try:
        result = train(cfg, resume=resume, log=log, progress=progress)
    except (UserError, NonFiniteLoss) as exc:
        if not _diverged(exc):
            raise
        _write_record(record_path, {"status": "diverged", "message": str(exc), "config": wanted,
                                    "seconds_to_divergence": time.perf_counter() - tic})
        return f"diverged ({exc})"
    _write_record(record_path, {"status": "finished", "best_top1": result.best.top1, "best_epoch": result.best.epoch,
                                "seconds": result.seconds, "last_metrics": result.last_metrics, "config": wanted})
    return f"finished: best val top-1 {result.best.top1:.2f}% at epoch {result.best.epoch}, {result.seconds:.0f}s"


def _ended_twin(folder: Path, wanted: dict) -> Path | None:
    """An ended run under the same OUTPUT (OUTPUT/EXPERIMENT/VARIANT/seed-S) with `wanted`'s settings but its folder.
    Builder options at their defaults count as not given (`head="avg"` is GoogLeNet without that option)."""
    same = _settings(wanted)
    for record_path in sorted(folder.parents[2].glob(f"*/*/seed-*/{RECORD}")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        if record.get("same_as") is None and _settings(record.get("config") or {}) == same:
            return record_path.parent
    return None


def _settings(config: dict) -> dict:
    """`config` without its output folder, and without the builder options that equal the model's defaults."""
    from ..models._options import model_options

    options = model_options(config["model"]) if config.get("model") else {}
    kwargs = {k: v for k, v in (config.get("model_kwargs") or {}).items()
              if k not in options or options[k].default != v}
    return {**{k: v for k, v in config.items() if k != "output"}, "model_kwargs": kwargs}


def _copy_run(twin: Path, cfg: TrainConfig) -> str:
    """`twin`'s run folder as the run of `cfg`: its files, with this run's config.yaml and a record naming `twin`."""
    from ..train.config import save_config

    folder = Path(cfg.output)
    shutil.copytree(twin, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns(RECORD, "config.yaml", "*.lock"))
    save_config(cfg, folder / "config.yaml")
    record = json.loads((twin / RECORD).read_text())
    _write_record(folder / RECORD, {**record, "config": cfg.to_dict(), "same_as": str(twin)})
    return f"same settings as {twin}: its run copied, not trained again"


def _diverged(exc: Exception) -> bool:
    """A non-finite loss: the engine's NonFiniteLoss, which the trainer turns into a "training diverged" UserError."""
    return isinstance(exc, NonFiniteLoss) or "training diverged" in str(exc)


def _write_record(path: Path, record: dict) -> None:
    from ..fileio import atomic_write

    text = json.dumps(record, indent=1, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _difference(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} there, {new.get(k)!r} now" for k in keys[:3])
