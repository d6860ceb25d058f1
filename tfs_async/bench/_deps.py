"""Lazy imports of the benchmark's optional dependencies (the ``bench`` extra).

The SDK itself never needs them, so they are imported only when a benchmark
runs, and a missing one fails with the command that installs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = "pip install tfs-async[bench]"


class MissingDependencyError(ImportError):
    """An optional benchmark dependency is not installed."""


def require(module: str, package: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``package``.

    >>> require("json", "json").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"the benchmark needs {package!r} (module {module!r}), which is not installed: "
            f"run `{INSTALL_HINT}`"
        ) from exc


def optional(module: str) -> ModuleType | None:
    """Import ``module`` if it is installed, else ``None`` (for optional baselines).

    >>> optional("a_module_that_does_not_exist_anywhere") is None
    True
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
