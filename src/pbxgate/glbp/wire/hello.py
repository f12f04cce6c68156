"""Hello TLV (type 1): the virtual gateway's state, priority, timers and virtual IP.

Layout (``reference/glbp.md`` §2; WS, LOKI, ANSA, NLN agree), big-endian, offsets from the
start of the TLV; ``?`` bytes are of unknown meaning, sent as zero and ignored on receipt::

     0               1               2               3
    +---------------+---------------+---------------+---------------+
    | type = 1      | length 28/40  |       ?       |   VG state    |
    +---------------+---------------+---------------+---------------+
    |       ?       |   priority    |               ?               |
    +---------------+---------------+-------------------------------+
    |                     hello interval, ms (u32)                  |
    +---------------------------------------------------------------+
    |                     hold interval, ms (u32)                   |
    +-------------------------------+-------------------------------+
    |        redirect, s (u16)      |  forwarder timeout, s (u16)   |
    +-------------------------------+---------------+---------------+
    |               ?               | addr type 1/2 | addr len 4/16 |
    +-------------------------------+---------------+---------------+
    |                  virtual IP (4 or 16 bytes)                   |
    +---------------------------------------------------------------+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from pbxgate.glbp.wire._fields import check_uint, decode_enum
from pbxgate.glbp.wire.constants import AddrType, TlvType, VgState
from pbxgate.glbp.wire.errors import DecodeError

# unknown(1) state(1) unknown(1) priority(1) unknown(2) hello(4) hold(4) redirect(2)
# timeout(2) unknown(2) addr type(1) addr len(1)
_FIXED = struct.Struct("!xBxB2xIIHH2xBB")
UNSPECIFIED_V4 = IPv4Address("0.0.0.0")  # noqa: S104 - a wire value, not a bind address


@dataclass(frozen=True)
class Hello:
    """One Hello TLV. ``virtual_ip`` None (not yet learned) is sent as IPv4 0.0.0.0 [inferred]."""

    vg_state: VgState
    priority: int
    hello_ms: int
    hold_ms: int
    redirect: int
    timeout: int
    virtual_ip: IPv4Address | IPv6Address | None

    TYPE = TlvType.HELLO

    def __post_init__(self) -> None:
        check_uint("priority", self.priority, 8)
        check_uint("hello_ms", self.hello_ms, 32)
        check_uint("hold_ms", self.hold_ms, 32)
        check_uint("redirect", self.redirect, 16)
        check_uint("timeout", self.timeout, 16)

    def encode_value(self) -> bytes:
        address = UNSPECIFIED_V4 if self.virtual_ip is None else self.virtual_ip
        kind = AddrType.IPV4 if address.version == 4 else AddrType.IPV6
        fixed = _FIXED.pack(
            self.vg_state,
            self.priority,
            self.hello_ms,
            self.hold_ms,
            self.redirect,
            self.timeout,
            kind,
            len(address.packed),
        )
        return fixed + address.packed

    @classmethod
    def decode_value(cls, value: bytes) -> Hello:
        if len(value) < _FIXED.size:
            raise DecodeError(f"Hello TLV value is {len(value)} bytes, needs {_FIXED.size}")
        state, priority, hello_ms, hold_ms, redirect, timeout, kind, size = _FIXED.unpack_from(
            value
        )
        end = _FIXED.size + size
        if len(value) < end:
            raise DecodeError(f"Hello TLV address of {size} bytes runs past the TLV")
        raw = value[_FIXED.size : end]
        address: IPv4Address | IPv6Address | None
        match decode_enum(AddrType, kind, "Hello address type"):
            case AddrType.IPV4 if size == 4:
                address = IPv4Address(raw)
                address = None if address == UNSPECIFIED_V4 else address
            case AddrType.IPV6 if size == 16:
                address = IPv6Address(raw)
            case _:
                raise DecodeError(f"Hello address type {kind} with length {size}")
        return cls(
            decode_enum(VgState, state, "VG state"),
            priority,
            hello_ms,
            hold_ms,
            redirect,
            timeout,
            address,
        )


__all__ = ["Hello"]
