"""What `inceptorch tune` searches: recipe settings, their ranges, and which depend on which.

The ranges are those an experienced practitioner would try first on a small data set trained from scratch: AdamW's
learning rate around its usual 1e-3 and SGD's around 0.1 (their good values lie two orders of magnitude apart, so
each optimizer has its own range, and its own weight decay: AdamW's is decoupled, SGD's is an L2 term), the
augmentation presets, class balancing for imbalanced data, label smoothing 0-0.2 (Inception-v3 used 0.1), and the
input size: the run's own or 1.5x (fine detail, at about 2.25x the cost).

A setting given on the command line (`--aug inspection`, `--input-size 112`, `--set label_smoothing=0`) is fixed for
every trial and leaves the space. `--space FILE.yaml` replaces the space:

    lr: {log: [1.0e-4, 1.0e-2]}
    aug: {choice: [inspection, none]}
    label_smoothing: {uniform: [0.0, 0.2]}
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..errors import UserError
from ..train.config import FIELDS

KINDS = ("log", "uniform", "int", "choice")


class Dim(NamedTuple):
    setting: str                      # the recipe setting it sets
    kind: str                         # log (log-uniform float), uniform (float), int, or choice
    values: tuple                     # (low, high), or the choices
    when: tuple[str, Any] | None = None  # searched only when another setting has this value

    @property
    def name(self) -> str:
        """The parameter's name in the study: a conditional one is named after its condition (`lr[sgd]`), since
        TPE models each name's distribution on its own, and the two learning rates live on different scales."""
        return f"{self.setting}[{self.when[1]}]" if self.when else self.setting


def default_space(input_size: int) -> tuple[Dim, ...]:
    larger = int(round(input_size * 1.5 / 8) * 8)
    return (
        #   setting            kind       values                                       searched when
        Dim("optimizer",       "choice",  ("adamw", "sgd")),
        Dim("lr",              "log",     (1e-4, 3e-3),                                ("optimizer", "adamw")),
        Dim("lr",              "log",     (3e-3, 0.3),                                 ("optimizer", "sgd")),
        Dim("weight_decay",    "log",     (1e-3, 0.2),                                 ("optimizer", "adamw")),
        Dim("weight_decay",    "log",     (1e-5, 1e-3),                                ("optimizer", "sgd")),
        Dim("aug",             "choice",  ("small_data", "inspection", "light", "none")),
        Dim("class_balance",   "choice",  ("none", "sampler", "loss")),
        Dim("label_smoothing", "uniform", (0.0, 0.2)),
        Dim("input_size",      "choice",  (input_size, larger)),
    )


def read_space(path: str | Path) -> tuple[Dim, ...]:
    """A space from a YAML mapping of setting -> {log|uniform|int: [low, high]} or {choice: [values]}."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"--space {path}: cannot read it as YAML ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"--space {path}: expected a mapping of settings, e.g. 'lr: {{log: [1e-4, 1e-2]}}'")
    dims = []
    for setting, spec in data.items():
        if setting not in FIELDS:
            raise UserError(f"--space {path}: {setting!r} is not a recipe setting")
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise UserError(f"--space {path}: {setting} needs one of {', '.join(KINDS)}, e.g. "
                            f"'{setting}: {{choice: [a, b]}}'")
        kind, values = next(iter(spec.items()))
        if not isinstance(values, list) or not values or (kind != "choice" and len(values) != 2):
            raise UserError(f"--space {path}: {setting}: {kind} takes " +
                            ("a list of values" if kind == "choice" else "[low, high]"))
        if kind != "choice":
            try:
                low, high = (float(v) for v in values)
            except (TypeError, ValueError):
                raise UserError(f"--space {path}: {setting}: [low, high] must be numbers") from None
            if not low < high or (kind == "log" and low <= 0):
                raise UserError(f"--space {path}: {setting}: needs low < high" + (" and low > 0" if kind == "log"
                                                                                   else ""))
            values = (int(low), int(high)) if kind == "int" else (low, high)
        dims.append(Dim(setting, kind, tuple(values)))
    return tuple(dims)


def without(space: tuple[Dim, ...], fixed: dict) -> tuple[Dim, ...]:
    """The space less the settings fixed on the command line, and the dimensions whose condition a fixed value
    rules out (`--optimizer sgd` drops AdamW's lr range)."""
    kept = []
    for dim in space:
        if dim.setting in fixed:
            continue
        if dim.when and dim.when[0] in fixed and fixed[dim.when[0]] != dim.when[1]:
            continue
        kept.append(dim)
    return tuple(kept)


def sample(trial, space: tuple[Dim, ...], fixed: dict) -> dict:
    """One trial's settings: each dimension whose condition holds, suggested by the trial."""
    chosen: dict[str, Any] = {}
    for dim in space:
        if dim.when and {**fixed, **chosen}.get(dim.when[0]) != dim.when[1]:
            continue
        if dim.kind == "choice":
            chosen[dim.setting] = trial.suggest_categorical(dim.name, list(dim.values))
        elif dim.kind == "int":
            chosen[dim.setting] = trial.suggest_int(dim.name, *dim.values)
        else:
            chosen[dim.setting] = trial.suggest_float(dim.name, *dim.values, log=dim.kind == "log")
    return chosen


def as_params(settings: dict, space: tuple[Dim, ...]) -> dict:
    """Settings (a recipe's values) as the study's parameter names, for the dimensions they fall inside: the
    defaults enqueued as the first trial, so that the search starts from the recipe and can only improve on it."""
    params = {}
    for dim in space:
        if dim.when and settings.get(dim.when[0]) != dim.when[1] or dim.setting not in settings:
            continue
        value = settings[dim.setting]
        inside = value in dim.values if dim.kind == "choice" else \
            isinstance(value, (int, float)) and dim.values[0] <= value <= dim.values[1]
        if inside:
            params[dim.name] = value
    return params
