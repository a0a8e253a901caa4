"""Checking what a model file or a saved folder says about itself, before anything is built from it.

A model file's safetensors metadata and a saved folder's config.json are text anyone can edit: an unknown builder
option, `num_classes: 1000000000`, `width: 1000` or `input_size: 1000000` must be a one-line error naming the file,
not a TypeError traceback or an attempt to allocate hundreds of gigabytes. `check_model_meta` checks the architecture
and its options (`models._options`: names, types, bounds, and the parameter count of a shape-only build), the class
names, the model config (ModelCfg's fields) and the preprocessing, and that the parts agree with one another.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import UserError
from ..models import ModelCfg, get_model_cfg
from ..models._options import MAX_CLASSES, MAX_INPUT_SIZE, build_shapes, check_model_kwargs, model_options

INTERPOLATIONS = ("nearest", "bilinear", "bicubic")  # what both the crops and export.preprocess resize with
_CFG_FIELDS = {f.name for f in dataclasses.fields(ModelCfg)}


def check_model_meta(meta: Any, where: str, overrides: dict | None = None) -> dict:
    """`meta` ({"model", "model_kwargs", "class_names", "model_cfg", "preprocessing"?, "num_classes"?}) checked and
    normalised (floats for float options, the full model config); `overrides` are builder options the caller adds."""
    if not isinstance(meta, dict) or not isinstance(meta.get("model"), str):
        raise UserError(f"{where}: the description names no architecture")
    name = meta["model"]
    try:
        get_model_cfg(name)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    kwargs = check_model_kwargs(name, meta.get("model_kwargs", {}), where)
    built = {**kwargs, **check_model_kwargs(name, dict(overrides or {}), where)}
    num_classes = built.get("num_classes", model_options(name)["num_classes"].default)
    stated = meta.get("num_classes")
    if stated is not None and stated != num_classes:
        raise UserError(f"{where}: num_classes {_show(stated)} differs from the model_kwargs' {num_classes}")
    names = _class_names(meta.get("class_names", []), num_classes, where)
    shapes = build_shapes(name, built, where)  # after the cheap checks: a shape-only build
    cfg = _model_cfg(meta.get("model_cfg") or {}, shapes.default_cfg, name, where)
    out = {**meta, "model_kwargs": kwargs, "class_names": names, "model_cfg": cfg}
    if meta.get("preprocessing"):
        out["preprocessing"] = _preprocessing(meta["preprocessing"], cfg, where)
    if meta.get("calibration") is not None:
        out["calibration"] = _calibration(meta["calibration"], where)
    return out


def _calibration(calibration: Any, where: str) -> dict:
    """A temperature that divides the logits (`evaluation/calibration.py`): a positive, finite number."""
    t = calibration.get("temperature") if isinstance(calibration, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 < t <= 100:
        raise UserError(f"{where}: calibration.temperature must be a number in (0, 100], not {_show(t)}")
    return {**calibration, "temperature": float(t)}


def _class_names(names: Any, num_classes: int, where: str) -> list[str]:
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names) or len(names) > MAX_CLASSES:
        raise UserError(f"{where}: class_names must be a list of non-empty strings")
    if names and len(names) != num_classes:
        raise UserError(f"{where}: {len(names)} class names for {num_classes} classes")
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated is not None:
        raise UserError(f"{where}: class_names repeats {_show(repeated)}")
    return list(names)


def _model_cfg(cfg: Any, built: ModelCfg, name: str, where: str) -> dict:
    """The file's ModelCfg fields over the built model's, each checked (unknown fields are refused, not ignored)."""
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: model_cfg must be a mapping, not {type(cfg).__name__}")
    unknown = sorted(set(cfg) - _CFG_FIELDS)
    if unknown:
        raise UserError(f"{where}: model_cfg has unknown field {unknown[0]!r} "
                        f"(known: {', '.join(sorted(_CFG_FIELDS))})")
    merged = {**dataclasses.asdict(built), **cfg}
    what = f"{where}: model_cfg"
    minimum = _integer(merged["min_input_size"], built.min_input_size, MAX_INPUT_SIZE, f"{what} min_input_size")
    size = _integer(merged["input_size"], 1, MAX_INPUT_SIZE, f"{what} input_size")
    if size < minimum:
        raise UserError(f"{what} input_size {size} is below {name}'s minimum of {minimum}")
    merged["min_input_size"], merged["input_size"] = minimum, size
    merged["mean"], merged["std"] = _triple(merged["mean"], f"{what} mean"), _triple(merged["std"], f"{what} std")
    if min(merged["std"]) <= 0:
        raise UserError(f"{what} std must be positive, not {list(merged['std'])}")
    merged["crop_pct"] = _crop_pct(merged["crop_pct"], f"{what} crop_pct")
    merged["interpolation"] = _interpolation(merged["interpolation"], f"{what} interpolation")
    merged["aux_weight"] = _number(merged["aux_weight"], f"{what} aux_weight", low=0.0)
    if not isinstance(merged["paper"], str):
        raise UserError(f"{what} paper must be a string")
    return merged


def _preprocessing(pre: Any, cfg: dict, where: str) -> dict:
    """The preprocessing must be the model config's: two answers to one question would be a silent choice."""
    what = f"{where}: preprocessing"
    if not isinstance(pre, dict):
        raise UserError(f"{what} must be a mapping, not {type(pre).__name__}")
    out = dict(pre)
    size = out.get("input_size", cfg["input_size"])
    out["input_size"] = _integer(size, cfg["min_input_size"], MAX_INPUT_SIZE, f"{what} input_size")
    out["crop_pct"] = _crop_pct(out.get("crop_pct", cfg["crop_pct"]), f"{what} crop_pct")
    out["interpolation"] = _interpolation(out.get("interpolation", cfg["interpolation"]), f"{what} interpolation")
    out["mean"] = list(_triple(out.get("mean", cfg["mean"]), f"{what} mean"))
    out["std"] = list(_triple(out.get("std", cfg["std"]), f"{what} std"))
    resize = out.get("resize_size", round(out["input_size"] / out["crop_pct"]))
    out["resize_size"] = _integer(resize, out["input_size"], 2 * MAX_INPUT_SIZE, f"{what} resize_size")
    for key in ("input_size", "crop_pct", "interpolation", "mean", "std"):
        if out[key] != (list(cfg[key]) if key in ("mean", "std") else cfg[key]):
            raise UserError(f"{what} {key} {_show(out[key])} differs from model_cfg's {_show(cfg[key])}")
    return out


def _integer(value: Any, low: int, high: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise UserError(f"{what} must be an integer, not {_show(value)}")
    if not low <= value <= high:
        raise UserError(f"{what} must be in [{low}, {high}], not {value}")
    return value


def _number(value: Any, what: str, low: float = -math.inf) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < low:
        raise UserError(f"{what} must be a finite number{f' >= {low}' if low > -math.inf else ''}, not {_show(value)}")
    return float(value)


def _triple(value: Any, what: str) -> tuple[float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise UserError(f"{what} must be 3 numbers (one per RGB channel), not {_show(value)}")
    return tuple(_number(v, what) for v in value)


def _crop_pct(value: Any, what: str) -> float:
    value = _number(value, what)
    if not 0.05 <= value <= 1:
        raise UserError(f"{what} must be in [0.05, 1], not {value}")
    return value


def _interpolation(value: Any, what: str) -> str:
    if value not in INTERPOLATIONS:
        raise UserError(f"{what} must be one of {', '.join(INTERPOLATIONS)}, not {_show(value)}")
    return value


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
