"""A portable saved-model folder: `config.json` (architecture, classes, preprocessing) + `model.safetensors`.

The folder needs nothing but inceptorch to load: no network, no pickled code (safetensors holds plain tensors).
`config.json` is readable by people and other tools; the weights file also carries the same description in its
safetensors metadata, so `model.safetensors` alone still loads through `load_model_file`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from torch import nn

from ..errors import UserError
from ..fileio import atomic_write
from ..weights.model_file import CONFIG_NAME, load_model_file, save_model_file
from .preprocess import preprocessing

FORMAT = "inceptorch-model"
FORMAT_VERSION = 1


def model_config(model: nn.Module, class_names: list[str] | None = None, model_kwargs: dict | None = None,
                 input_size: int | None = None) -> dict:
    """The config.json contents for `model` (built by `create_model`, which records its name and kwargs)."""
    from .. import __version__  # late: the package imports this module while it initialises
    if not hasattr(model, "model_name"):
        raise UserError("save_pretrained needs a model built by inceptorch.create_model (it records the name)")
    kwargs = dict(getattr(model, "model_kwargs", {}) if model_kwargs is None else model_kwargs)
    if getattr(model, "transform_input", False):  # set by pretrained weights: the rebuilt model must do it too
        kwargs["transform_input"] = True
    class_names = list(class_names if class_names is not None else getattr(model, "class_names", None) or [])
    num_classes = getattr(model, "num_classes", None)
    if class_names and num_classes is not None and len(class_names) != num_classes:
        raise UserError(f"{len(class_names)} class names for a model with {num_classes} classes")
    cfg = getattr(model, "default_cfg", None)
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "inceptorch_version": __version__,
            "architecture": model.model_name, "model_kwargs": kwargs, "num_classes": num_classes,
            "class_names": class_names, "preprocessing": preprocessing(model, input_size),
            "model_cfg": dataclasses.asdict(cfg) if cfg is not None else {},
            "pretrained": getattr(model, "pretrained_cfg", None), "calibration": getattr(model, "calibration", None)}


def save_pretrained(model: nn.Module, folder: str | Path, class_names: list[str] | None = None,
                    model_kwargs: dict | None = None, input_size: int | None = None) -> Path:
    """Write `folder/config.json` and `folder/model.safetensors` (each atomically); returns the folder.

    `class_names` default to `model.class_names` (set by `from_pretrained`), `model_kwargs` to the kwargs
    `create_model` was called with; `input_size` overrides the model's default in the preprocessing.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} exists and is not a folder")
    config = model_config(model, class_names, model_kwargs, input_size)
    meta = {"model": config["architecture"], "model_kwargs": config["model_kwargs"],
            "class_names": config["class_names"], "model_cfg": config["model_cfg"],
            "preprocessing": config["preprocessing"], "pretrained": config["pretrained"],
            "calibration": config["calibration"]}
    save_model_file(model, folder / "model.safetensors", meta)
    text = json.dumps(config, indent=2) + "\n"
    atomic_write(folder / CONFIG_NAME, lambda tmp: Path(tmp).write_text(text))
    return folder


def from_pretrained(folder: str | Path, **overrides) -> nn.Module:
    """The model a saved folder (or a run folder / model file) describes, in eval mode, weights loaded.

    The result has `class_names` and `preprocessing` attributes; `overrides` are passed to the builder.
    """
    model, meta = load_model_file(folder, **overrides)
    model.class_names = list(meta.get("class_names", []))
    model.preprocessing = meta.get("preprocessing") or preprocessing(model)
    return model.eval()
