"""GLBP wire codec: header, Hello, Request/Response and Auth TLVs (``reference/glbp.md`` §2).

GLBP has no published specification; this layout is the one Wireshark, Loki, ANSA and John the
Ripper agree on. It rides in UDP 3222 -> 3222, to 224.0.0.102 (hellos) or unicast (request and
assignment). All integers are big-endian::

    +--------------------------- 12-byte header ---------------------------+
    | version=1 | ? | group (u16) | ? (2) | owner ID (6, sender's BIA)     |
    +----------------------------------------------------------------------+
    | [Auth TLV, type 3]      auth type | auth len | text / MD5 / key+MD5  |
    | [type 4 TLV]            unknown ("nonce"), kept verbatim             |
    | [Hello TLV, type 1]     28 B (IPv4) / 40 B (IPv6): VG state,         |
    |                         priority, hello/hold ms, redirect/timeout s, |
    |                         virtual IP                                   |
    | [Req/Resp TLV, type 2]  20 B each: forwarder #, VF state, VF         |
    |                         priority, weight, virtual MAC                |
    +----------------------------------------------------------------------+

``encode(packet) -> bytes`` writes unknown bytes as zero; ``decode(data) -> Packet`` ignores them,
skips unknown TLVs by length (keeping them for the MD5 digest) and raises exactly one
:class:`DecodeError` for anything malformed. One module per message: :mod:`.hello`,
:mod:`.reqresp`, :mod:`.auth_tlv`, :mod:`.unknown`, framing in :mod:`.packet`.
"""

from __future__ import annotations

from pbxgate.glbp.wire.auth_tlv import Auth
from pbxgate.glbp.wire.constants import (
    GROUP_MAX,
    HEADER_LEN,
    IPV4_GROUP,
    IPV4_GROUP_MAC,
    IPV4_TTL,
    IPV6_GROUP,
    MAX_FORWARDERS,
    UDP_PORT,
    VERSION,
    VF_PRIORITY_OWNER,
    VF_PRIORITY_SECONDARY,
    AddrType,
    AuthType,
    TlvType,
    VfState,
    VgState,
    format_mac,
    parse_mac,
    virtual_mac,
)
from pbxgate.glbp.wire.errors import DecodeError
from pbxgate.glbp.wire.hello import Hello
from pbxgate.glbp.wire.packet import Packet, Tlv, decode, encode, encode_tlv
from pbxgate.glbp.wire.reqresp import ReqResp
from pbxgate.glbp.wire.unknown import UnknownTlv

__all__ = [
    "GROUP_MAX",
    "HEADER_LEN",
    "IPV4_GROUP",
    "IPV4_GROUP_MAC",
    "IPV4_TTL",
    "IPV6_GROUP",
    "MAX_FORWARDERS",
    "UDP_PORT",
    "VERSION",
    "VF_PRIORITY_OWNER",
    "VF_PRIORITY_SECONDARY",
    "AddrType",
    "Auth",
    "AuthType",
    "DecodeError",
    "Hello",
    "Packet",
    "ReqResp",
    "Tlv",
    "TlvType",
    "UnknownTlv",
    "VfState",
    "VgState",
    "decode",
    "encode",
    "encode_tlv",
    "format_mac",
    "parse_mac",
    "virtual_mac",
]
