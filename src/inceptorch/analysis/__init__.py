"""Analysis that reproduces the papers' tables: per-layer parameters and multiply-adds."""
from .._lazy import lazy_exports

_EXPORTS = {".summary": ("Row", "Summary", "summarize")}
lazy_exports(__name__, _EXPORTS)
__all__ = [name for names in _EXPORTS.values() for name in names]
