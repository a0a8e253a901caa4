"""Converters between other libraries' state-dict layouts and ours, registered per model name, both ways.

A model that reads a reference layout (timm's key names, say) can also write it: `CONVERTERS` map theirs onto
ours for loading, `WRITERS` ours onto theirs, so weights trained here load back into the reference implementation
(`to_reference_state_dict`, and `inceptorch export --format weights --layout timm`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

StateDict = dict
Converter = Callable[[StateDict], StateDict]

CONVERTERS: dict[str, dict[str, Converter]] = {}
WRITERS: dict[str, dict[str, Converter]] = {}
OURS = "inceptorch"  # our own layout, which every model writes


def register_converter(model_name: str, source: str) -> Callable[[Converter], Converter]:
    """Register `fn(state_dict) -> state_dict` mapping `source`'s layout (e.g. "timm") onto `model_name`'s keys."""
    return _register(CONVERTERS, model_name, source)


def register_writer(model_name: str, source: str) -> Callable[[Converter], Converter]:
    """Register the inverse: `fn(our state_dict) -> state_dict` in `source`'s layout."""
    return _register(WRITERS, model_name, source)


def _register(table: dict, model_name: str, source: str) -> Callable[[Converter], Converter]:
    def wrap(fn: Converter) -> Converter:
        sources = table.setdefault(model_name, {})
        if source in sources:
            raise ValueError(f"converter {source!r} for {model_name!r} is already registered")
        sources[source] = fn
        return fn

    return wrap


def layouts(model_name: str) -> list[str]:
    """The layouts `model_name`'s weights can be written in: ours, then each registered reference."""
    return [OURS, *sorted(WRITERS.get(model_name, {}))]


def to_reference_state_dict(model, layout: str) -> StateDict:
    """`model`'s weights (a model built by `create_model`) in `layout`'s key names, e.g. "timm"."""
    from ..errors import UserError

    name = getattr(model, "model_name", type(model).__name__)
    state = {k: v for k, v in model.state_dict().items()}
    if layout == OURS:
        return state
    writer = WRITERS.get(name, {}).get(layout)
    if writer is None:
        raise UserError(f"{name} has no {layout} layout to write (layouts: {', '.join(layouts(name))})")
    return writer(state)
def rename_keys(state: dict, table: Sequence[tuple[str, str]]) -> dict:
    """Keys renamed by their longest matching prefix in `table` of (theirs, ours); an unmatched key is a KeyError."""
    table = sorted(table, key=lambda pair: -len(pair[0]))
    out = {}
    for key, value in state.items():
        theirs, ours = next(((a, b) for a, b in table if key.startswith(a)), (None, None))
        if theirs is None:
            raise KeyError(f"no mapping for {key!r}")
        out[ours + key[len(theirs):]] = value
    return out
