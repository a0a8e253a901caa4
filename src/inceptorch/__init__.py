"""inceptorch: the GoogLeNet / Inception family as fast, trustworthy PyTorch software.

The public names below load on first use: `import inceptorch` and the command line's argument parsing do not import
torch.
"""
from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    ".errors": ("UserError",),
    ".export.folder": ("from_pretrained", "save_pretrained"),
    ".fast": ("compile_for_inference", "optimize"),
    ".losses": ("aux_loss",),
    ".models": ("ModelCfg", "ModelOutput", "get_model_cfg"),
    ".weights.pretrained": ("create_model", "list_models", "load_pretrained"),
}
lazy_exports(__name__, _EXPORTS)
__all__ = [name for names in _EXPORTS.values() for name in names]
