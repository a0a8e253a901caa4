"""Model files that describe themselves: safetensors weights plus the metadata needed to rebuild the model.

A model file (`*.safetensors`) carries, in its safetensors metadata under the key "inceptorch", a JSON object:
  {"model": NAME, "model_kwargs": {...}, "class_names": [...], "model_cfg": {...}, "pretrained": {...} or null}
so `load_model_file(path)` rebuilds the exact architecture with no other file, with the preprocessing it was
trained or published with (`model_cfg`) and where its weights started from (`pretrained`: the public weight set,
its file, hash and preprocessing; carried on through fine-tuning and re-saving). A run folder holds
`last.safetensors` / `best.safetensors`; an exported folder holds `config.json` + `model.safetensors`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

from torch import nn

from ..errors import UserError, first_line
from ..fileio import DIGEST_KEY, atomic_write, state_digest
from ..models import create_model
from .files import file_kind, read_state_dict
from .fitting import aux_prefixes, fit_state_dict
from .meta_checks import check_model_meta

META_KEY = "inceptorch"


def model_metadata(model: nn.Module, model_kwargs: dict, class_names: list[str] | None = None) -> dict:
    cfg = getattr(model, "default_cfg", None)
    kwargs = dict(model_kwargs)
    if getattr(model, "transform_input", False):  # set by pretrained weights: the rebuilt model must do it too
        kwargs["transform_input"] = True
    return {"model": model.model_name, "model_kwargs": kwargs, "class_names": list(class_names or []),
            "model_cfg": dataclasses.asdict(cfg) if cfg is not None else {},
            "pretrained": getattr(model, "pretrained_cfg", None)}


def save_model_file(model: nn.Module, path: str | Path, meta: dict) -> None:
    """Atomically save `model`'s weights with `meta` (see `model_metadata`) as one safetensors file."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {META_KEY: json.dumps(meta), DIGEST_KEY: state_digest(state)}
    data = save(state, metadata=metadata)  # bytes, written by Python: a full disk is an OSError naming itself
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


ACCEPTED = "--checkpoint takes a run folder, a model .safetensors file or a saved-model folder (config.json + " \
           "model.safetensors)"
_WEIGHTS_KINDS = ("a PyTorch checkpoint", "a pickle")  # kinds whose weights `--pretrained` reads
_AS_WEIGHTS = "its weights load with --model NAME --pretrained FILE (train, export)"


def read_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get(META_KEY)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for headers it cannot parse
        kind = file_kind(path)
        if kind is not None:  # another format: say which, not what the safetensors parser made of it
            raise UserError(f"{path} is {kind}, not an inceptorch model file: {ACCEPTED}"
                            + (f"; {_AS_WEIGHTS}" if kind.startswith(_WEIGHTS_KINDS) else "")) from None
        raise UserError(f"cannot read model file {path}: {first_line(exc)}") from None
    if raw is None:
        raise UserError(f"{path} is a bare weights file, not an inceptorch model file: {ACCEPTED}; {_AS_WEIGHTS}")
    try:
        return json.loads(raw)
    except ValueError:
        raise UserError(f"{path}: its inceptorch metadata is not valid JSON (a damaged file?)") from None


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
        # As written: `check_model_meta` judges the types, so a list where a mapping belongs is named, not crashed on.
        return {"model": data["architecture"], "model_kwargs": data.get("model_kwargs", {}),
                "class_names": data.get("class_names", []), "model_cfg": data.get("model_cfg", {}),
                "preprocessing": data.get("preprocessing", {}), "pretrained": data.get("pretrained"),
                "num_classes": data.get("num_classes"), "calibration": data.get("calibration")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read {config}: {type(exc).__name__}: {first_line(exc)}") from None


def load_model_file(path: str | Path, **overrides) -> tuple[nn.Module, dict]:
    """Rebuild the model a file (or run / export folder) describes and load its weights; returns (model, meta).

    An exported folder is described by its config.json; a run folder or a single file by the safetensors metadata.
    The model gets the recorded preprocessing (`default_cfg`) and provenance (`pretrained_cfg`) back, so that saving
    it again, or fine-tuning it, carries them on.
    """
    config = folder_config(path)
    path = resolve_model_file(path) if config is None else config.parent / "model.safetensors"
    meta = read_metadata(path) if config is None else read_folder_config(config)
    meta = check_model_meta(meta, str(config or path), overrides)  # before building: the text may say anything
    model = create_model(meta["model"], **{**meta["model_kwargs"], **overrides})
    state = read_state_dict(path)
    target = model.state_dict()
    wrong = next((k for k, v in state.items() if k in target and v.shape != target[k].shape), None)
    if wrong is not None:
        raise UserError(f"{path} does not match the model it names ({meta['model']}): {wrong} is "
                        f"{tuple(state[wrong].shape)} in the file, {tuple(target[wrong].shape)} in the model")
    if set(state) != set(model.state_dict()):
        # Written in a layout this model's key tables know: an inception_v2/v3 file from before their modules had
        # one submodule per branch has torchvision's flat keys.
        with contextlib.suppress(UserError):
            state = fit_state_dict(model, state)[0]
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith(aux_prefixes(model))]:
        raise UserError(f"{path} does not match the model it names ({meta['model']}): "
                        f"{len(missing)} missing, {len(unexpected)} unexpected keys")
    # The model describes itself as the file does: a run trained at 64 px says 64, not the registry's default,
    # and keeps its class names, so what is saved or exported from it again says the same.
    restore_recorded(model, meta)
    model.class_names = list(meta["class_names"])
    return model, meta


def restore_recorded(model: nn.Module, meta: dict) -> None:
    """Put what a model file records besides the weights back on a model rebuilt from it: the preprocessing of its
    weights (`model_cfg`: mean/std, crop, interpolation), `transform_input`, their provenance (`pretrained`) and a
    fitted temperature (`calibration`)."""
    cfg, recorded = getattr(model, "default_cfg", None), meta.get("model_cfg")
    if recorded and cfg is not None:
        known = {f.name for f in dataclasses.fields(cfg)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if k in known}
        model.default_cfg = dataclasses.replace(cfg, **values)
    if hasattr(model, "transform_input") and meta.get("model_kwargs", {}).get("transform_input"):
        model.transform_input = True
        model.model_kwargs = {**getattr(model, "model_kwargs", {}), "transform_input": True}
    model.pretrained_cfg = meta.get("pretrained")
    model.calibration = meta.get("calibration")  # a fitted temperature (`evaluation/calibration.py`), or None
