"""Reading weight files safely and fitting them onto our models, whatever library wrote them.

Nothing here runs pickled code: safetensors files are plain tensors, and `.pth` files go through
`torch.load(weights_only=True)`, which refuses anything but tensors and plain containers.

Weight sets by name (`pretrained=True`, "imagenet", a tag), with the preprocessing and class names their sources
give, are the layer above: `inceptorch.pretrained`.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import Tensor, nn

from ..errors import UserError, first_line
from ..fileio import DIGEST_KEY, state_digest
from ._convert import CONVERTERS

StateDict = dict[str, Tensor]
_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")  # how training scripts nest weights


def read_state_dict(path: str | Path) -> StateDict:
    """The tensors in a `.safetensors`, `.pth`, `.pt` or `.bin` file, unwrapped from a training checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open
            from safetensors.torch import load_file

            state = load_file(str(path))
            with safe_open(str(path), framework="pt") as f:
                recorded = (f.metadata() or {}).get(DIGEST_KEY)
            if recorded is not None and recorded != state_digest(state):
                raise UserError(f"refusing {path}: its weights differ from the checksum recorded when it was saved "
                                "(the file was modified or damaged)")
            return state
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserError(f"refusing {path}: it needs unsafe (pickled code) loading ({first_line(exc)})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, SafetensorError) as exc:
        raise UserError(f"cannot read weights file {path}: truncated or corrupt ({first_line(exc)})") from None
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise UserError(f"{path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DDP-wrapped saves


def aux_prefixes(model: nn.Module) -> tuple[str, ...]:
    return tuple(f"{head}." for head in getattr(model, "aux_taps", {}).values())


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the main classifier and of each auxiliary head's last linear layer."""
    targets = {id(model.get_classifier())} if hasattr(model, "get_classifier") else set()
    for prefix in aux_prefixes(model):
        head = getattr(model, prefix[:-1], None)  # None where the model was built without that head
        linears = [m for m in head.modules() if isinstance(m, nn.Linear)] if head is not None else []
        if linears:
            targets.add(id(linears[-1]))
    return {f"{name}.{p}" for name, m in model.named_modules() if id(m) in targets for p, _ in m.named_parameters()}


def fit_state_dict(model: nn.Module, state: StateDict, reset_classifier: bool = False,
                   label_offset: int = 0) -> tuple[StateDict, list]:
    """Our-layout state dict for `model` from `state`, trying each registered converter; raises UserError.

    Auxiliary heads are independent of the file: a file's aux weights are dropped when the model has no heads,
    and heads the file lacks keep their initialisation (returned as the missing keys).
    With `reset_classifier` the classifiers' weights are dropped (fine-tuning: the classes are others, even where
    their number is the same).
    `label_offset` rows are dropped from the front of classifiers that have that many more (TensorFlow's
    1001-class heads, whose row 0 is "background").
    """
    _, fitted, missing = match_layout(model, state, reset_classifier, label_offset)
    return fitted, missing


def match_layout(model: nn.Module, state: StateDict, reset_classifier: bool = False,
                 label_offset: int = 0) -> tuple[str, StateDict, list]:
    """`fit_state_dict`, also saying which layout fitted: "inceptorch/torchvision" (ours) or a converter's name."""
    target = model.state_dict()
    aux = aux_prefixes(model)
    heads = classifier_keys(model)
    droppable = heads if reset_classifier else set()
    candidates = [("inceptorch/torchvision", state)]
    for source, convert in CONVERTERS.get(getattr(model, "model_name", ""), {}).items():
        try:
            candidates.append((source, convert(dict(state))))
        except (KeyError, ValueError):
            continue
    best_error = None
    for source, cand in candidates:
        cand = {k: v for k, v in cand.items() if k in target or not k.startswith(aux)}
        if label_offset:
            cand = {k: v[label_offset:] if k in heads and v.shape[0] == target[k].shape[0] + label_offset else v
                    for k, v in cand.items()}
        missing = [k for k in target if k not in cand and not k.startswith(aux)]
        unexpected = [k for k in cand if k not in target]
        wrong = [k for k in cand if k in target and cand[k].shape != target[k].shape]
        if missing or unexpected:
            best_error = best_error or _mismatch(missing, unexpected)
            continue
        if any(k not in droppable for k in wrong):
            head = [k for k in wrong if k in heads]
            if head and len(head) == len(wrong):
                n_file, n_model = cand[head[0]].shape[0], target[head[0]].shape[0]
                raise UserError(f"the weights' classifier has {n_file} classes but the model has {n_model}; "
                                f"build it with num_classes={n_file} or fine-tune (reset the classifier)")
            k = next(k for k in wrong if k not in droppable)
            raise UserError(f"shape mismatch for {k}: file {tuple(cand[k].shape)}, model {tuple(target[k].shape)}")
        cand = {k: v for k, v in cand.items() if k not in wrong and k not in droppable}
        return source, cand, [k for k in target if k not in cand]
    raise UserError(f"the weights do not fit {getattr(model, 'model_name', type(model).__name__)}: {best_error}")


def _mismatch(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
    return "; ".join(parts)


def load_pretrained(model: nn.Module, path: str | Path, reset_classifier: bool = False) -> list[str]:
    """Load a weights file of any supported layout into `model`; returns the keys left at initialisation.
    (`inceptorch.pretrained.load_pretrained` also takes weight-set names and sets the preprocessing.)"""
    state, missing = fit_state_dict(model, read_state_dict(path), reset_classifier)
    model.load_state_dict(state, strict=False)
    return missing
