"""Any TLV the codec does not understand (type 4 "nonce" and others): kept verbatim.

Unknown TLVs are skipped by length on receipt (``reference/glbp.md`` §7) but kept in the packet,
in order, because the MD5 key-chain digest covers every TLV after the Auth TLV verbatim (JTR).
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxgate.glbp.wire._fields import check_uint


@dataclass(frozen=True)
class UnknownTlv:
    """A TLV this codec does not understand (type 4 and any other): kept verbatim, skipped."""

    tlv_type: int
    value: bytes

    def __post_init__(self) -> None:
        check_uint("tlv_type", self.tlv_type, 8)
        if len(self.value) > 253:
            raise ValueError("TLV value longer than 253 bytes")

    def encode_value(self) -> bytes:
        return self.value


__all__ = ["UnknownTlv"]
