"""Small checks shared by the TLV modules."""

from __future__ import annotations

import enum
from typing import TypeVar

from pbxgate.glbp.wire.errors import DecodeError

E = TypeVar("E", bound=enum.IntEnum)


def check_uint(name: str, value: int, bits: int) -> None:
    """ValueError (a bug in the sender, not a bad packet) when ``value`` does not fit."""
    if not 0 <= value < (1 << bits):
        raise ValueError(f"{name} {value} does not fit in {bits} bits")


def check_mac(name: str, value: bytes) -> None:
    if len(value) != 6:
        raise ValueError(f"{name} must be 6 bytes, got {len(value)}")


def decode_enum(kind: type[E], code: int, what: str) -> E:
    try:
        return kind(code)
    except ValueError:
        raise DecodeError(f"unknown {what} 0x{code:02x}") from None
