"""Errors of the AGI side.

    PbxgateError
    └── AgiError                  anything that went wrong on an AGI conversation
        ├── ProtocolError         the conversation broke the AGI rules
        │   ├── LocalProtocolError    we tried something illegal (a command before the
        │   │                         environment, a newline in an argument, a line too long)
        │   └── RemoteProtocolError   the peer did (malformed line, caps exceeded, EOF mid-line)
        └── RouteError            a FastAGI request names a script no handler serves

The split follows h11: a ``RemoteProtocolError`` is the peer's fault (drop it, log one line);
a ``LocalProtocolError`` is a bug in the caller of the session object.
"""

from __future__ import annotations

from pbxgate.errors import PbxgateError


class AgiError(PbxgateError):
    exit_code = 6


class ProtocolError(AgiError):
    pass


class LocalProtocolError(ProtocolError):
    pass


class RemoteProtocolError(ProtocolError):
    pass


class RouteError(AgiError):
    pass


__all__ = [
    "AgiError",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "RouteError",
]
