"""The daemon's sockets on one LAN interface: GLBP over UDP 3222 and ARP over a packet socket.

GLBP (``shared/reference/glbp.md`` §1): UDP with source and destination port 3222, hellos to
224.0.0.102 with TTL 255, requests and assignments unicast. The socket is bound to the port on
the interface (``SO_BINDTODEVICE``), so two interfaces each get their own; multicast loop is off
(the engine also drops its own owner ID).

ARP: an ``AF_PACKET`` socket for ethertype 0x0806 on the interface. The AVG reads host
requests for the virtual IP from it and writes its replies and takeover probes to it.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp.daemon.arp import ETH_P_ARP
from pbxgate.glbp.daemon.errors import HostError
from pbxgate.glbp.daemon.nd import ETH_P_IPV6, ICMPV6, NS

GLBP_PORT = 3222
GLBP_GROUP = IPv4Address("224.0.0.102")
GLBP_GROUP6 = IPv6Address("ff02::66")  # reference §1 [unverified]
TTL = 255  # reference §1 [inferred]: Wireshark flags link-local multicast with TTL other than 1
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_RCVBUF = 1 << 20


def _mreqn(group: IPv4Address, local: IPv4Address, index: int) -> bytes:
    return struct.pack("4s4si", group.packed, local.packed, index)


def _device_socket(family: int, ifname: str) -> socket.socket:
    """A UDP socket of ``family`` bound to ``ifname`` (so each interface has its own on port
    3222), with room for a burst of hellos."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
    except OSError as exc:
        sock.close()
        raise HostError(f"cannot open a GLBP socket on {ifname}: {exc}") from exc
    return sock


def glbp_socket(ifname: str, index: int, local: IPv4Address) -> socket.socket:
    """A non-blocking UDP socket for GLBP on ``ifname`` (joined to 224.0.0.102)."""
    sock = _device_socket(socket.AF_INET, ifname)
    try:
        sock.bind(("0.0.0.0", GLBP_PORT))  # noqa: S104  (bound to the device)
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, _mreqn(GLBP_GROUP, local, index)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn(GLBP_GROUP, local, index))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HostError(f"cannot open GLBP socket on {ifname} (UDP {GLBP_PORT}): {exc}") from exc
    return sock


def join_group(sock: socket.socket, group: IPv6Address, index: int) -> None:
    """Join ``group`` on the interface (again is harmless). For the solicited-node group of a
    virtual IP the join sends the MLD report snooping switches need before they pass a host's
    solicitation to this router, and opens the NIC's multicast filter for it."""
    mreq = group.packed + struct.pack("@I", index)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:  # already joined
            raise HostError(f"cannot join {group} on interface {index}: {exc}") from exc


def glbp6_socket(ifname: str, index: int, groups: Iterable[IPv6Address] = ()) -> socket.socket:
    """A non-blocking UDP socket for IPv6 GLBP on ``ifname``, joined to ff02::66 and to
    ``groups`` (see :func:`join_group`)."""
    sock = _device_socket(socket.AF_INET6, ifname)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::", GLBP_PORT, 0, 0))
        for group in (GLBP_GROUP6, *groups):
            join_group(sock, group, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HostError(
            f"cannot open IPv6 GLBP socket on {ifname} (UDP {GLBP_PORT}): {exc}"
        ) from exc
    return sock


# Classic BPF: IPv6, next header ICMPv6, type Neighbor Solicitation (no extension headers).
_NS_FILTER = (
    (0x28, 0, 0, 12),  # ldh [12]          ethertype
    (0x15, 0, 5, ETH_P_IPV6),
    (0x30, 0, 0, 20),  # ldb [20]          IPv6 next header
    (0x15, 0, 3, ICMPV6),
    (0x30, 0, 0, 54),  # ldb [54]          ICMPv6 type
    (0x15, 0, 1, NS),
    (0x06, 0, 0, 0xFFFF),  # accept
    (0x06, 0, 0, 0),  # drop
)
_SO_ATTACH_FILTER = 26


def _attach_filter(sock: socket.socket, program: tuple[tuple[int, int, int, int], ...]) -> None:
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buffer = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def nd_socket(ifname: str, index: int) -> socket.socket:
    """A non-blocking packet socket that reads Neighbor Solicitations on ``ifname`` (a kernel
    filter drops every other IPv6 frame before Python sees it) and writes advertisements."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IPV6))
    except OSError as exc:
        raise HostError(f"cannot open an ND packet socket on {ifname}: {exc}") from exc
    try:
        _attach_filter(sock, _NS_FILTER)
        sock.bind((ifname, ETH_P_IPV6))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HostError(f"cannot bind the ND packet socket to {ifname}: {exc}") from exc
    return sock


def arp_socket(ifname: str, index: int) -> socket.socket:
    """A non-blocking packet socket that reads and writes ARP frames on ``ifname``."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    except OSError as exc:
        raise HostError(f"cannot open an ARP packet socket on {ifname}: {exc}") from exc
    try:
        sock.bind((ifname, ETH_P_ARP))
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise HostError(f"cannot bind the ARP packet socket to {ifname}: {exc}") from exc
    return sock


def is_outgoing(address: tuple[object, ...]) -> bool:
    """Whether a packet socket's sender address marks a frame this host sent."""
    return len(address) > 2 and address[2] == socket.PACKET_OUTGOING


__all__ = [
    "GLBP_GROUP",
    "GLBP_GROUP6",
    "GLBP_PORT",
    "TTL",
    "arp_socket",
    "glbp6_socket",
    "glbp_socket",
    "is_outgoing",
    "join_group",
    "nd_socket",
]
