"""ARP frames for the live daemon: the request the AVG answers, its reply, the takeover probe.

Ethernet II + ARP for IPv4 over Ethernet (RFC 826), 42 bytes before padding::

     0                   6                   12      14
    +-------------------+-------------------+-------+
    | destination MAC   | source MAC        | 0806  |   Ethernet II
    +-------------------+-------------------+-------+
    | htype=1 | ptype=0800 | hlen=6 | plen=4 | op    |   op 1 request, 2 reply
    | sender MAC (sha)  | sender IP (spa) |             (28 bytes of ARP)
    | target MAC (tha)  | target IP (tpa) |
    +-------------------------------------+

Two choices here differ from a VRRP daemon's, both because GLBP has several active MACs
behind one address (``docs/glbp.md`` "On real hosts"):

* The AVG's reply carries the chosen vMAC in the ARP *payload* (``sha``), but its Ethernet
  source is the AVG's own burned-in MAC. A reply sent *from* another router's vMAC would teach
  the switch that the vMAC lives on the AVG's port, and that forwarder's traffic would land on
  the wrong router.
* On taking a forwarder over, a router announces the vMAC with an ARP probe (RFC 5227: sender
  IP 0.0.0.0) sent from the vMAC: switches learn the vMAC's new port, and hosts change nothing.
  A gratuitous ARP for the virtual IP, as keepalived sends, would repoint every host on the LAN
  (Linux updates an existing entry from any gratuitous ARP) at this one forwarder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST = b"\xff" * 6
ZERO_MAC = b"\x00" * 6
FRAME_LEN = 42
MIN_FRAME = 60  # Ethernet minimum without FCS: short frames are padded with zeros

_ETH = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")


class ArpError(ValueError):
    """A frame that is not an Ethernet/IPv4 ARP packet (counted and dropped)."""


@dataclass(frozen=True, slots=True)
class ArpPacket:
    """One ARP packet with the Ethernet header it came in (MACs as 6 bytes)."""

    eth_dst: bytes
    eth_src: bytes
    op: int
    sha: bytes
    spa: IPv4Address
    tha: bytes
    tpa: IPv4Address

    def encode(self) -> bytes:
        frame = _ETH.pack(self.eth_dst, self.eth_src, ETH_P_ARP) + _ARP.pack(
            1, ETH_P_IP, 6, 4, self.op, self.sha, self.spa.packed, self.tha, self.tpa.packed
        )
        return frame.ljust(MIN_FRAME, b"\x00")


def decode(frame: bytes) -> ArpPacket:
    """An Ethernet frame as an ARP packet; :class:`ArpError` when it is not one."""
    if len(frame) < FRAME_LEN:
        raise ArpError(f"frame of {len(frame)} bytes is shorter than an ARP packet")
    dst, src, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_ARP:
        raise ArpError(f"ethertype {ethertype:#06x} is not ARP")
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(frame, _ETH.size)
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4):
        raise ArpError("not ARP for IPv4 over Ethernet")
    if op not in (ARP_REQUEST, ARP_REPLY):
        raise ArpError(f"ARP operation {op} is neither request nor reply")
    return ArpPacket(dst, src, op, sha, IPv4Address(spa), tha, IPv4Address(tpa))


def reply(request: ArpPacket, vmac: bytes, own_mac: bytes) -> ArpPacket:
    """The AVG's answer to ``request``: the virtual IP is at ``vmac``, sent from ``own_mac``."""
    return ArpPacket(
        eth_dst=request.sha,
        eth_src=own_mac,
        op=ARP_REPLY,
        sha=vmac,
        spa=request.tpa,
        tha=request.sha,
        tpa=request.spa,
    )


def probe(vmac: bytes, target: IPv4Address) -> ArpPacket:
    """An ARP probe from ``vmac`` (sender IP 0.0.0.0): switches learn where ``vmac`` is."""
    return ArpPacket(
        eth_dst=BROADCAST,
        eth_src=vmac,
        op=ARP_REQUEST,
        sha=vmac,
        spa=IPv4Address(0),
        tha=ZERO_MAC,
        tpa=target,
    )


def asks_for(packet: ArpPacket, address: IPv4Address) -> bool:
    """Whether ``packet`` is a host's request for ``address`` that the AVG should answer.

    Probes from GLBP virtual MACs (another router announcing a takeover) are not answered.
    """
    return (
        packet.op == ARP_REQUEST
        and packet.tpa == address
        and packet.sha[:3] != b"\x00\x07\xb4"
        and packet.sha not in (ZERO_MAC, BROADCAST)
    )


__all__ = [
    "ARP_REPLY",
    "ARP_REQUEST",
    "ETH_P_ARP",
    "ArpError",
    "ArpPacket",
    "asks_for",
    "decode",
    "probe",
    "reply",
]
