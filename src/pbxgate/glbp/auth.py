"""GLBP authentication: sign outgoing packets and verify received ones.

What is known (``reference/glbp.md`` §2, "Auth TLV"), and what this module does with it:

* **none** (auth type 0) and **text** (type 1): the string travels in clear in the Auth TLV.
  Whether IOS NUL-pads it is [unverified]; we send it unpadded and accept it with or without
  trailing NULs.
* **MD5 key-chain** (type 3): auth data = 4-byte key ID + 16-byte digest. The construction comes
  from one source, John the Ripper (``run/pcap2john.py`` ``pcap_parser_glbp``,
  ``src/hsrp_fmt_plug.c``), whose author marked parts "verify this"; RFC 1828-style keyed MD5::

      salt   = packet bytes up to the digest (header + Auth TLV through the key ID)
             + source IPv4 (4 B) + 12 zero bytes         (in place of the digest)
             + every following TLV verbatim
      block  = key || 0x80 || zeros, bit length of key as little-endian u64 at 56..63  (64 B)
      digest = MD5(block || salt || key)

* **MD5 key-string** (type 2): *unknown*. openwall/john#4661 is unresolved and Loki's code is
  an unfinished commit. pbxgate uses the key-chain construction without the key ID (so the
  digest follows the two auth header bytes). It interoperates between pbxgate routers only.

For an IPv6 source the 16-byte address fills the digest field [inferred, no capture exists].
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address

from pbxgate.errors import ConfigError
from pbxgate.glbp.config import AuthConfig, AuthMode, KeyChain, KeyChainKey
from pbxgate.glbp.wire import (
    HEADER_LEN,
    Auth,
    AuthType,
    DecodeError,
    Packet,
    TlvType,
    decode,
    encode,
)

DIGEST_LEN = 16
MAX_KEY_LEN = 55  # the key, 0x80 and the length must fit one 64-byte MD5 block (JTR)
_AUTH_HEADER = 4  # TLV type, TLV length, auth type, auth length
_KEY_ID_LEN = 4

# Cisco "type 7" obfuscation table (public knowledge; it is not encryption).
_TYPE7_XLAT = b"dsfd;kfoA,.iyewrkldJKDHSUBsgvca69834ncxv9873254k;fg87"

Address = IPv4Address | IPv6Address


class AuthConfigError(ConfigError):
    """Authentication is configured in a way that cannot sign packets (e.g. an empty key chain)."""


def keyed_md5(key: bytes, salt: bytes) -> bytes:
    """RFC 1828-style MD5 as JTR implements it for GLBP (see the module docstring)."""
    if len(key) > MAX_KEY_LEN:
        raise AuthConfigError(f"MD5 key longer than {MAX_KEY_LEN} bytes")
    block = key + b"\x80" + bytes(MAX_KEY_LEN - len(key)) + (len(key) * 8).to_bytes(8, "little")
    return hashlib.md5(block + salt + key, usedforsecurity=False).digest()


def decode_type7(text: str) -> str:
    """Reverse Cisco's ``7 <string>`` obfuscation (two decimal seed digits, then hex pairs)."""
    problem = AuthConfigError("a type 7 key-string must be 2 digits and hex pairs")
    if len(text) < 4 or len(text) % 2 or not text[:2].isdigit():
        raise problem
    try:
        seed, data = int(text[:2]), bytes.fromhex(text[2:])
    except ValueError:
        raise problem from None
    xlat = _TYPE7_XLAT
    return bytes(b ^ xlat[(seed + i) % len(xlat)] for i, b in enumerate(data)).decode("latin-1")


def sign(
    packet: Packet,
    auth: AuthConfig,
    *,
    source: Address,
    key_chains: Sequence[KeyChain] = (),
) -> bytes:
    """Encode ``packet`` with an Auth TLV first (none: without one), digest filled in."""
    others = tuple(t for t in packet.tlvs if not isinstance(t, Auth))
    bare = replace(packet, tlvs=others)
    if auth.mode is AuthMode.NONE:
        return encode(bare)
    if auth.mode is AuthMode.TEXT:
        return encode(replace(bare, tlvs=(Auth(AuthType.TEXT, _secret(auth)), *others)))
    key, key_id = _signing_key(auth, key_chains)
    kind = AuthType.MD5_STRING if key_id is None else AuthType.MD5_CHAIN
    placeholder = Auth(kind, bytes(DIGEST_LEN), key_id)
    raw = encode(replace(bare, tlvs=(placeholder, *others)))
    start = _digest_offset(HEADER_LEN, kind)
    digest = keyed_md5(key, _salt(raw, start, source))
    return raw[:start] + digest + raw[start + DIGEST_LEN :]


def verify(
    packet_bytes: bytes,
    auth: AuthConfig,
    *,
    source: Address | None = None,
    key_chains: Sequence[KeyChain] = (),
) -> bool:
    """True when ``packet_bytes`` authenticates under ``auth``; malformed packets are False.

    ``source`` (the IP source address) is needed for MD5; without it MD5 never verifies.
    """
    try:
        packet = decode(packet_bytes)
    except DecodeError:
        return False
    received = packet.auth
    if auth.mode is AuthMode.NONE:
        return received is None or received.auth_type is AuthType.NONE
    if received is None:
        return False
    if auth.mode is AuthMode.TEXT:
        return received.auth_type is AuthType.TEXT and hmac.compare_digest(
            received.data.rstrip(b"\0"), _secret(auth)
        )
    return _verify_md5(packet_bytes, received, auth, source, key_chains)


def _verify_md5(
    raw: bytes,
    received: Auth,
    auth: AuthConfig,
    source: Address | None,
    key_chains: Sequence[KeyChain],
) -> bool:
    chain = auth.mode is AuthMode.MD5_KEY_CHAIN
    expected_type = AuthType.MD5_CHAIN if chain else AuthType.MD5_STRING
    if source is None or received.auth_type is not expected_type:
        return False
    if len(received.data) != DIGEST_LEN:
        return False
    if chain:
        key = _chain_key(auth, key_chains, received.key_id)
        if key is None:
            return False
    else:
        key = _secret(auth)
    offset = _auth_offset(raw)
    if offset is None or len(key) > MAX_KEY_LEN:
        return False
    start = _digest_offset(offset, received.auth_type)
    return hmac.compare_digest(keyed_md5(key, _salt(raw, start, source)), received.data)


def _salt(raw: bytes, start: int, source: Address) -> bytes:
    field = source.packed + bytes(DIGEST_LEN - len(source.packed))
    return raw[:start] + field + raw[start + DIGEST_LEN :]


def _digest_offset(auth_offset: int, kind: AuthType) -> int:
    extra = _KEY_ID_LEN if kind is AuthType.MD5_CHAIN else 0
    return auth_offset + _AUTH_HEADER + extra


def _auth_offset(raw: bytes) -> int | None:
    """Where the Auth TLV starts in an already validated packet."""
    offset = HEADER_LEN
    while offset + 1 < len(raw):
        if raw[offset] == TlvType.AUTH:
            return offset
        offset += raw[offset + 1]
    return None


def _secret(auth: AuthConfig) -> bytes:
    if auth.secret is None:
        raise AuthConfigError("authentication needs a string")
    text = auth.secret.reveal()
    return (decode_type7(text) if auth.encrypted else text).encode("utf-8")


def _signing_key(auth: AuthConfig, key_chains: Sequence[KeyChain]) -> tuple[bytes, int | None]:
    if auth.mode is AuthMode.MD5_KEY_STRING:
        return _secret(auth), None
    chain = _find_chain(auth, key_chains)
    key = chain.active_key() if chain else None
    if key is None or key.key_string is None:
        raise AuthConfigError(
            f"key chain {auth.key_chain!r} has no key with a key-string",
            hint="add 'key 1' and 'key-string ...' under 'key chain'",
        )
    return _key_bytes(key), key.key_id


def _key_bytes(key: KeyChainKey) -> bytes:
    text = key.key_string.reveal() if key.key_string is not None else ""
    return (decode_type7(text) if key.encrypted else text).encode("utf-8")


def _chain_key(
    auth: AuthConfig, key_chains: Sequence[KeyChain], key_id: int | None
) -> bytes | None:
    chain = _find_chain(auth, key_chains)
    key = chain.key(key_id) if chain and key_id is not None else None
    if key is None or key.key_string is None:
        return None
    return _key_bytes(key)


def _find_chain(auth: AuthConfig, key_chains: Sequence[KeyChain]) -> KeyChain | None:
    return next((c for c in key_chains if c.name == auth.key_chain), None)


__all__ = ["AuthConfigError", "decode_type7", "keyed_md5", "sign", "verify"]
