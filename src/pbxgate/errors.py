"""The error tree shared by every pbxgate package.

    PbxgateError                  anything pbxgate reports to a user as one line
    ├── ConfigError               the settings file or environment is wrong
    ├── SourceError               a CDR source cannot be reached or read
    │   └── QueryTimeout          a query ran past its time limit
    ├── InputError                user-supplied data (CSV rows, options) is malformed
    └── DeliveryError             a notification channel refused or could not be reached

Each area may subclass these in its own ``errors.py``. Third-party exceptions are
translated once, at the edge where they are raised (``raise SourceError(...) from exc``),
and the CLI turns a ``PbxgateError`` into ``error: <message>`` and exit status ``exit_code``.
Messages never contain secrets: they name the host, port and user, never the password.
"""

from __future__ import annotations


class PbxgateError(Exception):
    """Base class: ``str(err)`` is a complete one-line message for the user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class ConfigError(PbxgateError):
    exit_code = 2


class SourceError(PbxgateError):
    exit_code = 3


class QueryTimeout(SourceError):
    exit_code = 4


class InputError(PbxgateError):
    exit_code = 2


class DeliveryError(PbxgateError):
    exit_code = 5


__all__ = [
    "ConfigError",
    "DeliveryError",
    "InputError",
    "PbxgateError",
    "QueryTimeout",
    "SourceError",
]
