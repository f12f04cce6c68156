"""Classic pcap files of GLBP and ARP frames, so a run can be opened in Wireshark.

No third-party dependency: the classic libpcap format is a 24-byte global header and, per
frame, a 16-byte record header (seconds, microseconds, captured length, original length)
(https://wiki.wireshark.org/Development/LibpcapFileFormat). Frames are Ethernet II
(link type 1).

Frame builders:

* :func:`glbp_frame`: Ethernet / IPv4 (or IPv6) / UDP 3222 -> 3222 around a GLBP payload;
  to 224.0.0.102 (MAC 01:00:5e:00:00:66) by default, TTL 255 (``reference/glbp.md`` §1).
* :func:`arp_request` / :func:`arp_reply`: RFC 826 ARP for IPv4 over Ethernet.

Checksums (IPv4 header, UDP) are filled in, unlike a capture on a sender with offload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import BinaryIO

from pbxgate.glbp.wire.constants import IPV4_GROUP, IPV4_TTL, UDP_PORT

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps, written big-endian here
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_ARP = 0x0806
ETHERTYPE_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
IP_PROTO_UDP = 17

_GLOBAL = struct.Struct("!IHHiIII")
_RECORD = struct.Struct("!IIII")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")

Address = IPv4Address | IPv6Address


@dataclass(frozen=True)
class Record:
    """One captured frame and its timestamp (seconds, any epoch; simulated time is fine)."""

    timestamp: float
    frame: bytes


class PcapWriter:
    """Write frames to a binary stream in classic pcap format."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        stream.write(_GLOBAL.pack(PCAP_MAGIC, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET))

    def write(self, timestamp: float, frame: bytes) -> None:
        if timestamp < 0:
            raise ValueError("pcap timestamps cannot be negative")
        seconds, micros = divmod(round(timestamp * 1_000_000), 1_000_000)
        self._stream.write(_RECORD.pack(seconds, micros, len(frame), len(frame)) + frame)


def write_pcap(path: Path, records: Iterable[Record]) -> int:
    """Write ``records`` to ``path``; returns the number of frames written."""
    count = 0
    with path.open("wb") as stream:
        writer = PcapWriter(stream)
        for record in records:
            writer.write(record.timestamp, record.frame)
            count += 1
    return count


def read_pcap(data: bytes) -> Iterator[Record]:
    """Read back a classic pcap written by :class:`PcapWriter` (either byte order)."""
    if len(data) < _GLOBAL.size:
        raise ValueError("not a pcap file: shorter than its header")
    order = {b"\xa1\xb2\xc3\xd4": "!", b"\xd4\xc3\xb2\xa1": "<"}.get(data[:4])
    if order is None:
        raise ValueError("not a classic pcap file (bad magic)")
    record = struct.Struct(order + "IIII")
    offset = _GLOBAL.size
    while offset + record.size <= len(data):
        seconds, micros, length, _ = record.unpack_from(data, offset)
        offset += record.size
        yield Record(seconds + micros / 1_000_000, data[offset : offset + length])
        offset += length


def ethernet(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + ethertype.to_bytes(2, "big") + payload


def multicast_mac(address: Address) -> bytes:
    """RFC 1112 (01:00:5e + low 23 bits) and RFC 2464 (33:33 + low 32 bits) group MACs."""
    if isinstance(address, IPv4Address):
        low = int(address) & 0x7FFFFF
        return b"\x01\x00\x5e" + low.to_bytes(3, "big")
    return b"\x33\x33" + address.packed[-4:]


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_datagram(src: Address, dst: Address, sport: int, dport: int, payload: bytes) -> bytes:
    length = _UDP.size + len(payload)
    if isinstance(src, IPv4Address):
        pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, IP_PROTO_UDP, length)
    else:
        pseudo = src.packed + dst.packed + struct.pack("!I3xB", length, IP_PROTO_UDP)
    header = _UDP.pack(sport, dport, length, 0)
    value = checksum(pseudo + header + payload) or 0xFFFF  # RFC 768: 0 is sent as all ones
    return _UDP.pack(sport, dport, length, value) + payload


def ipv4_packet(src: IPv4Address, dst: IPv4Address, payload: bytes, ttl: int = IPV4_TTL) -> bytes:
    total = _IPV4.size + len(payload)
    header = _IPV4.pack(0x45, 0, total, 0, 0, ttl, IP_PROTO_UDP, 0, src.packed, dst.packed)
    value = checksum(header)
    return header[:10] + value.to_bytes(2, "big") + header[12:] + payload


def ipv6_packet(src: IPv6Address, dst: IPv6Address, payload: bytes, hops: int = 255) -> bytes:
    header = struct.pack("!IHBB", 6 << 28, len(payload), IP_PROTO_UDP, hops)
    return header + src.packed + dst.packed + payload


def glbp_frame(
    src_mac: bytes,
    src_ip: Address,
    payload: bytes,
    *,
    dst_ip: Address = IPV4_GROUP,
    dst_mac: bytes | None = None,
) -> bytes:
    """An Ethernet frame carrying one GLBP packet (UDP 3222 -> 3222)."""
    if dst_mac is None:
        if not dst_ip.is_multicast:
            raise ValueError("a unicast GLBP frame needs the destination MAC")
        dst_mac = multicast_mac(dst_ip)
    udp = udp_datagram(src_ip, dst_ip, UDP_PORT, UDP_PORT, payload)
    if isinstance(src_ip, IPv4Address) and isinstance(dst_ip, IPv4Address):
        return ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, ipv4_packet(src_ip, dst_ip, udp))
    if isinstance(src_ip, IPv6Address) and isinstance(dst_ip, IPv6Address):
        return ethernet(dst_mac, src_mac, ETHERTYPE_IPV6, ipv6_packet(src_ip, dst_ip, udp))
    raise ValueError("source and destination must be the same IP version")


def _arp(
    op: int, sender_mac: bytes, sender_ip: IPv4Address, target_mac: bytes, target_ip: IPv4Address
) -> bytes:
    # hardware Ethernet (1), protocol IPv4, address sizes 6 and 4, opcode (RFC 826)
    return _ARP.pack(
        1, ETHERTYPE_IPV4, 6, 4, op, sender_mac, sender_ip.packed, target_mac, target_ip.packed
    )


def arp_request(sender_mac: bytes, sender_ip: IPv4Address, target_ip: IPv4Address) -> bytes:
    """Broadcast "who has ``target_ip``? tell ``sender_ip``" (RFC 826, opcode 1)."""
    body = _arp(1, sender_mac, sender_ip, bytes(6), target_ip)
    return ethernet(BROADCAST, sender_mac, ETHERTYPE_ARP, body)


def arp_reply(
    sender_mac: bytes, sender_ip: IPv4Address, target_mac: bytes, target_ip: IPv4Address
) -> bytes:
    """Unicast "``sender_ip`` is at ``sender_mac``" (opcode 2); GLBP's AVG answers with a vMAC.

    The Ethernet source is the vMAC handed out, as a Cisco AVG sends it [inferred].
    """
    body = _arp(2, sender_mac, sender_ip, target_mac, target_ip)
    return ethernet(target_mac, sender_mac, ETHERTYPE_ARP, body)


__all__ = [
    "PcapWriter",
    "Record",
    "arp_reply",
    "arp_request",
    "checksum",
    "glbp_frame",
    "multicast_mac",
    "read_pcap",
    "write_pcap",
]
