"""GLBP authentication: text, MD5 key-string, MD5 key-chain; sign and verify."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from pbxgate.config import Secret
from pbxgate.glbp.auth import AuthConfigError, decode_type7, keyed_md5, sign, verify
from pbxgate.glbp.config import AuthConfig, AuthMode, KeyChain, KeyChainKey
from pbxgate.glbp.wire import (
    Auth,
    AuthType,
    Hello,
    Packet,
    ReqResp,
    UnknownTlv,
    VfState,
    VgState,
    decode,
    encode,
    parse_mac,
    virtual_mac,
)

SOURCE = IPv4Address("192.168.0.1")
PACKET = Packet(
    1,
    parse_mac("aabb.cc00.2000"),
    (
        Hello(VgState.ACTIVE, 100, 3000, 10000, 600, 14400, IPv4Address("192.168.0.254")),
        ReqResp(1, VfState.ACTIVE, 167, 100, virtual_mac(1, 1)),
    ),
)
TEXT = AuthConfig(AuthMode.TEXT, Secret("CISCO"))
MD5 = AuthConfig(AuthMode.MD5_KEY_STRING, Secret("CISCO"))
CHAIN = AuthConfig(AuthMode.MD5_KEY_CHAIN, key_chain="GLBP")
CHAINS = (KeyChain("GLBP", (KeyChainKey(7, Secret("s3cret")), KeyChainKey(9, Secret("other")))),)


@pytest.mark.parametrize(
    ("salt", "digest", "key"),
    [  # John the Ripper's published test vectors for its HSRP/VRRP/GLBP MD5 format
        (
            "000004030a64010000000000000000000a000064041c010000000a000014" + "00" * 20,
            "52e1db09d18d695b8fefb3730ff8d9d6",
            "password12345",
        ),
        (
            "000010030a64010000000000000000000a000064041c010000000a000014" + "00" * 20,
            "f02fc41b1b516e2d1261d8800d39ccea",
            "openwall12345",
        ),
    ],
)
def test_keyed_md5_matches_john_the_ripper(salt: str, digest: str, key: str) -> None:
    assert keyed_md5(key.encode(), bytes.fromhex(salt)).hex() == digest


def test_key_chain_digest_follows_pcap2john_layout() -> None:
    data = sign(PACKET, CHAIN, source=SOURCE, key_chains=CHAINS)
    packet = decode(data)
    assert isinstance(packet.tlvs[0], Auth) and packet.tlvs[1:] == PACKET.tlvs
    assert (data[12], data[14], data[15]) == (3, 3, 20)  # Auth TLV first, type 3, 20 bytes
    assert int.from_bytes(data[16:20], "big") == 7  # the lowest key of the chain signs
    # pcap2john: salt = data[0:20] + source IPv4 + 12 zeros + the TLVs from offset 36
    salt = data[0:20] + SOURCE.packed + bytes(12) + data[36:]
    assert data[20:36] == keyed_md5(b"s3cret", salt)
    assert verify(data, CHAIN, source=SOURCE, key_chains=CHAINS)


def test_text_authentication() -> None:
    data = sign(PACKET, TEXT, source=SOURCE)
    auth = decode(data).auth
    assert auth == Auth(AuthType.TEXT, b"CISCO")
    assert verify(data, TEXT)
    assert not verify(data, AuthConfig(AuthMode.TEXT, Secret("cisco")))
    assert not verify(encode(PACKET), TEXT)
    padded = encode(Packet(1, PACKET.owner_id, (Auth(AuthType.TEXT, b"CISCO\0\0\0"),)))
    assert verify(padded, TEXT)


def test_md5_key_string_signs_and_verifies_between_pbxgate_routers() -> None:
    data = sign(PACKET, MD5, source=SOURCE)
    auth = decode(data).auth
    assert auth is not None and auth.auth_type is AuthType.MD5_STRING and len(auth.data) == 16
    assert verify(data, MD5, source=SOURCE)
    assert not verify(data, MD5, source=IPv4Address("192.168.0.2"))  # the source is hashed
    assert not verify(data, MD5)  # no source, no MD5
    assert not verify(data, AuthConfig(AuthMode.MD5_KEY_STRING, Secret("CISCO1")), source=SOURCE)
    assert not verify(data, CHAIN, source=SOURCE, key_chains=CHAINS)
    assert not verify(data, TEXT)


def test_any_changed_byte_breaks_the_md5_digest() -> None:
    data = sign(PACKET, CHAIN, source=SOURCE, key_chains=CHAINS)
    for offset in (3, 9, 40, 55, len(data) - 1):  # group, owner, hello, VF, vMAC
        tampered = bytearray(data)
        tampered[offset] ^= 0x01
        assert not verify(bytes(tampered), CHAIN, source=SOURCE, key_chains=CHAINS), offset


def test_key_chain_verifies_with_the_key_the_sender_named() -> None:
    sent_with_9 = (KeyChain("GLBP", (KeyChainKey(9, Secret("other")),)),)
    data = sign(PACKET, CHAIN, source=SOURCE, key_chains=sent_with_9)
    assert verify(data, CHAIN, source=SOURCE, key_chains=CHAINS)
    assert not verify(data, CHAIN, source=SOURCE, key_chains=(KeyChain("GLBP"),))
    assert not verify(data, CHAIN, source=SOURCE)


def test_unknown_tlvs_are_covered_by_the_digest() -> None:
    packet = Packet(1, PACKET.owner_id, (UnknownTlv(4, b"\x00\x01\x02\x03"), *PACKET.tlvs))
    data = sign(packet, CHAIN, source=SOURCE, key_chains=CHAINS)
    assert isinstance(decode(data).tlvs[1], UnknownTlv)
    assert verify(data, CHAIN, source=SOURCE, key_chains=CHAINS)
    tampered = data.replace(b"\x04\x06\x00\x01\x02\x03", b"\x04\x06\x00\x01\x02\x04")
    assert not verify(tampered, CHAIN, source=SOURCE, key_chains=CHAINS)


def test_ipv6_source_fills_the_digest_field() -> None:
    source = IPv6Address("fe80::1")
    data = sign(PACKET, MD5, source=source)
    assert verify(data, MD5, source=source)


def test_no_authentication() -> None:
    none = AuthConfig()
    data = sign(decode(sign(PACKET, TEXT, source=SOURCE)), none, source=SOURCE)
    assert data == encode(PACKET)  # signing with none strips an old Auth TLV
    assert verify(data, none)
    assert not verify(sign(PACKET, TEXT, source=SOURCE), none)
    assert verify(encode(Packet(1, PACKET.owner_id, (Auth(AuthType.NONE),))), none)
    assert not verify(b"\x01\x00", none)  # malformed is never authentic


def test_signing_without_a_usable_key_is_a_clear_error() -> None:
    with pytest.raises(AuthConfigError, match="key chain 'GLBP' has no key"):
        sign(PACKET, CHAIN, source=SOURCE)
    with pytest.raises(AuthConfigError, match="longer than 55"):
        keyed_md5(b"k" * 56, b"")


def test_type7_key_strings() -> None:
    assert decode_type7("094F471A1A0A") == "cisco"
    encrypted = AuthConfig(AuthMode.MD5_KEY_STRING, Secret("094F471A1A0A"), encrypted=True)
    plain = AuthConfig(AuthMode.MD5_KEY_STRING, Secret("cisco"))
    assert verify(sign(PACKET, encrypted, source=SOURCE), plain, source=SOURCE)
    hidden = (KeyChain("GLBP", (KeyChainKey(7, Secret("094F471A1A0A"), encrypted=True),)),)
    plain = (KeyChain("GLBP", (KeyChainKey(7, Secret("cisco")),)),)
    data = sign(PACKET, CHAIN, source=SOURCE, key_chains=hidden)
    assert verify(data, CHAIN, source=SOURCE, key_chains=plain)
    for bad in ("9", "xx4F47", "094F47Z"):
        with pytest.raises(AuthConfigError):
            decode_type7(bad)


def test_secrets_never_show_in_errors_or_reprs() -> None:
    assert "s3cret" not in repr(CHAINS)
    assert "CISCO" not in repr(MD5)
