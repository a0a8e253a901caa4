"""A training run's configuration: defaults, YAML recipes, command-line overrides, and validation.

Precedence (timm's): defaults < recipe file (`--config NAME` from `inceptorch/configs/`, or a path) < flags.
The resolved configuration is saved as `config.yaml` in the run folder, so a run can be repeated or resumed.
Every error here is a one-line `UserError` naming the key and what was expected.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..errors import UserError

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("step", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")
AUGMENTATIONS = ("paper", "inception_v3", "light", "none")


@dataclass
class TrainConfig:
    # what to train on what
    model: str = ""
    model_kwargs: dict = field(default_factory=dict)  # builder options: width, small_input, aux_logits, drop_rate...
    data: str = ""
    val_split: float = 0.2  # for a single folder or a CSV list
    output: str = ""
    pretrained: str | None = None  # fine-tune from a local weights file; the classifier is reset to the data
    # length and batch
    epochs: int = 10
    batch_size: int = 32
    accum_steps: int = 1  # gradient accumulation: the optimizer steps every accum_steps batches
    # optimizer
    optimizer: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    rmsprop_decay: float = 0.9  # torch's alpha
    eps: float = 1e-8
    betas: tuple = (0.9, 0.999)
    clip_grad: float | None = None  # max global gradient norm
    # learning-rate schedule, as a function of the (fractional) epoch
    schedule: str = "constant"
    step_epochs: float = 1.0
    step_gamma: float = 1.0
    warmup_epochs: float = 0.0
    warmup_lr: float = 0.0  # fraction of lr at step 0 of the warmup
    min_lr: float = 0.0  # floor of the cosine, as a fraction of lr
    # loss
    aux_weight: float | None = None  # None: the model's default (GoogLeNet 0.3, arXiv:1409.4842 section 5)
    label_smoothing: float = 0.0
    # parameter averaging (GoogLeNet's Polyak averaging, Inception-v3's running average)
    ema_decay: float | None = None
    # data pipeline
    aug: str = "paper"
    hflip: float = 0.5
    input_size: int | None = None  # None: the model's default_cfg.input_size
    workers: int | None = None  # loader processes; None: 0 on the CPU, about one per free core on a GPU (run.py)
    gpu_decode: bool = False  # workers only read files; JPEGs are decoded and augmented on the device (issue 5)
    skip_bad_images: bool = False  # leave out images that do not decode instead of stopping before epoch 1
    max_bad_fraction: float = 0.01  # ... but stop anyway when more than this fraction is bad
    # run mechanics
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPU (CPU runs stay in fp32)
    channels_last: bool = True  # on GPU
    compile: bool = False
    # distributed (torchrun): the recipe's lr is for one process's batch; N processes multiply it by N
    # (the linear scaling rule, Goyal et al. 2017: lr proportional to the global batch)
    scale_lr: bool = True
    sync_bn: bool = False  # SyncBatchNorm across processes (GPU only)
    checkpoint_every: int = 0  # also checkpoint every N optimizer steps (0: at epoch ends only)
    tensorboard: bool = True
    plot: bool = True

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_NULLABLE = {name for name, f in FIELDS.items() if "None" in str(f.type)}


def recipe_names() -> list[str]:
    folder = resources.files("inceptorch").joinpath("configs")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_recipe(name_or_path: str | Path) -> dict:
    """The mapping in a recipe: a bundled name (`googlenet_paper`) or a YAML file path."""
    path = Path(name_or_path)
    if not path.is_file():
        bundled = resources.files("inceptorch").joinpath("configs") / f"{name_or_path}.yaml"
        if not bundled.is_file():
            raise UserError(f"no recipe {str(name_or_path)!r}: not a file, and not one of: {', '.join(recipe_names())}")
        text, where = bundled.read_text(), f"recipe {name_or_path}"
    else:
        text, where = path.read_text(), str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{where} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{where} must be a mapping of settings, not a {type(data).__name__}")
    return data


def resolve(recipe: dict, overrides: dict, where: str = "config") -> TrainConfig:
    """Defaults, then `recipe`, then `overrides` (values that are None are ignored), validated."""
    merged: dict[str, Any] = {}
    for source, values in ((where, recipe), ("command line", overrides)):
        for key, value in values.items():
            if key not in FIELDS:
                raise UserError(f"unknown setting {key!r} in {source}; known: {', '.join(FIELDS)}")
            if value is None and source == "command line":
                continue
            if key == "model_kwargs" and source == "command line":
                value = {**merged.get("model_kwargs", {}), **value}
            merged[key] = value
    return validate(TrainConfig(**{k: _coerce(k, v) for k, v in merged.items()}))


_KINDS = {name: f.type.split(" | ")[0] for name, f in FIELDS.items()}  # "int", "float", "str", "bool", ...
_CHECKS = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
    "tuple": (lambda v: isinstance(v, (list, tuple)) and all(_CHECKS["float"][0](x) for x in v), "a list of numbers"),
}


def _coerce(key: str, value: Any) -> Any:
    """Check one value against its field's type; ints pass as floats, lists as tuples."""
    if value is None:
        if key in _NULLABLE:
            return None
        raise UserError(f"setting {key!r} cannot be empty")
    kind = _KINDS[key]
    check, expected = _CHECKS[kind]
    if not check(value):
        raise UserError(f"setting {key!r} expects {expected}, not {value!r}")
    return float(value) if kind == "float" else tuple(float(v) for v in value) if kind == "tuple" else value


def validate(cfg: TrainConfig) -> TrainConfig:
    for key, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("device", DEVICES),
                         ("aug", AUGMENTATIONS)):
        if getattr(cfg, key) not in choices:
            raise UserError(f"{key} must be one of {', '.join(choices)}, not {getattr(cfg, key)!r}")
    for key in ("epochs", "batch_size", "accum_steps"):
        if getattr(cfg, key) < 1:
            raise UserError(f"{key} must be at least 1, not {getattr(cfg, key)}")
    for key in ("lr", "step_epochs"):
        if not getattr(cfg, key) > 0:
            raise UserError(f"{key} must be positive, not {getattr(cfg, key)}")
    for key in ("weight_decay", "momentum", "warmup_epochs", "label_smoothing", "workers", "checkpoint_every",
                "hflip", "min_lr", "warmup_lr"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 0:
            raise UserError(f"{key} must not be negative, not {getattr(cfg, key)}")
    if cfg.ema_decay is not None and not 0 < cfg.ema_decay < 1:
        raise UserError(f"ema_decay must be between 0 and 1, not {cfg.ema_decay}")
    if cfg.clip_grad is not None and not cfg.clip_grad > 0:
        raise UserError(f"clip_grad must be positive, not {cfg.clip_grad}")
    if not 0 <= cfg.label_smoothing < 1 or cfg.hflip > 1:
        raise UserError("label_smoothing must be in [0, 1) and hflip in [0, 1]")
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from ..fileio import atomic_write

    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_saved_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    return read_recipe(path)
