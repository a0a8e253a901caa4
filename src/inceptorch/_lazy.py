"""Packages whose public names are imported on first use (PEP 562 module `__getattr__`).

`import inceptorch` and the command line's argument parsing should not pay for importing torch (seconds on a small
machine): a package lists its public names by the submodule that defines them, and a submodule is imported when one
of its names is first read.
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable


def lazy_exports(package: str, exports: dict[str, Iterable[str]]) -> tuple[Callable[[str], object], Callable[[], list]]:
    """`(__getattr__, __dir__)` for `package`, whose names `exports[".submodule"]` live in that submodule."""
    where = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__
