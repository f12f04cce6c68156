"""``pbxgate glbp run``: the GLBP engine on real Linux interfaces (see ``runtime.py``)."""

from pbxgate.glbp.daemon.control import DEFAULT_SOCKET, Client
from pbxgate.glbp.daemon.errors import ControlError, DaemonError, HostError
from pbxgate.glbp.daemon.main import DEFAULT_LEDGER, run_daemon

__all__ = [
    "DEFAULT_LEDGER",
    "DEFAULT_SOCKET",
    "Client",
    "ControlError",
    "DaemonError",
    "HostError",
    "run_daemon",
]
