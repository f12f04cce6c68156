"""AGI and FastAGI: a sans-I/O session and its two drivers.

* :mod:`pbxgate.agi.protocol` - the session engine (bytes in, events out, command lines out);
* :mod:`pbxgate.agi.calls` - environment to :class:`~pbxgate.notify.events.CallEvent`;
* :mod:`pbxgate.agi.script` - ``pbxgate-agi``, the process-AGI driver (stdin/stdout);
* :mod:`pbxgate.agi.fastagi` and :mod:`pbxgate.agi.handlers` - the asyncio FastAGI server;
* :mod:`pbxgate.agi.runner` - ``pbxgate serve``: FastAGI and the delivery worker together.

Only the engine's names are re-exported here: importing the package must stay cheap for
``pbxgate-agi`` (no asyncio).
"""

from pbxgate.agi.errors import (
    AgiError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    RouteError,
)
from pbxgate.agi.protocol import (
    NEED_DATA,
    AgiSession,
    ConnectionClosed,
    Environment,
    Event,
    Hangup,
    Reply,
    State,
    decode_value,
)

__all__ = [
    "NEED_DATA",
    "AgiError",
    "AgiSession",
    "ConnectionClosed",
    "Environment",
    "Event",
    "Hangup",
    "LocalProtocolError",
    "ProtocolError",
    "RemoteProtocolError",
    "Reply",
    "RouteError",
    "State",
    "decode_value",
]
