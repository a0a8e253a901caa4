"""Converters from other libraries' state-dict layouts to ours, registered per model name."""
from __future__ import annotations

from collections.abc import Callable, Sequence

StateDict = dict
Converter = Callable[[StateDict], StateDict]

CONVERTERS: dict[str, dict[str, Converter]] = {}


def register_converter(model_name: str, source: str) -> Callable[[Converter], Converter]:
    """Register `fn(state_dict) -> state_dict` mapping `source`'s layout (e.g. "timm") onto `model_name`'s keys."""

    def wrap(fn: Converter) -> Converter:
        sources = CONVERTERS.setdefault(model_name, {})
        if source in sources:
            raise ValueError(f"converter {source!r} for {model_name!r} is already registered")
        sources[source] = fn
        return fn

    return wrap


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
