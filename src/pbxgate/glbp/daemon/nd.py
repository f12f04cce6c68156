"""IPv6 Neighbor Discovery frames for the live daemon (RFC 4861): the AVG's ``arp.py`` for IPv6.

A host asks for its gateway's link-layer address with a Neighbor Solicitation; the AVG answers
with a Neighbor Advertisement whose Target Link-Layer Address option is the vMAC its load
balancing chooses::

    Ethernet II (type 86dd) | IPv6 (next header 58, hop limit 255) | ICMPv6
    NS: type 135, code 0, checksum, reserved(4), target(16), [option 1: source LL address]
    NA: type 136, code 0, checksum, R|S|O + reserved(4), target(16), option 2: target LL address

As with ARP (``arp.py``), the answer's Ethernet source is the AVG's own MAC, and a router that
takes a forwarder over announces the vMAC with a DAD-style solicitation (source ``::``) that
switches learn from and hosts do not: an unsolicited advertisement with the Override flag, as
a VRRP daemon sends, would repoint every host at this one forwarder.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

ETH_P_IPV6 = 0x86DD
ICMPV6 = 58
NS, NA = 135, 136
HOP_LIMIT = 255  # RFC 4861 7.1.1: anything else is not from the link and is dropped
OPT_SOURCE_LL, OPT_TARGET_LL = 1, 2
FLAG_ROUTER, FLAG_SOLICITED, FLAG_OVERRIDE = 0x80000000, 0x40000000, 0x20000000
UNSPECIFIED = IPv6Address("::")

_ETH = struct.Struct("!6s6sH")
_IP6 = struct.Struct("!IHBB16s16s")  # version/class/flow, payload length, next, hops, src, dst
_ICMP = struct.Struct("!BBHI16s")  # type, code, checksum, flags/reserved, target


class NdError(ValueError):
    """A frame that is not a Neighbor Solicitation or Advertisement (counted and dropped)."""


@dataclass(frozen=True, slots=True)
class NdPacket:
    """A solicitation or advertisement with its Ethernet and IPv6 addresses."""

    eth_dst: bytes
    eth_src: bytes
    src: IPv6Address
    dst: IPv6Address
    kind: int  # NS or NA
    target: IPv6Address
    flags: int = 0
    lladdr: bytes | None = None  # the source (NS) or target (NA) link-layer address option

    def encode(self) -> bytes:
        option = b""
        if self.lladdr is not None:
            option = bytes((OPT_SOURCE_LL if self.kind == NS else OPT_TARGET_LL, 1)) + self.lladdr
        body = _ICMP.pack(self.kind, 0, 0, self.flags, self.target.packed) + option
        body = body[:2] + checksum(self.src, self.dst, body).to_bytes(2, "big") + body[4:]
        header = _IP6.pack(6 << 28, len(body), ICMPV6, HOP_LIMIT, self.src.packed, self.dst.packed)
        return _ETH.pack(self.eth_dst, self.eth_src, ETH_P_IPV6) + header + body


def checksum(src: IPv6Address, dst: IPv6Address, body: bytes) -> int:
    """The ICMPv6 checksum over the pseudo-header and ``body`` (its checksum field zero)."""
    data = src.packed + dst.packed + struct.pack("!I3xB", len(body), ICMPV6) + body
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def decode(frame: bytes) -> NdPacket:
    """An Ethernet frame as NS/NA; :class:`NdError` when it is neither or is malformed."""
    if len(frame) < _ETH.size + _IP6.size + _ICMP.size:
        raise NdError(f"frame of {len(frame)} bytes is shorter than a solicitation")
    dst_mac, src_mac, ethertype = _ETH.unpack_from(frame)
    if ethertype != ETH_P_IPV6:
        raise NdError(f"ethertype {ethertype:#06x} is not IPv6")
    first, length, nxt, hops, src, dst = _IP6.unpack_from(frame, _ETH.size)
    if first >> 28 != 6 or nxt != ICMPV6:
        raise NdError("not ICMPv6 (extension headers are not read)")
    if hops != HOP_LIMIT:
        raise NdError(f"hop limit {hops}: not from this link")
    body = frame[_ETH.size + _IP6.size : _ETH.size + _IP6.size + length]
    if len(body) != length or len(body) < _ICMP.size:
        raise NdError("ICMPv6 message is truncated")
    kind, code, _, flags, target = _ICMP.unpack_from(body)
    if kind not in (NS, NA) or code != 0:
        raise NdError(f"ICMPv6 type {kind} code {code} is not NS or NA")
    if checksum(
        IPv6Address(src), IPv6Address(dst), body[:2] + b"\x00\x00" + body[4:]
    ) != int.from_bytes(body[2:4], "big"):
        raise NdError("ICMPv6 checksum is wrong")
    return NdPacket(
        dst_mac,
        src_mac,
        IPv6Address(src),
        IPv6Address(dst),
        kind,
        IPv6Address(target),
        flags,
        _lladdr(body[_ICMP.size :]),
    )


def _lladdr(options: bytes) -> bytes | None:
    while len(options) >= 8:
        kind, units = options[0], options[1]
        if units == 0:
            raise NdError("ND option of length 0")
        if kind in (OPT_SOURCE_LL, OPT_TARGET_LL):
            return options[2:8]
        options = options[units * 8 :]
    return None


def advertisement(request: NdPacket, vmac: bytes, own_mac: bytes) -> NdPacket:
    """The AVG's answer to a host's ``request`` (see :func:`asks_for`): ``request.target`` is
    at ``vmac``, sent from ``own_mac``."""
    return NdPacket(
        eth_dst=request.eth_src,
        eth_src=own_mac,
        src=request.target,
        dst=request.src,
        kind=NA,
        target=request.target,
        flags=FLAG_ROUTER | FLAG_SOLICITED | FLAG_OVERRIDE,
        lladdr=vmac,
    )


def solicited_node(address: IPv6Address) -> IPv6Address:
    """ff02::1:ffXX:XXXX, the multicast group a solicitation for ``address`` goes to."""
    return IPv6Address(int(IPv6Address("ff02::1:ff00:0")) | (int(address) & 0xFFFFFF))


def multicast_mac(address: IPv6Address) -> bytes:
    return b"\x33\x33" + address.packed[-4:]


def probe(vmac: bytes, target: IPv6Address) -> NdPacket:
    """A DAD-style solicitation from ``vmac`` (source ``::``): switches learn the vMAC's port."""
    group = solicited_node(target)
    return NdPacket(multicast_mac(group), vmac, UNSPECIFIED, group, NS, target)


def asks_for(packet: NdPacket, address: IPv6Address) -> bool:
    """Whether ``packet`` is a host's solicitation for ``address`` that the AVG answers
    (not a DAD probe, not another router announcing a vMAC)."""
    return (
        packet.kind == NS
        and packet.target == address
        and packet.src != UNSPECIFIED
        and packet.eth_src[:3] != b"\x00\x07\xb4"
    )


__all__ = [
    "ETH_P_IPV6",
    "NA",
    "NS",
    "NdError",
    "NdPacket",
    "advertisement",
    "asks_for",
    "checksum",
    "decode",
    "probe",
    "solicited_node",
]
