"""The builder options each registered model takes, read from its builder's signature, and their checks.

Options come from wherever a user or a file gives them (`--model-kwarg`, a recipe's `model_kwargs`, a saved
folder's config.json, a model file's metadata); all of them are checked here before a model is built, so a typo, a
wrong type or a value that would allocate hundreds of gigabytes is a one-line `UserError`, never a TypeError
traceback or an exhausted machine. Only options of plain types (int, float, bool, str, or None) can come from text:
builder arguments such as `spec` tables and `cfg` objects are for Python callers.
"""
from __future__ import annotations

import inspect
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ._registry import _BUILDERS, create_model, get_model_cfg

MAX_CLASSES = 100_000  # ImageNet-21k has 21,841; a classifier this wide is 100M weights at 1,024 features
MAX_PARAMS = 1_000_000_000  # 4 GB in fp32, 18x the family's largest model (Inception-ResNet-v2, 55.8M)
MAX_INPUT_SIZE = 2048  # about 7x the family's largest default input (299)
_SCALARS = {int: "int", float: "float", bool: "bool", str: "str"}


@dataclass(frozen=True)
class Option:
    name: str
    kind: str  # "int", "float", "bool" or "str"
    default: Any
    nullable: bool  # None is allowed (the builder's "not given", e.g. drop_rate=None: the model's default)


def model_options(name: str) -> dict[str, Option]:
    """The options `create_model(name, ...)` takes from text: the builder's own keyword arguments and, through
    `**kwargs`, those of the model class it returns (and of its parents, as far as each passes `**kwargs` on)."""
    get_model_cfg(name)  # an unknown name is a UserError listing the known ones
    builder = _BUILDERS[name]
    options: dict[str, Option] = {}
    _collect(builder, options, skip_first=False)
    if _takes_var_keyword(builder):
        cls = typing.get_type_hints(builder).get("return")
        for klass in getattr(cls, "__mro__", ()):
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            _collect(init, options, skip_first=True)
            if not _takes_var_keyword(init):
                break
    return options


def _collect(fn, options: dict[str, Option], skip_first: bool) -> None:
    hints = typing.get_type_hints(fn)
    params = list(inspect.signature(fn).parameters.values())[1 if skip_first else 0:]
    for p in params:
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name in options or p.default is p.empty:
            continue  # a required argument (GoogLeNet's `cfg`) is the builder's to give
        kind, nullable = _scalar_kind(hints.get(p.name))
        if kind is not None:
            options[p.name] = Option(p.name, kind, p.default, nullable)


def _scalar_kind(hint) -> tuple[str | None, bool]:
    if hint in _SCALARS:
        return _SCALARS[hint], False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS:
            return _SCALARS[args[0]], len(args) < len(typing.get_args(hint))
    return None, False


def _takes_var_keyword(fn) -> bool:
    return any(p.kind == p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


# Bounds by option name, for every model that has the option: (low, high, low included, high included).
_BOUNDS = {"num_classes": (0, MAX_CLASSES, True, True), "in_chans": (1, 64, True, True),
           "width": (0, 16, False, True)}
_RATES = ("drop_rate", "aux_drop_rate", "input_drop_rate")  # probabilities: [0, 1)
_INT_CAP = 4096  # every other integer option (channels, kernel sizes, module counts): 1 .. this


def check_model_kwargs(name: str, kwargs: Any, where: str = "model_kwargs") -> dict:
    """`kwargs` checked against `name`'s options: known names, plain types (ints pass as floats, float text such as
    "1e-3" as a float) and sane bounds. Returns the coerced options; raises UserError naming `where`."""
    if not isinstance(kwargs, dict):
        raise UserError(f"{where}: model_kwargs must be a mapping of builder options, not {type(kwargs).__name__}")
    options = model_options(name)
    out = {}
    for key, value in kwargs.items():
        option = options.get(key)
        if option is None:
            from ..text import did_you_mean

            known = ", ".join(sorted(options))
            hint = did_you_mean(key, options)
            raise UserError(f"{where}: {name} takes no option {key!r} ({f'{hint} ' if hint else ''}its options: "
                            f"{known})")
        out[key] = _check_value(option, value, f"{where}: {name} option {key!r}")
    return out


def _check_value(option: Option, value: Any, what: str) -> Any:
    if value is None:
        if option.nullable:
            return None
        raise UserError(f"{what} cannot be empty")
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{what} expects true or false, not {_show(value)}")
        return value
    if option.kind == "str":
        if not isinstance(value, str):
            raise UserError(f"{what} expects a string, not {_show(value)}")
        return value
    if option.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise UserError(f"{what} expects an integer, not {_show(value)}")
    else:
        value = _as_float(value, what)
    low, high, low_in, high_in = _BOUNDS.get(option.name, (0, 1, True, False) if option.name in _RATES else
                                             (1, _INT_CAP, True, True) if option.kind == "int" else
                                             (-math.inf, math.inf, True, True))
    if value < low or value > high or (value == low and not low_in) or (value == high and not high_in):
        span = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
        raise UserError(f"{what} must be in {span}, not {_show(value)}")
    return value


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise UserError(f"{what} expects a number, not {_show(value)}") from None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise UserError(f"{what} expects a number, not {_show(value)}")
    if not math.isfinite(value):
        raise UserError(f"{what} expects a finite number, not {_show(value)}")
    return float(value)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def build_shapes(name: str, kwargs: dict, where: str = "model_kwargs") -> nn.Module:
    """`name` built with `kwargs` on the meta device (shapes only, nothing allocated): a build that fails, or whose
    parameters exceed MAX_PARAMS, is a UserError. The result has the real model's `default_cfg`."""
    try:
        with torch.device("meta"):
            model = create_model(name, **kwargs)
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, AssertionError, RuntimeError, NotImplementedError) as exc:
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{where}: {name} cannot be built with {kwargs}: {text}") from None
    count = sum(p.numel() for p in model.parameters())
    if count > MAX_PARAMS:
        raise UserError(f"{where}: {name} with {kwargs} would have {count:,} parameters, more than the "
                        f"{MAX_PARAMS:,} this library builds (a damaged or hostile file?)")
    return model
