"""Parts of pbxgate that need an optional package, and the one line that says which.

A notifications-only install (``pip install pbxgate``) has no matplotlib, openpyxl or psycopg;
``pip install 'pbxgate[report]'``, ``'pbxgate[postgresql]'``, ``'pbxgate[fast]'`` or
``'pbxgate[all]'`` add them (README, "Install").
"""

from __future__ import annotations

import importlib
from types import ModuleType

from pbxgate.errors import ConfigError

EXTRAS = {
    "matplotlib": "report",
    "openpyxl": "report",
    "psycopg": "postgresql",
    "MySQLdb": "mysqlclient",
    "uvloop": "fast",
}


def need(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or a one-line error naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".", maxsplit=1)[0]
        extra = EXTRAS.get(top, "all")
        raise ConfigError(
            f"{purpose} needs {top}, which is not installed",
            hint=f"pip install 'pbxgate[{extra}]'",
        ) from None


__all__ = ["EXTRAS", "need"]
