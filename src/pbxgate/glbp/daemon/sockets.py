"""The daemon's sockets on one LAN interface: GLBP over UDP 3222 and ARP over a packet socket.

GLBP (``shared/reference/glbp.md`` §1): UDP with source and destination port 3222, hellos to
224.0.0.102 with TTL 255, requests and assignments unicast. The socket is bound to the port on
the interface (``SO_BINDTODEVICE``), so two interfaces each get their own; multicast loop is off
(the engine also drops its own owner ID).

ARP: an ``AF_PACKET`` socket for ethertype 0x0806 on the interface. The AVG reads host
requests for the virtual IP from it and writes its replies and takeover probes to it.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

from pbxgate.glbp.daemon.arp import ETH_P_ARP
from pbxgate.glbp.daemon.errors import HostError

GLBP_PORT = 3222
GLBP_GROUP = IPv4Address("224.0.0.102")
TTL = 255  # reference §1 [inferred]: Wireshark flags link-local multicast with TTL other than 1
_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
_RCVBUF = 1 << 20


def _mreqn(group: IPv4Address, local: IPv4Address, index: int) -> bytes:
    return struct.pack("4s4si", group.packed, local.packed, index)


def glbp_socket(ifname: str, index: int, local: IPv4Address) -> socket.socket:
    """A non-blocking UDP socket for GLBP on ``ifname`` (joined to 224.0.0.102)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        sock.bind(("0.0.0.0", GLBP_PORT))  # noqa: S104  (bound to the device above)
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


__all__ = ["GLBP_GROUP", "GLBP_PORT", "TTL", "arp_socket", "glbp_socket", "is_outgoing"]
