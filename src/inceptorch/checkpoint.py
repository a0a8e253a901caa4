"""Model files that describe themselves: safetensors weights plus the metadata needed to rebuild the model.

A model file (`*.safetensors`) carries, in its safetensors metadata under the key "inceptorch", a JSON object:
  {"model": NAME, "model_kwargs": {...}, "class_names": [...], "model_cfg": {...}}
so `load_model_file(path)` rebuilds the exact architecture with no other file. A run folder holds
`last.safetensors` / `best.safetensors`; an exported folder holds `config.json` + `model.safetensors`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from torch import nn

from .errors import UserError, first_line
from .fileio import DIGEST_KEY, atomic_write, state_digest
from .models import create_model
from .models.weights import aux_prefixes, fit_state_dict, read_state_dict

META_KEY = "inceptorch"


def model_metadata(model: nn.Module, model_kwargs: dict, class_names: list[str] | None = None) -> dict:
    cfg = getattr(model, "default_cfg", None)
    return {"model": model.model_name, "model_kwargs": model_kwargs, "class_names": list(class_names or []),
            "model_cfg": dataclasses.asdict(cfg) if cfg is not None else {}}


def save_model_file(model: nn.Module, path: str | Path, meta: dict) -> None:
    """Atomically save `model`'s weights with `meta` (see `model_metadata`) as one safetensors file."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {META_KEY: json.dumps(meta), DIGEST_KEY: state_digest(state)}
    atomic_write(path, lambda tmp: save_file(state, tmp, metadata=metadata))


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for headers it cannot parse
        raise UserError(f"cannot read model file {path}: {first_line(exc)}") from None
    if raw is None:
        raise UserError(f"{path} is a bare weights file: build the model with --model and pass it as --pretrained")
    return json.loads(raw)


def resolve_model_file(path: str | Path) -> Path:
    """The weights file behind a file, a run folder (best, else last) or an exported model folder."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.safetensors", "last.safetensors", "model.safetensors"):
            if (path / name).is_file():
                return path / name
        raise UserError(f"{path} holds no best.safetensors, last.safetensors or model.safetensors")
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    return path


CONFIG_NAME = "config.json"  # an exported folder's description, written by `inceptorch.save_pretrained`


def folder_config(path: str | Path) -> Path | None:
    """The config.json of an exported folder, given the folder or its model.safetensors; None for anything else."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent if path.name == "model.safetensors" else None
    if folder is None or not (folder / CONFIG_NAME).is_file() or not (folder / "model.safetensors").is_file():
        return None
    return folder / CONFIG_NAME


def read_folder_config(config: str | Path) -> dict:
    """An exported folder's config.json as model-file metadata ({"model", "model_kwargs", "class_names", ...})."""
    try:
        data = json.loads(Path(config).read_text())
        return {"model": data["architecture"], "model_kwargs": dict(data.get("model_kwargs", {})),
                "class_names": list(data.get("class_names", [])), "model_cfg": data.get("model_cfg", {}),
                "preprocessing": data.get("preprocessing", {})}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {config}: {type(exc).__name__}: {first_line(exc)}") from None


def load_model_file(path: str | Path, **overrides) -> tuple[nn.Module, dict]:
    """Rebuild the model a file (or run / export folder) describes and load its weights; returns (model, meta).

    An exported folder is described by its config.json; a run folder or a single file by the safetensors metadata.
    """
    config = folder_config(path)
    path = resolve_model_file(path) if config is None else config.parent / "model.safetensors"
    meta = read_metadata(path) if config is None else read_folder_config(config)
    model = create_model(meta["model"], **{**meta["model_kwargs"], **overrides})
    state = read_state_dict(path)
    if set(state) != set(model.state_dict()):
        # Written in a layout this model's converters know: an inception_v2/v3 file from before their modules had
        # one submodule per branch has torchvision's flat keys.
        with contextlib.suppress(UserError):
            state = fit_state_dict(model, state)[0]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith(aux_prefixes(model))]:
        raise UserError(f"{path} does not match the model it names ({meta['model']}): "
                        f"{len(missing)} missing, {len(unexpected)} unexpected keys")
    return model, meta
