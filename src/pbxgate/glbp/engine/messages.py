"""What one GLBP packet says, as the engine sees it (independent of the byte layout).

The wire codec (``pbxgate.glbp.wire``) maps these to and from bytes; the engine reasons only
about these values. A packet carries an optional Hello part (the sender's gateway) and zero or
more forwarder parts (Request/Response TLVs, REF §2): a hello lists the forwarders the sender
is Active for (and the one it owns), a request has forwarder 0 and a zero vMAC, and an
assignment from the AVG is a forwarder part without a Hello, sent unicast to the requester.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp.engine.states import VfState, VgState

IPAddress = IPv4Address | IPv6Address

ZERO_MAC = "0000.0000.0000"

# VF priority is not configurable: 167 for the owner, 135 for a secondary that took over
# (REF §2 [confirmed: JTD debug, Wireshark, networklessons]).
VF_PRIORITY_OWNER = 167
VF_PRIORITY_SECONDARY = 135


@dataclass(frozen=True, slots=True)
class HelloPart:
    state: VgState
    priority: int
    hello_ms: int
    hold_ms: int
    redirect: int
    timeout: int
    virtual_ip: IPAddress | None


@dataclass(frozen=True, slots=True)
class ForwarderPart:
    forwarder: int  # 0 in a request
    state: VfState | None  # None in a request (sent as 0)
    priority: int
    weight: int
    vmac: str

    @property
    def is_request(self) -> bool:
        return self.forwarder == 0


@dataclass(frozen=True, slots=True)
class Message:
    group: int
    owner_id: str  # the sender's burned-in MAC
    hello: HelloPart | None
    forwarders: tuple[ForwarderPart, ...] = ()


__all__ = [
    "VF_PRIORITY_OWNER",
    "VF_PRIORITY_SECONDARY",
    "ZERO_MAC",
    "ForwarderPart",
    "HelloPart",
    "IPAddress",
    "Message",
]
