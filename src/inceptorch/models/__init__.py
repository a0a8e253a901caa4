"""The model zoo: every family module in this package is imported once, which registers its models."""
import importlib
import pkgutil

from ._registry import ModelCfg, create_model, get_model_cfg, list_models, register_model
from .layers import ModelOutput

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "layers":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["ModelCfg", "ModelOutput", "create_model", "get_model_cfg", "list_models", "register_model"]
