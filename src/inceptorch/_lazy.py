"""Packages whose public names are imported on first use (PEP 562 / PEP 549 style module attributes).

`import inceptorch` and the command line's argument parsing should not pay for importing torch (seconds on a small
machine): a package lists its public names by the submodule that defines them, and a submodule is imported when one
of its names is first read.
"""
from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterable


def lazy_exports(package: str, exports: dict[str, Iterable[str]]) -> None:
    """Make `package`'s names `exports[".submodule"]` load from that submodule when first read."""
    exports = {module: tuple(names) for module, names in exports.items()}
    where = {name: module for module, names in exports.items() for name in names}

    class LazyPackage(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            if name not in where:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            module = importlib.import_module(where[name], package)
            for other in exports[where[name]]:  # every name of that submodule, bound once
                super().__setattr__(other, getattr(module, other))
            return getattr(module, name)

        def __setattr__(self, name: str, value: object) -> None:
            # Importing a submodule binds it on its package. Where a public name is also a submodule's name
            # (`evaluation.predict`, the function, in `evaluation/predict.py`), the public name wins, as it did
            # when the package imported its submodules eagerly.
            if name in where and isinstance(value, types.ModuleType) and value.__name__ == f"{package}.{name}":
                return
            super().__setattr__(name, value)

        def __dir__(self) -> list[str]:
            return sorted({*super().__dir__(), *where})

    sys.modules[package].__class__ = LazyPackage
