"""Lazy package attributes: a package names what it exports and where it lives, and the module
behind a name is imported on first use (so ``import cnnlab`` and ``cnnlab --help`` stay fast).

>>> getattr_, dir_ = lazy_exports("cnnlab.data", {"Split": "cnnlab.data.split"}, {})
>>> getattr_("Split").__name__
'Split'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, table: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps a public name to the module
    defining it; a name looked up once is kept in the package's ``namespace``."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(table[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
