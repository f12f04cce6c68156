"""Auth TLV (type 3), first TLV of an authenticated packet (JTR, LOKI).

Layout (``reference/glbp.md`` §2; WS)::

     0               1               2               3
    +---------------+---------------+---------------+---------------+
    | type = 3      | length        | auth type     | auth length   |
    +---------------+---------------+---------------+---------------+
    |  data (auth length bytes):                                    |
    |    type 1 text      the string                                |
    |    type 2 MD5       the digest (16 bytes)                     |
    |    type 3 key-chain key ID (u32) + digest (16 bytes)          |
    +---------------------------------------------------------------+
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pbxgate.glbp.wire._fields import check_uint, decode_enum
from pbxgate.glbp.wire.constants import AuthType, TlvType
from pbxgate.glbp.wire.errors import DecodeError

KEY_ID = struct.Struct("!I")
MAX_DATA = 255 - 4  # the TLV length byte covers type, length, auth type, auth length


@dataclass(frozen=True)
class Auth:
    """``data`` is the text, the MD5 digest, or (key-chain) the digest after ``key_id``."""

    auth_type: AuthType
    data: bytes = b""
    key_id: int | None = None

    TYPE = TlvType.AUTH

    def __post_init__(self) -> None:
        chain = self.auth_type is AuthType.MD5_CHAIN
        if chain != (self.key_id is not None):
            raise ValueError("a key ID goes with MD5 key-chain authentication, and only there")
        if self.key_id is not None:
            check_uint("key_id", self.key_id, 32)
        if len(self.auth_bytes()) > MAX_DATA:
            raise ValueError(f"authentication data longer than {MAX_DATA} bytes")

    def auth_bytes(self) -> bytes:
        """The ``auth length`` bytes after the two auth header bytes."""
        if self.key_id is None:
            return self.data
        return KEY_ID.pack(self.key_id) + self.data

    def encode_value(self) -> bytes:
        body = self.auth_bytes()
        return bytes([self.auth_type, len(body)]) + body

    @classmethod
    def decode_value(cls, value: bytes) -> Auth:
        if len(value) < 2:
            raise DecodeError("Auth TLV is too short for its type and length")
        kind = decode_enum(AuthType, value[0], "authentication type")
        size = value[1]
        if len(value) < 2 + size:
            raise DecodeError(f"Auth data of {size} bytes runs past the TLV")
        body = value[2 : 2 + size]
        if kind is AuthType.MD5_CHAIN:
            if size < KEY_ID.size:
                raise DecodeError("MD5 key-chain authentication without a key ID")
            return cls(kind, body[KEY_ID.size :], KEY_ID.unpack_from(body)[0])
        return cls(kind, body)


__all__ = ["Auth"]
