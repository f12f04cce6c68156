"""Errors of the live GLBP daemon.

    PbxgateError
    └── DaemonError               the daemon cannot start, or its control socket cannot be used
        ├── HostError             a netlink call, socket or sysctl on the host failed
        └── ControlError          no daemon answers on the control socket

Bad packets from the LAN are never raised: the engine counts and drops them.
"""

from __future__ import annotations

from pbxgate.errors import PbxgateError


class DaemonError(PbxgateError):
    exit_code = 6


class HostError(DaemonError):
    """The host refused a change or a read (the message names it and the kernel's reason)."""


class ControlError(DaemonError):
    """The control socket is missing, refused, or the daemon closed it."""


__all__ = ["ControlError", "DaemonError", "HostError"]
