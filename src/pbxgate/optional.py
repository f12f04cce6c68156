"""Parts of pbxgate that need an optional package, and the one line that says which.

A notifications-only install (``pip install pbxgate``) has no matplotlib, openpyxl, psycopg,
the web console's packages or pyroute2; ``pip install 'pbxgate[report]'``, ``'pbxgate[web]'``,
``'pbxgate[glbp]'``, ... or ``'pbxgate[all]'`` add them (README, "Install"). A command that
imports one that is missing, wherever it does, ends in the line :func:`missing` makes.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from pbxgate.errors import ConfigError

EXTRAS = {
    "matplotlib": "report",
    "openpyxl": "report",
    "psycopg": "postgresql",
    "MySQLdb": "mysqlclient",
    "uvloop": "fast",
    "pyroute2": "glbp",
    "starlette": "web",
    "uvicorn": "web",
    "argon2": "web",
    "itsdangerous": "web",
    "multipart": "web",
    "python_multipart": "web",
}


def need(module: str, purpose: str) -> ModuleType:
    """``module`` imported, or a one-line error naming the extra that brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".", maxsplit=1)[0]
        raise _not_installed(purpose, top, EXTRAS.get(top, "all")) from None


def missing(exc: ModuleNotFoundError) -> ConfigError | None:
    """The one-line error for an optional package found missing (None for any other module:
    that is a broken install or a bug, not an extra to add)."""
    top = (exc.name or "").split(".", maxsplit=1)[0]
    extra = EXTRAS.get(top)
    if extra is None or importlib.util.find_spec(top) is not None:  # there, a part missing:
        return None  # another version than pbxgate's (a broken install), not an extra to add
    return _not_installed("this command", top, extra)


def _not_installed(what: str, top: str, extra: str) -> ConfigError:
    return ConfigError(
        f"{what} needs {top}, which is not installed", hint=f"pip install 'pbxgate[{extra}]'"
    )


__all__ = ["EXTRAS", "missing", "need"]
