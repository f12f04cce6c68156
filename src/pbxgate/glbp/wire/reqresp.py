"""Request/Response TLV (type 2): one virtual forwarder.

Layout (``reference/glbp.md`` §2; WS, LOKI, ANSA), length 20; ``?`` = unknown, sent as zero::

     0               1               2               3
    +---------------+---------------+---------------+---------------+
    | type = 2      | length = 20   | forwarder #   |   VF state    |
    +---------------+---------------+---------------+---------------+
    |       ?       | VF priority   |    weight     |       ?       |
    +---------------+---------------+---------------+---------------+
    |                        ? (6 more bytes)                       |
    +                               +-------------------------------+
    |                               |                               |
    +-------------------------------+                               +
    |                  virtual MAC (6 bytes)                        |
    +---------------------------------------------------------------+

A request carries forwarder 0 and an all-zero vMAC (ANSA); LOKI ignores such TLVs.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pbxgate.glbp.wire._fields import check_mac, check_uint, decode_enum
from pbxgate.glbp.wire.constants import TlvType, VfState
from pbxgate.glbp.wire.errors import DecodeError

# forwarder(1) state(1) unknown(1) priority(1) weight(1) unknown(7) vMAC(6)
_VALUE = struct.Struct("!BBxBB7x6s")


@dataclass(frozen=True)
class ReqResp:
    """One Request/Response TLV: forwarder number, VF state and priority, weight, vMAC."""

    forwarder: int
    vf_state: VfState
    priority: int
    weight: int
    virtual_mac: bytes

    TYPE = TlvType.REQ_RESP

    def __post_init__(self) -> None:
        check_uint("forwarder", self.forwarder, 8)
        check_uint("priority", self.priority, 8)
        check_uint("weight", self.weight, 8)
        check_mac("virtual_mac", self.virtual_mac)

    @property
    def is_request(self) -> bool:
        """A request names no vMAC yet (ANSA sends forwarder 0 and zeros)."""
        return self.virtual_mac == bytes(6)

    def encode_value(self) -> bytes:
        return _VALUE.pack(
            self.forwarder, self.vf_state, self.priority, self.weight, self.virtual_mac
        )

    @classmethod
    def decode_value(cls, value: bytes) -> ReqResp:
        if len(value) < _VALUE.size:
            raise DecodeError(f"Request/Response TLV value is {len(value)} bytes, needs 18")
        forwarder, state, priority, weight, mac = _VALUE.unpack_from(value)
        return cls(forwarder, decode_enum(VfState, state, "VF state"), priority, weight, mac)


__all__ = ["ReqResp"]
