"""One registry for every model: names, builders and their default configs (torchvision's `_api` shape)."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, replace

from torch import nn

from .normalization import IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ModelCfg:
    """What a user of a model needs besides its weights: input geometry, normalisation and provenance."""

    input_size: int = 224
    min_input_size: int = 224
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    crop_pct: float = 0.875  # resize to input_size / crop_pct, then center-crop input_size
    aux_weight: float = 0.0  # weight of each auxiliary loss in training; 0 for models without heads
    # Train in channels_last (NHWC) on the CPU too: its max-pool and batch-norm kernels make a training step up to
    # 1.5x faster (2 threads) for every model but maxout, whose 8x8 convs run slower in NHWC (BENCHMARKS.md, CPU
    # training layout).
    cpu_channels_last: bool = True
    paper: str = ""


_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_CFGS: dict[str, ModelCfg] = {}


def register_model(cfg: ModelCfg) -> Callable:
    """Register a builder under its function name; a second builder with the same name is an error."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if fn.__name__ in _BUILDERS:
            raise ValueError(f"model {fn.__name__!r} is already registered")
        _BUILDERS[fn.__name__], _CFGS[fn.__name__] = fn, cfg
        return fn

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching `pattern`. (`inceptorch.list_models`, in `weights/pretrained.py`, also lists the
    public weight sets.)"""
    return sorted(name for name in _BUILDERS if fnmatch.fnmatch(name, pattern))


def get_model_cfg(name: str) -> ModelCfg:
    _check_name(name)
    return _CFGS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model with freshly initialised weights. `inceptorch.create_model`
    (`weights/pretrained.py`) is this plus `pretrained=`: weight sets by name, weights files, and their
    preprocessing."""
    _check_name(name)
    model = _BUILDERS[name](**kwargs)
    # A builder option can change the input geometry (GoogLeNet's small_input stem): the model says how.
    model.default_cfg = replace(_CFGS[name], **getattr(model, "cfg_overrides", {}))
    model.model_name = name
    model.model_kwargs = dict(kwargs)  # what save_pretrained / model files need to rebuild this architecture
    return model


def _check_name(name: str) -> None:
    if name not in _BUILDERS:
        from ..errors import UserError
        from ..text import close_matches

        # A typo (googlenet_nb) or a part of a name (v3): whatever is close, else every name.
        close = close_matches(name, _BUILDERS)
        close += sorted(set(fnmatch.filter(_BUILDERS, f"*{name}*") if name else []) - set(close))
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(list_models())}"
        raise UserError(f"unknown model {name!r}{hint}")
