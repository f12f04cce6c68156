"""GLBP transport constants, type codes and the virtual MAC rule (``reference/glbp.md`` §1-2).

Sources: **WS** Wireshark ``epan/dissectors/packet-glbp.c``; **LOKI** ``modules/module_glbp.py``;
**ANSA** ``src/ansa/routing/glbp/``; **NLN** networklessons "GLBP TLVs and priority values".
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv6Address

UDP_PORT = 3222  # source and destination port are both 3222 (WS heuristic, LOKI, ANSA)
IPV4_GROUP = IPv4Address("224.0.0.102")  # shared with HSRPv2, demultiplexed by port (LOKI, ANSA)
IPV4_GROUP_MAC = bytes.fromhex("01005e000066")
IPV6_GROUP = IPv6Address("ff02::66")  # [unverified]: that group is HSRP for IPv6 on UDP 2029
IPV4_TTL = 255  # Wireshark's "TTL low" rule flags real GLBP, so not 1 [inferred, WEBER]

VERSION = 1  # header byte 0, always 1 (WS requires it)
HEADER_LEN = 12
TLV_HEADER_LEN = 2  # type(1) + length(1); the length includes these two bytes
GROUP_MAX = 1023  # 10-bit group (nDPI rejects larger, the vMAC holds 10 bits)
MAX_FORWARDERS = 4

VF_PRIORITY_OWNER = 167  # VF priority is not configurable: 167 for the owner ...
VF_PRIORITY_SECONDARY = 135  # ... 135 for a secondary that took over (JTD debug, WS, NLN)

VMAC_PREFIX = bytes.fromhex("0007b4")


class TlvType(enum.IntEnum):
    HELLO = 1
    REQ_RESP = 2  # "Request/Response?" in WS
    AUTH = 3
    NONCE = 4  # meaning unknown; present in authenticated packets (LOKI "nonce", JTR) [single]


class VgState(enum.IntEnum):
    """Virtual gateway state codes (WS, LOKI); DISABLED/INIT only in ANSA, never on the wire."""

    DISABLED = 0x01
    INIT = 0x02
    LISTEN = 0x04
    SPEAK = 0x08
    STANDBY = 0x10
    ACTIVE = 0x20


class VfState(enum.IntEnum):
    """Virtual forwarder state codes (WS, LOKI). NONE: ANSA's requests carry 0."""

    NONE = 0x00
    DISABLED = 0x01
    INIT = 0x02
    LISTEN = 0x04
    ACTIVE = 0x20


class AddrType(enum.IntEnum):
    IPV4 = 1
    IPV6 = 2


class AuthType(enum.IntEnum):
    """Auth TLV ``auth type`` byte (WS ``glbp_auth_type_vals``)."""

    NONE = 0
    TEXT = 1
    MD5_STRING = 2
    MD5_CHAIN = 3


def virtual_mac(group: int, forwarder: int) -> bytes:
    """``0007.b4`` + 6 zero bits + 10-bit group + forwarder # (WS): 1020/1 -> 0007.b403.fc01."""
    if not 0 <= group <= GROUP_MAX or not 1 <= forwarder <= 255:
        raise ValueError(f"no virtual MAC for group {group} forwarder {forwarder}")
    return VMAC_PREFIX + group.to_bytes(2, "big") + bytes([forwarder])


def format_mac(mac: bytes) -> str:
    """Cisco dotted form: ``aabb.cc00.2000``."""
    text = mac.hex()
    return ".".join(text[i : i + 4] for i in range(0, len(text), 4))


def parse_mac(text: str) -> bytes:
    """Accept ``aabb.cc00.2000``, ``aa:bb:cc:00:20:00`` or ``aa-bb-...``; ValueError otherwise."""
    digits = text.replace(".", "").replace(":", "").replace("-", "")
    if len(digits) != 12:
        raise ValueError(f"not a MAC address: {text!r}")
    return bytes.fromhex(digits)


__all__ = [
    "GROUP_MAX",
    "HEADER_LEN",
    "IPV4_GROUP",
    "IPV4_GROUP_MAC",
    "IPV4_TTL",
    "IPV6_GROUP",
    "MAX_FORWARDERS",
    "TLV_HEADER_LEN",
    "UDP_PORT",
    "VERSION",
    "VF_PRIORITY_OWNER",
    "VF_PRIORITY_SECONDARY",
    "AddrType",
    "AuthType",
    "TlvType",
    "VfState",
    "VgState",
    "format_mac",
    "parse_mac",
    "virtual_mac",
]
