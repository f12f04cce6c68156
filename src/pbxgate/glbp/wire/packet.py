"""A whole GLBP packet: the 12-byte header and its TLVs; :func:`encode` and :func:`decode`.

Header (``reference/glbp.md`` §2; WS, LOKI, JTR, ANSA agree)::

     0               1               2               3
    +---------------+---------------+-------------------------------+
    | version = 1   |       ?       |        group (0-1023)         |
    +---------------+---------------+-------------------------------+
    |               ?               |                               |
    +-------------------------------+                               +
    |                owner ID (sender's burned-in MAC)              |
    +---------------------------------------------------------------+
    |  TLVs: type(1) length(1, includes these 2 bytes) value ...    |
    +---------------------------------------------------------------+

Receipt rules: a TLV length below 2 or past the end of the packet is malformed; bytes after the
known part of a TLV are skipped; unknown TLV types are kept as :class:`UnknownTlv` and skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from pbxgate.glbp.wire._fields import check_mac
from pbxgate.glbp.wire.auth_tlv import Auth
from pbxgate.glbp.wire.constants import GROUP_MAX, HEADER_LEN, TLV_HEADER_LEN, VERSION, TlvType
from pbxgate.glbp.wire.errors import DecodeError
from pbxgate.glbp.wire.hello import Hello
from pbxgate.glbp.wire.reqresp import ReqResp
from pbxgate.glbp.wire.unknown import UnknownTlv

Tlv = Hello | ReqResp | Auth | UnknownTlv

# version(1) unknown(1) group(2) unknown(2) owner ID(6)
_HEADER = struct.Struct("!Bx H 2x 6s")

_DECODERS: dict[int, Callable[[bytes], Tlv]] = {
    TlvType.HELLO: Hello.decode_value,
    TlvType.REQ_RESP: ReqResp.decode_value,
    TlvType.AUTH: Auth.decode_value,
}


@dataclass(frozen=True)
class Packet:
    """A GLBP packet; ``tlvs`` keep their wire order (Auth, type 4, Hello, Req/Resp...)."""

    group: int
    owner_id: bytes
    tlvs: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.group <= GROUP_MAX:
            raise ValueError(f"group {self.group} is outside 0-{GROUP_MAX}")
        check_mac("owner_id", self.owner_id)

    @property
    def hello(self) -> Hello | None:
        return next((t for t in self.tlvs if isinstance(t, Hello)), None)

    @property
    def forwarders(self) -> tuple[ReqResp, ...]:
        return tuple(t for t in self.tlvs if isinstance(t, ReqResp))

    @property
    def auth(self) -> Auth | None:
        return next((t for t in self.tlvs if isinstance(t, Auth)), None)


def tlv_type(tlv: Tlv) -> int:
    return tlv.tlv_type if isinstance(tlv, UnknownTlv) else int(tlv.TYPE)


def encode_tlv(tlv: Tlv) -> bytes:
    value = tlv.encode_value()
    length = TLV_HEADER_LEN + len(value)
    if length > 255:
        raise ValueError(f"TLV of {length} bytes does not fit its length byte")
    return bytes([tlv_type(tlv), length]) + value


@lru_cache(maxsize=4096)
def encode(packet: Packet) -> bytes:
    """The UDP payload for ``packet``; unknown bytes are zero.

    Packets are immutable and a router repeats the same hello every few seconds, so both
    directions keep a small cache (see docs/glbp-wire.md, "Benchmark").
    """
    header = _HEADER.pack(VERSION, packet.group, packet.owner_id)
    return header + b"".join(encode_tlv(t) for t in packet.tlvs)


def decode(data: bytes) -> Packet:
    """Parse a UDP payload; any malformation raises exactly one :class:`DecodeError`."""
    return _decode(bytes(data))


@lru_cache(maxsize=4096)
def _decode(data: bytes) -> Packet:
    if len(data) < HEADER_LEN:
        raise DecodeError(f"{len(data)} bytes is shorter than the {HEADER_LEN}-byte header")
    version, group, owner = _HEADER.unpack_from(data)
    if version != VERSION:
        raise DecodeError(f"version {version}, expected {VERSION}")
    if group > GROUP_MAX:
        raise DecodeError(f"group {group} is above {GROUP_MAX}")
    return Packet(group, owner, tuple(_decode_tlvs(bytes(data[HEADER_LEN:]))))


def _decode_tlvs(data: bytes) -> list[Tlv]:
    tlvs: list[Tlv] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < TLV_HEADER_LEN:
            raise DecodeError(f"TLV header cut short at offset {HEADER_LEN + offset}")
        kind, length = data[offset], data[offset + 1]
        if length < TLV_HEADER_LEN:
            raise DecodeError(f"TLV length {length} too small at offset {HEADER_LEN + offset}")
        if offset + length > len(data):
            raise DecodeError(f"TLV type {kind} of {length} bytes runs past the packet end")
        value = data[offset + TLV_HEADER_LEN : offset + length]
        decoder = _DECODERS.get(kind)
        tlvs.append(UnknownTlv(kind, value) if decoder is None else decoder(value))
        offset += length
    return tlvs


__all__ = ["Packet", "Tlv", "decode", "encode", "encode_tlv"]
