"""A training run's configuration: defaults, YAML recipes, command-line overrides, and validation.

Precedence (timm's): defaults < recipe file (`--config NAME` from `inceptorch/configs/`, or a path) < flags.
The resolved configuration is saved as `config.yaml` in the run folder, so a run can be repeated or resumed.
Every error here is a one-line `UserError` naming the key and what was expected.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from ..devices import check_device_name
from ..errors import UserError
from ..text import did_you_mean

OPTIMIZERS = ("sgd", "rmsprop", "adamw")
SCHEDULES = ("step", "cosine", "constant")
AUGMENTATIONS = ("small_data", "inspection", "paper", "inception_v3", "light", "none")  # = data.transforms.PRESETS
PRECISE_BN = ("auto", "always", "never")
DATA_INIT = ("auto", "never")
CLASS_BALANCE = ("none", "sampler", "loss")
BEST_METRICS = ("auto", "top1", "balanced")
AUTO_AUGMENT = ("trivial", "rand", "auto")  # = data.transforms.AUTO_AUGMENT
AUTO = "auto"  # lr (the range test's suggestion) and epochs (a budget of steps) take it as their value


@dataclass
class TrainConfig:
    """Every setting of a run. The defaults are the recipe for a user's own folder trained from scratch: a few
    hundred to tens of thousands of images, tens of epochs (AdamW, a short warm-up then cosine, label smoothing,
    averaged weights, crops that keep a quarter of the image). The papers' ImageNet recipes are bundled by name
    and set every value they depend on."""

    # what to train on what
    model: str = ""
    model_kwargs: dict = field(default_factory=dict)  # builder options: width, small_input, aux_logits, drop_rate...
    data: str = ""
    val_split: float = 0.2  # for a single folder or a CSV list
    output: str = ""
    pretrained: str | None = None  # fine-tune from a local weights file; the classifier is reset to the data
    # length and batch: "auto" sizes the run to a budget of optimizer steps (length.py)
    epochs: int | str = AUTO
    step_budget: int = 3000
    batch_size: int = 32
    accum_steps: int = 1  # gradient accumulation: the optimizer steps every accum_steps batches
    # optimizer
    optimizer: str = "adamw"
    # for batch_size 32: where the range test's loss falls fastest on hard real data (lr_find.py; 4e-4 to 6e-4 on
    # the inspection benchmark and a real inspection set); 4x that under-fits them. "auto": run the range test
    lr: float | str = 5e-4
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.05
    rmsprop_decay: float = 0.9  # torch's alpha
    eps: float = 1e-8
    betas: tuple = (0.9, 0.999)
    clip_grad: float | None = None  # max global gradient norm
    # learning-rate schedule, as a function of the (fractional) epoch
    schedule: str = "cosine"
    step_epochs: float = 1.0
    step_gamma: float = 1.0
    warmup_epochs: float = 1.0  # at most a tenth of the run (optim.fit_warmup)
    warmup_lr: float = 0.1  # fraction of lr at step 0 of the warmup
    min_lr: float = 0.01  # floor of the cosine, as a fraction of lr
    # loss
    aux_weight: float | None = None  # None: the model's default (GoogLeNet 0.3, arXiv:1409.4842 section 5)
    label_smoothing: float = 0.1
    # parameter averaging (GoogLeNet's Polyak averaging, Inception-v3's running average); both the raw and the
    # averaged weights are validated every epoch, and best.safetensors keeps the better
    ema_decay: float | None = 0.999
    ema_warmup: bool = True  # decay min(ema_decay, (1 + t) / (10 + t)) after t steps (TensorFlow's num_updates)
    # BatchNorm statistics recomputed over training images before each validation (precise_bn.py):
    # auto = while the running estimates are young; always; never
    precise_bn: str = "auto"
    precise_bn_images: int = 512
    # networks without normalisation layers, trained from scratch: rescale each layer on a batch of training
    # images first (data_init.py); auto or never
    data_init: str = "auto"
    # which validation score picks best.safetensors: top1, balanced (accuracy), or auto: balanced when the classes
    # are imbalanced or balanced by class_balance, else top1
    best_metric: str = "auto"
    # imbalanced classes: none, sampler (each class drawn equally often) or loss (class-weighted cross-entropy)
    class_balance: str = "none"
    # fine-tuning from --pretrained: the loaded layers learn at lr x trunk_lr_scale, the new classifiers at lr;
    # for the first freeze_epochs only the new classifiers learn (the trunk, its BN statistics included, is frozen)
    trunk_lr_scale: float = 1.0
    freeze_epochs: int = 0
    # data pipeline
    aug: str = "small_data"  # train_transform presets: small_data, inspection, paper, inception_v3, light, none
    hflip: float = 0.5
    auto_augment: str | None = None  # after the preset: trivial (TrivialAugmentWide), rand (RandAugment), auto
    random_erasing: float = 0.0  # probability of erasing a random rectangle, last
    mixup: float = 0.0  # MixUp's Beta(alpha, alpha) for whole batches (0: off)
    cutmix: float = 0.0  # CutMix's alpha (0: off); with mixup too, each batch gets one of the two
    input_size: int | None = None  # None: the model's default_cfg.input_size
    workers: int | None = None  # loader processes; None: 0 on the CPU, about one per free core on a GPU (run.py)
    gpu_decode: bool = False  # workers only read files; JPEGs are decoded and augmented on the device
    skip_bad_images: bool = False  # leave out images that do not decode instead of stopping before epoch 1
    max_bad_fraction: float = 0.01  # ... but stop anyway when more than this fraction is bad
    # run mechanics
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on GPU (CPU runs stay in fp32)
    channels_last: bool = True  # NHWC: on GPU, and on the CPU for every model whose default_cfg says it is faster
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
            hint = did_you_mean(str(name_or_path), recipe_names())
            raise UserError(f"no recipe {str(name_or_path)!r}: not a file, and not one of: {', '.join(recipe_names())}"
                            + (f"; {hint}" if hint else ""))
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
    recipe = _for_model(recipe, overrides.get("model"))
    for source, values in ((where, recipe), ("command line", overrides)):
        for key, value in values.items():
            if key not in FIELDS:
                hint = did_you_mean(key, FIELDS)
                raise UserError(f"unknown setting {key!r} in {source}; {hint or 'known: ' + ', '.join(FIELDS)}")
            if value is None and source == "command line":
                continue
            if key == "model_kwargs" and source == "command line":
                value = {**merged.get("model_kwargs", {}), **value}
            merged[key] = value
    return validate(TrainConfig(**{k: _coerce(k, v) for k, v in merged.items()}))


def _for_model(recipe: dict, model: str | None) -> dict:
    """`recipe` for `model` when the command line names another model than the recipe's: the recipe's builder
    options are kept where that model takes them too (`--config demo --model lenet5` keeps the demo's narrow width
    where there is one, without the small-input stem LeNet-5 does not have), never an error the user did not cause."""
    if not model or model == recipe.get("model") or not isinstance(recipe.get("model_kwargs"), dict):
        return recipe
    from ..models._options import model_options

    takes = model_options(model)
    return {**recipe, "model_kwargs": {k: v for k, v in recipe["model_kwargs"].items() if k in takes}}


def from_model_file(recipe: dict, overrides: dict, where: str) -> tuple[dict, dict, list[str]]:
    """(recipe, overrides, notes) for fine-tuning from a model file of our own (`--pretrained FILE_OR_RUN`): the
    model it records and its builder options become settings, as if given on the command line, so that the model
    built is the one whose weights the file holds. A flag that says otherwise is a UserError naming both; the
    recipe's builder options give way to the file's (each change is a note). The head options (classes, auxiliary
    heads, dropout) stay the run's. Any other `pretrained` (a weight set, a foreign file) changes nothing."""
    from ..models._options import check_model_kwargs, model_options
    from ..weights.pretrained import HEAD_OPTIONS, recorded_architecture

    pretrained = overrides.get("pretrained") or recipe.get("pretrained")
    found = recorded_architecture(pretrained)
    if found is None:
        if pretrained and not (overrides.get("model") or recipe.get("model")):
            raise UserError(_no_model(str(pretrained)))
        return recipe, overrides, []
    path, model, recorded = found
    trained = f"{path}, a {model}" + (f" trained with {_options_text(recorded)}" if recorded else "")
    if overrides.get("model") and overrides["model"] != model:
        raise UserError(f"--model {overrides['model']} contradicts {trained}: drop --model (fine-tuning builds the "
                        "architecture of the file's weights)")
    options = model_options(model)
    given = overrides.get("model_kwargs") or {}
    for key, value in check_model_kwargs(model, {k: v for k, v in given.items() if k in options},
                                         "--model-kwarg").items():
        if key not in HEAD_OPTIONS and value != recorded.get(key, options[key].default):
            raise UserError(f"{_option_flag(key, value)} contradicts {trained}: drop it (fine-tuning builds the "
                            "architecture of the file's weights)")
    notes = []
    if isinstance(recipe.get("model_kwargs"), dict):  # the file's architecture whole: no recipe option stays in it
        ours = {k: v for k, v in recipe["model_kwargs"].items() if k not in HEAD_OPTIONS}
        if any(k not in options or v != recorded.get(k, options[k].default) for k, v in ours.items()):
            notes.append(f"{where} sets {_options_text(ours)}{' for ' + recipe['model'] if recipe.get('model') else ''}"
                         f"; fine-tuning builds what {path} holds, a {model}"
                         f"{' with ' + _options_text(recorded) if recorded else ''}")
        recipe = {**recipe, "model_kwargs": {k: v for k, v in recipe["model_kwargs"].items() if k in HEAD_OPTIONS}}
    overrides = {**overrides, "model": model, "model_kwargs": {**recorded, **given}}
    return recipe, overrides, notes


def _no_model(pretrained: str) -> str:
    """Why --pretrained alone does not say which model to build, in the terms of what it names."""
    from ..weights.pretrained import WEIGHT_SUFFIXES

    path = Path(pretrained).expanduser()
    if not path.exists() and (any(sep in pretrained for sep in "/\\") or path.suffix.lower() in WEIGHT_SUFFIXES):
        return f"weights file not found: {path}"
    if path.exists():
        return (f"--pretrained {pretrained} is not an inceptorch model file or run folder, so it does not say which "
                "model its weights are for: give --model")
    return f"--pretrained {pretrained} needs --model: which model's weights? (see `inceptorch weights list`)"


def _options_text(kwargs: dict) -> str:
    return ", ".join(f"{k} {_value_text(v)}" for k, v in kwargs.items())


def _value_text(value: Any) -> str:
    """A setting's value as a recipe or --set writes it (true, 0.125)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _option_flag(key: str, value: Any) -> str:
    """The flag that gives a builder option on the command line, as a user would have typed it."""
    if key == "width":
        return f"--width {value:g}"
    if key == "small_input" and value is True:
        return "--small-input"
    return f"--model-kwarg {key}={_value_text(value)}"


def left_out_note(recipe: dict, cfg: TrainConfig, where: str) -> str | None:
    """A line naming the recipe's builder options that `_for_model` left out for the model the command line named."""
    left = sorted(set(recipe.get("model_kwargs") or {}) - set(cfg.model_kwargs))
    if not left or not recipe.get("model") or recipe["model"] == cfg.model:
        return None
    return (f"{where} sets {', '.join(left)} for {recipe['model']}; {cfg.model} does not take "
            f"{'it' if len(left) == 1 else 'them'}, left out")


_KINDS = {name: f.type.split(" | ")[0] for name, f in FIELDS.items()}  # "int", "float", "str", "bool", ...
_CHECKS = {
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "dict": (lambda v: isinstance(v, dict), "a mapping"),
    "tuple": (lambda v: isinstance(v, (list, tuple)) and all(_CHECKS["float"][0](x) for x in v), "a list of numbers"),
}


_AUTO_FIELDS = {name for name, f in FIELDS.items() if _KINDS[name] in ("int", "float") and "str" in str(f.type)}


def _coerce(key: str, value: Any) -> Any:
    """Check one value against its field's type; ints pass as floats, lists as tuples, float text as floats;
    `auto` where a number may be left to the run (lr, epochs)."""
    if key in _AUTO_FIELDS:
        if value == AUTO:
            return AUTO
        try:
            return _coerce_value(key, value)
        except UserError as exc:
            raise UserError(f"{exc}, or {AUTO}") from None
    return _coerce_value(key, value)


def _coerce_value(key: str, value: Any) -> Any:
    if value is None:
        if key in _NULLABLE:
            return None
        raise UserError(f"setting {key!r} cannot be empty")
    kind = _KINDS[key]
    if kind == "float":
        return read_float(value, f"setting {key!r}")
    if kind == "tuple" and isinstance(value, (list, tuple)):
        return tuple(read_float(v, f"setting {key!r}") for v in value)
    check, expected = _CHECKS[kind]
    if not check(value):
        raise UserError(f"setting {key!r} expects {expected}, not {value!r}")
    return value


def read_float(value: Any, what: str) -> float:
    """A finite float from a number or from text in any spelling Python reads (`1e-3`, `1E-3`, `.5`, `1_000.5`).

    YAML 1.1, which PyYAML implements, reads a float only with a dot and a signed exponent: `1e-3` and `1.5e3`
    stay strings there, yet they are how most people write a learning rate or a weight decay.
    """
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UserError(f"{what} expects a number, not {value!r}") from None
    if not _CHECKS["float"][0](number):
        raise UserError(f"{what} expects a number, not {value!r}")
    if not math.isfinite(number):
        raise UserError(f"{what} expects a finite number, not {value!r}")
    return float(number)


def validate(cfg: TrainConfig) -> TrainConfig:
    if cfg.model:  # the builder's options, with their types and bounds (a typo is caught here, not after epoch 0)
        from ..models._options import check_model_kwargs

        cfg.model_kwargs = check_model_kwargs(cfg.model, cfg.model_kwargs, "model_kwargs")
    check_device_name(cfg.device)  # its spelling; whether this machine has it is for the run (devices.py)
    if cfg.auto_augment is not None and cfg.auto_augment not in AUTO_AUGMENT:
        raise UserError(f"auto_augment must be one of {', '.join(AUTO_AUGMENT)} (or empty), not {cfg.auto_augment!r}")
    if cfg.gpu_decode and (cfg.auto_augment or cfg.random_erasing):
        raise UserError("--gpu-decode augments on the device, which has no auto_augment or random_erasing; "
                        "drop --gpu-decode or those settings")
    for key, choices in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                         ("aug", AUGMENTATIONS), ("precise_bn", PRECISE_BN), ("class_balance", CLASS_BALANCE),
                         ("best_metric", BEST_METRICS), ("data_init", DATA_INIT)):
        if getattr(cfg, key) not in choices:
            raise UserError(f"{key} must be one of {', '.join(choices)}, not {getattr(cfg, key)!r}")
    for key in ("epochs", "batch_size", "accum_steps", "step_budget"):
        if getattr(cfg, key) != AUTO and getattr(cfg, key) < 1:
            raise UserError(f"{key} must be at least 1, not {getattr(cfg, key)}")
    for key in ("lr", "step_epochs"):
        if getattr(cfg, key) != AUTO and not getattr(cfg, key) > 0:
            raise UserError(f"{key} must be positive, not {getattr(cfg, key)}")
    if not 0 <= cfg.random_erasing <= 1:
        raise UserError(f"random_erasing is a probability, in [0, 1], not {cfg.random_erasing}")
    for key in ("weight_decay", "momentum", "warmup_epochs", "label_smoothing", "workers", "checkpoint_every",
                "mixup", "cutmix",
                "hflip", "min_lr", "warmup_lr", "precise_bn_images", "trunk_lr_scale", "freeze_epochs"):
        if getattr(cfg, key) is not None and getattr(cfg, key) < 0:
            raise UserError(f"{key} must not be negative, not {getattr(cfg, key)}")
    if cfg.ema_decay is not None and not 0 < cfg.ema_decay < 1:
        raise UserError(f"ema_decay must be between 0 and 1, not {cfg.ema_decay}")
    if cfg.clip_grad is not None and not cfg.clip_grad > 0:
        raise UserError(f"clip_grad must be positive, not {cfg.clip_grad}")
    if not 0 <= cfg.label_smoothing < 1 or cfg.hflip > 1:
        raise UserError("label_smoothing must be in [0, 1) and hflip in [0, 1]")
    if cfg.input_size is not None and not 1 <= cfg.input_size <= MAX_INPUT_SIZE:
        raise UserError(f"input_size must be between 1 and {MAX_INPUT_SIZE} px, not {cfg.input_size} (the family "
                        "takes 224-299 px, and 28-64 px with --small-input)")
    return cfg


# Above this a batch of a few images fills a large machine's memory (a 100,000 px input asked for 24 GB and more):
# the bound turns a typo into an error before anything is built.
MAX_INPUT_SIZE = 2048

# What `--resume` may change: where and how fast the run goes on, and how long (--epochs). Anything else would
# make the resumed run differ from the one its config.yaml, metrics.csv and checkpoints describe.
RESUME_SETTINGS = frozenset({"epochs", "output", "device", "workers", "compile", "checkpoint_every", "tensorboard",
                             "plot", "skip_bad_images", "max_bad_fraction"})


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    from ..fileio import atomic_write

    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def load_saved_config(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not Path(run_dir).exists():
        raise UserError(f"{run_dir} does not exist (--resume takes the folder of an earlier run)")
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    return read_recipe(path)
