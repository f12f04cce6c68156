"""IOS interface names: ``e0/0``, ``Eth 0/0`` and ``Ethernet0/0`` all name ``Ethernet0/0``.

IOS accepts any unambiguous prefix of the interface type, with or without a space before the
number, and stores the full name (``interface e0/0`` shows as ``interface Ethernet0/0``).
"""

from __future__ import annotations

import re
from contextvars import ContextVar

# Interface types of the IOS images used in GLBP labs (IOL/IOSv/Catalyst), full spelling.
TYPES = (
    "Ethernet",
    "FastEthernet",
    "GigabitEthernet",
    "TenGigabitEthernet",
    "Loopback",
    "Port-channel",
    "Serial",
    "Tunnel",
    "Vlan",
)
_SHORT = {
    "Ethernet": "Et",
    "FastEthernet": "Fa",
    "GigabitEthernet": "Gi",
    "TenGigabitEthernet": "Te",
    "Loopback": "Lo",
    "Port-channel": "Po",
    "Serial": "Se",
    "Tunnel": "Tu",
    "Vlan": "Vl",
}
# Interface names of the Linux host under ``pbxgate glbp run``: taken as they are (``eth0``,
# ``lan0``), where an IOS console would read ``eth0`` as ``Ethernet0``.
HOST_INTERFACES: ContextVar[frozenset[str]] = ContextVar("HOST_INTERFACES", default=frozenset())
_NUMBER = re.compile(r"\d+(/\d+)*(\.\d+)?")
_SPLIT = re.compile(r"([A-Za-z-]+)\s*(.*)")


def interface_type(prefix: str) -> str | None:
    """The full type for an unambiguous prefix (``e`` -> ``Ethernet``, exact match wins)."""
    lowered = prefix.lower()
    matches = [t for t in TYPES if t.lower().startswith(lowered)]
    exact = [t for t in matches if t.lower() == lowered]
    if exact:
        return exact[0]
    return matches[0] if len(matches) == 1 else None


def expand_interface(text: str) -> str | None:
    """``e0/0`` -> ``Ethernet0/0``; None when the type is unknown or the number is malformed.

    A name in :data:`HOST_INTERFACES` (the daemon's host links) is returned as it is.
    """
    if text.strip() in HOST_INTERFACES.get():
        return text.strip()
    match = _SPLIT.fullmatch(text.strip())
    if match is None:
        return None
    kind, number = match.groups()
    full = interface_type(kind)
    if full is None or not _NUMBER.fullmatch(number):
        return None
    return full + number


def short_interface(name: str) -> str:
    """``Ethernet0/0`` -> ``Et0/0``, as ``show glbp brief`` prints it."""
    match = _SPLIT.fullmatch(name)
    if match is None or match.group(1) not in _SHORT:
        return name
    return _SHORT[match.group(1)] + match.group(2)


__all__ = ["HOST_INTERFACES", "TYPES", "expand_interface", "interface_type", "short_interface"]
