"""Fitting a state dict of any layout onto one of our models: which layout it is in, what is left over.

A file's keys are tried as ours (which are torchvision's for GoogLeNet-BN), then through each of the model's key
tables (`key_tables.py`). Auxiliary heads are independent of the file, and fine-tuning drops the classifiers.
Weight sets by name (`pretrained=True`, "imagenet", a tag), with the preprocessing and class names their sources
give, are the layer above: `pretrained.py`.
"""
from __future__ import annotations

from torch import nn

from ..errors import UserError
from .files import StateDict
from .key_tables import CONVERTERS


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
    """Our-layout state dict for `model` from `state`, trying each of the model's key tables; raises UserError.

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
    """`fit_state_dict`, also saying which layout fitted: "inceptorch/torchvision" (ours) or a key table's
    source ("timm", ...)."""
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

