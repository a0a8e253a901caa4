"""`pretrained=`: from a weight set's name or a file to a loaded model that preprocesses and names classes right.

What a model gets besides its weights follows the weights' source (`sets.py`): torchvision's
GoogLeNet / Inception-v3 files get `transform_input=True` with ImageNet mean/std, as torchvision's builders set
when they load them; timm's files get timm's `pretrained_cfg` (mean = std = 0.5 for the TensorFlow ports, bicubic,
its crop_pct). A file given by path is recognised first by its inceptorch metadata (a model file we wrote), then
by its SHA-256 (a public file), else by its layout; one log line says what was assumed, and an explicit
`transform_input=` given to `create_model` wins.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..errors import UserError
from ..models import create_model as build_model
from ..models import get_model_cfg
from ..models import list_models as registered_models
from .cache import checked_sha256, fetch, file_sha256
from .files import read_state_dict
from .fitting import match_layout
from .meta_checks import check_model_meta
from .model_file import META_KEY, folder_config, read_folder_config, resolve_model_file
from .sets import (
    IMAGENET,
    Preprocessing,
    WeightSet,
    class_names,
    find_by_full_name,
    find_by_hash,
    weight_set_named,
    weight_sets,
)

# A file known only by its keys gets the input convention of the public weights in its layout. torchvision's files
# (and models fine-tuned from them, which keep transform_input) expect [-1, 1] input through transform_input.
# timm's inception_v3 state dicts have an aux head only when they hold torchvision's weights; every timm file
# here but gluon's expects [-1, 1] input, through mean = std = 0.5. Our own layout elsewhere changes nothing.
CONVENTION_BY_LAYOUT = {
    ("googlenet_bn", "torchvision"): "googlenet_bn.tv_in1k",
    ("inception_v3", "torchvision"): "inception_v3.tv_in1k",
    ("inception_v3", "timm"): "inception_v3.tf_in1k",
    ("inception_v4", "timm"): "inception_v4.tf_in1k",
    ("inception_resnet_v2", "timm"): "inception_resnet_v2.tf_in1k",
}
HEAD_OPTIONS = ("num_classes", "aux_logits", "drop_rate", "aux_drop_rate", "transform_input")
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class Origin:
    """What is known about a weights file: the public set it is (if any) and what its input must look like."""

    path: Path
    weight_set: WeightSet | None = None
    recognised_by: str = ""      # "name", "sha256", "model file", "layout"; "" while unknown
    layout: str = ""
    label_offset: int = 0
    preprocessing: Preprocessing | None = None
    class_names: tuple[str, ...] = ()
    sha256: str = ""
    recorded: dict | None = None  # the provenance an inceptorch model file carries


def create_model(name: str, pretrained: bool | str | Path | None = None, **kwargs) -> nn.Module:
    """Build a registered model, with weights if `pretrained` says which (see `load_pretrained`).

    `pretrained`: True / "imagenet" (the model's default weight set), a tag ("tf_in1k"), or a weights file in our,
    torchvision's or timm's layout. `name` may carry the tag, timm's way: `create_model("inception_v3.tf_in1k",
    pretrained=True)`.
    """
    name, _, tag = name.partition(".")
    if tag and pretrained is True:
        pretrained = f"{name}.{tag}"
    if pretrained in (None, False):
        return build_model(name, **kwargs)
    get_model_cfg(name)  # an unknown name fails before any download
    origin = resolve(name, pretrained)  # before building: a wrong name or no network fails at once
    model = build_model(name, **kwargs)
    load_pretrained(model, origin)
    return model


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching `pattern`; with `pretrained`, the weight sets instead, `MODEL.TAG` (timm's way)."""
    if not pretrained:
        return registered_models(pattern)
    names = [w.name for w in weight_sets()]
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(n.split(".")[0], pattern))


def load_pretrained(model: nn.Module, pretrained, reset_classifier: bool = False,
                    log: Callable[[str], None] | None = None, classes: list[str] | None = None) -> list[str]:
    """Load weights into `model` (built by `create_model`); returns the keys left at initialisation.

    `pretrained`: True or "imagenet" (the model's default weight set), a tag such as "tf_in1k" or
    "inception_v3.tf_in1k" (fetched once into the cache), or a weights file of any supported layout. The model
    then carries the weights' preprocessing (`default_cfg`, `transform_input`), their class names (unless
    `reset_classifier`, for fine-tuning) and where they came from (`pretrained_cfg`, which saved files record).
    `reset_classifier` starts the classifiers afresh, unless the weights name exactly `classes`, in that order:
    then what they learnt is what the new data asks for, and they are kept.
    """
    log = log or _stderr
    name = getattr(model, "model_name", "")
    origin = pretrained if isinstance(pretrained, Origin) else resolve(name, pretrained, log)
    state = read_state_dict(origin.path)
    if not origin.recognised_by:
        origin = _recognise_file(origin.path)
    if reset_classifier and classes and list(origin.class_names) == list(classes):
        reset_classifier = False
    layout, fitted, missing = match_layout(model, state, reset_classifier, origin.label_offset)
    if not origin.recognised_by and _public_architecture(model):
        origin = _by_layout(name, origin, layout, state)
    model.load_state_dict(fitted, strict=False)
    said = _apply(model, origin, reset_classifier)
    if origin.recognised_by not in ("", "name"):
        log(f"weights: {origin.path} {said}")
    return missing


def resolve(model_name: str, pretrained, log: Callable[[str], None] | None = None) -> Origin:
    """The file `pretrained` means for `model_name`, fetched if it names a weight set; raises UserError."""
    if isinstance(pretrained, Origin):
        return pretrained
    if pretrained is True:
        pretrained = IMAGENET
    if not isinstance(pretrained, (str, Path)) or not str(pretrained):
        raise UserError(f"pretrained must be True, a weight set's tag or a weights file, not {pretrained!r}")
    text = str(pretrained)
    path = Path(text).expanduser()
    if path.is_dir():
        return Origin(resolve_model_file(path))  # a run or saved-model folder
    if path.is_file():
        return Origin(path)
    if any(sep in text for sep in "/\\") or path.suffix.lower() in WEIGHT_SUFFIXES:
        raise UserError(f"weights file not found: {path}")
    ws = weight_set_named(model_name, text)
    names = class_names(ws.classes)
    local = fetch(ws, log or _stderr)
    return Origin(local, ws, "name", ws.layout, 0, ws.preprocessing, names, checked_sha256(ws, local))


def _recognise_file(path: Path) -> Origin:
    meta = _model_file_meta(path)
    if meta is not None:
        kwargs, cfg = meta.get("model_kwargs", {}), meta.get("model_cfg", {})
        pre = Preprocessing(cfg["input_size"], cfg["crop_pct"], cfg["interpolation"], tuple(cfg["mean"]),
                            tuple(cfg["std"]), bool(kwargs.get("transform_input", False))) if cfg else None
        return Origin(path, None, "model file", "inceptorch", 0, pre, tuple(meta.get("class_names") or ()),
                      recorded=meta.get("pretrained"))
    sha = file_sha256(path)
    hit = find_by_hash(sha)
    if hit is None:
        return Origin(path, sha256=sha)
    ws, known = hit
    return Origin(path, ws, "sha256", ws.layout, known.label_offset, ws.preprocessing, class_names(ws.classes), sha)


def recorded_architecture(pretrained) -> tuple[Path, str, dict] | None:
    """(file, model name, builder options) that an inceptorch model file, run folder or saved folder records, the
    head options (HEAD_OPTIONS, which fine-tuning sets anew) left out; None for a weight set's name and for a file
    of any other kind. Fine-tuning from such a file builds this architecture, as it takes the file's preprocessing."""
    if not isinstance(pretrained, (str, Path)) or not str(pretrained):
        return None
    path = Path(pretrained).expanduser()
    if path.is_dir():
        path = resolve_model_file(path)
    if not path.is_file():
        return None
    try:
        meta = _model_file_meta(path)
    except Exception:  # noqa: BLE001 - not a safetensors file after all: loading its weights will say what it is
        return None
    if meta is None:
        return None
    meta = check_model_meta(meta, str(path))  # text anyone can edit: checked before a setting is taken from it
    kwargs = {k: v for k, v in meta["model_kwargs"].items() if k not in HEAD_OPTIONS}
    return path, meta["model"], kwargs


def _model_file_meta(path: Path) -> dict | None:
    """The metadata of a safetensors model file that inceptorch wrote; None for any other file."""
    if path.suffix != ".safetensors":
        return None
    from safetensors import safe_open

    config = folder_config(path)
    if config is not None:
        return read_folder_config(config)
    with safe_open(str(path), framework="pt") as f:
        raw = (f.metadata() or {}).get(META_KEY)
    return json.loads(raw) if raw else None


def _public_architecture(model: nn.Module) -> bool:
    """Whether `model` has the shape public weights have: no width, stem or input change from its builder's
    defaults (a file that fits a width-0.25 or small-input model cannot hold them, nor their input convention)."""
    params = inspect.signature(type(model).__init__).parameters
    return all(k in HEAD_OPTIONS or (k in params and params[k].default == v) for k, v in model.model_kwargs.items())


def _by_layout(model_name: str, origin: Origin, layout: str, state: dict) -> Origin:
    if layout == "inceptorch/torchvision" or (model_name == "inception_v3" and layout in ("torchvision", "timm")):
        # Our GoogLeNet-BN is torchvision's layout key for key; timm's Inception-v3 files share torchvision's keys,
        # and only torchvision's weights have the aux head.
        has_aux = any(k.startswith("AuxLogits.") for k in state)
        layout = {"googlenet_bn": "torchvision", "inception_v3": "torchvision" if has_aux else "timm"}.get(
            model_name, "inceptorch")
    convention = CONVENTION_BY_LAYOUT.get((model_name, layout))
    ws = find_by_full_name(convention) if convention else None
    if ws is None:
        return dataclasses.replace(origin, layout=layout)
    return dataclasses.replace(origin, recognised_by="layout", layout=layout, preprocessing=ws.preprocessing,
                               class_names=class_names(ws.classes))


def _apply(model: nn.Module, origin: Origin, reset_classifier: bool) -> str:
    """Give `model` the origin's preprocessing, class names and provenance; returns what was assumed, in words."""
    pre, said = origin.preprocessing, ""
    if pre is not None:
        model.default_cfg = dataclasses.replace(model.default_cfg, input_size=pre.input_size, crop_pct=pre.crop_pct,
                                                interpolation=pre.interpolation, mean=tuple(pre.mean),
                                                std=tuple(pre.std))
        said = _describe(origin, pre)
        if hasattr(model, "transform_input"):
            kwargs = model.model_kwargs
            if "transform_input" in kwargs:
                said += f"; transform_input={kwargs['transform_input']} as given"
            else:
                model.transform_input = pre.transform_input
                if pre.transform_input:  # recorded, so that saved files rebuild the model as it runs
                    kwargs["transform_input"] = True
                said += f"; transform_input={pre.transform_input} (pass transform_input={not pre.transform_input} " \
                        "to override)"
        pre = dataclasses.replace(pre, transform_input=bool(getattr(model, "transform_input", pre.transform_input)))
    if origin.class_names and not reset_classifier and len(origin.class_names) == getattr(model, "num_classes", -1):
        model.class_names = list(origin.class_names)
    model.pretrained_cfg = origin.recorded or provenance(origin, pre)
    return said


def _describe(origin: Origin, pre: Preprocessing) -> str:
    ws = origin.weight_set
    what = {"sha256": f"is {ws.name if ws else ''} ({ws.source if ws else ''}, SHA-256 {origin.sha256[:8]})",
            "model file": "is an inceptorch model file: its recorded preprocessing",
            "layout": f"is in {origin.layout}'s layout: the preprocessing of its public weights"}.get(
        origin.recognised_by, f"is {ws.name if ws else origin.layout}")
    return (f"{what}: mean {_fmt(pre.mean)}, std {_fmt(pre.std)}, {pre.interpolation}, crop_pct {pre.crop_pct:.4g}, "
            f"{pre.input_size} px")


def provenance(origin: Origin, pre: Preprocessing | None) -> dict:
    """Where the weights came from, as saved files record it (`pretrained` in their metadata)."""
    ws = origin.weight_set
    out = {"weights": ws.name if ws else None, "source": ws.source if ws else origin.layout or "file",
           "recognised_by": origin.recognised_by or "none", "file": str(origin.path), "sha256": origin.sha256}
    if ws is not None:
        out.update(url=ws.url or None, hub_id=ws.hub_id or None, license=ws.license,
                   top1=ws.results[0].top1, top5=ws.results[0].top5)
    if pre is not None:
        out["preprocessing"] = dataclasses.asdict(pre)
    return out


def _fmt(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
