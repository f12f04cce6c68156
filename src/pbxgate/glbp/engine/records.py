"""Small records the engine keeps and hands out: roles, members, messages to send, counters."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp.engine.messages import Message

IPAddress = IPv4Address | IPv6Address


@dataclass(slots=True)
class Role:
    """A remote Active or Standby router: address, priority and when it expires."""

    ip: IPAddress
    priority: int
    deadline: float


@dataclass(slots=True)
class Member:
    """A group member heard from (``Group members:`` in ``show glbp``)."""

    mac: str
    ip: IPAddress
    deadline: float


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to send; ``destination`` None means the GLBP multicast group."""

    message: Message
    destination: IPAddress | None = None


@dataclass(frozen=True, slots=True)
class Datagram:
    """Bytes to send as a UDP 3222 payload; ``destination`` None means 224.0.0.102."""

    data: bytes
    destination: IPAddress | None = None


@dataclass
class Counters:
    received: int = 0
    sent: int = 0
    bad_auth: int = 0
    malformed: int = 0
    wrong_group: int = 0


def same(a: IPAddress, b: IPAddress) -> bool:
    """Address equality; the same object (the common case on a LAN) skips ``__eq__``."""
    return a is b or a == b


__all__ = ["Counters", "Datagram", "Member", "Outgoing", "Role", "same"]
