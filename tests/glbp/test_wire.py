"""GLBP codec: golden packets decoded field by field and re-encoded byte for byte; fuzzing."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.glbp.wire import (
    Auth,
    AuthType,
    DecodeError,
    Hello,
    Packet,
    ReqResp,
    UnknownTlv,
    VfState,
    VgState,
    decode,
    encode,
    format_mac,
    parse_mac,
    virtual_mac,
)

GOLDENS = Path(__file__).parent / "goldens"
OWNER = parse_mac("c200.7cb8.0000")


def hexdump(data: bytes) -> str:
    """The layout of ``reference/glbp.md``: offset, two spaces, 16 bytes a line."""
    lines = []
    for start in range(0, len(data), 16):
        chunk = " ".join(f"{b:02x}" for b in data[start : start + 16])
        lines.append(f"{start:04x}  {chunk}")
    return "\n".join(lines) + "\n"


def unhex(text: str) -> bytes:
    return bytes.fromhex("".join(line[6:] for line in text.splitlines() if line.strip()))


def hello(state: VgState = VgState.ACTIVE, vip: str | None = "192.168.0.1") -> Hello:
    address = None if vip is None else (IPv6Address(vip) if ":" in vip else IPv4Address(vip))
    return Hello(state, 200, 3000, 10000, 600, 14400, address)


def vf(number: int, state: VfState = VfState.ACTIVE, group: int = 1) -> ReqResp:
    return ReqResp(number, state, 167, 100, virtual_mac(group, number))


GOLDEN_PACKETS: dict[str, Packet] = {
    # reference/glbp.md §2 "Example": NLN values plus one VF (60 B payload, 102-byte frame)
    "hello_vf1": Packet(1, OWNER, (hello(), vf(1))),
    "hello_speak": Packet(1, OWNER, (hello(VgState.SPEAK),)),
    "request": Packet(1, OWNER, (ReqResp(0, VfState.NONE, 0, 100, bytes(6)),)),
    # Wireshark's debug sample: group 1020, IPv6 VIP, VF 1 vMAC 0007.b403.fc01
    "hello_ipv6_g1020": Packet(
        1020, OWNER, (hello(vip="fe80::c800:8ff:fe64:aaaa"), vf(1, group=1020))
    ),
    "four_forwarders": Packet(
        1,
        OWNER,
        (hello(), vf(1), vf(2, VfState.LISTEN), vf(3, VfState.LISTEN), vf(4, VfState.LISTEN)),
    ),
    "auth_text": Packet(1, OWNER, (Auth(AuthType.TEXT, b"CISCO"), hello(), vf(1))),
    "auth_chain_nonce": Packet(
        1,
        OWNER,
        (
            Auth(AuthType.MD5_CHAIN, bytes(range(16)), key_id=1),
            UnknownTlv(4, bytes.fromhex("0102030405060708")),
            hello(),
        ),
    ),
    "unlearned_vip": Packet(7, OWNER, (hello(VgState.LISTEN, vip=None),)),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PACKETS))
def test_golden_packets_round_trip(name: str, golden) -> None:  # type: ignore[no-untyped-def]
    packet = GOLDEN_PACKETS[name]
    path = GOLDENS / f"wire_{name}.hex"
    golden(path, hexdump(encode(packet)))
    data = unhex(path.read_text(encoding="utf-8"))
    assert decode(data) == packet
    assert encode(decode(data)) == data


def test_reference_example_field_by_field() -> None:
    data = unhex((GOLDENS / "wire_hello_vf1.hex").read_text(encoding="utf-8"))
    reference = """
        01 00 00 01 00 00 c2 00 7c b8 00 00 01 1c 00 20
        00 c8 00 00 00 00 0b b8 00 00 27 10 02 58 38 40
        00 00 01 04 c0 a8 00 01 02 14 01 20 00 a7 64 00
        00 00 00 00 00 00 00 07 b4 00 01 01"""
    assert data == bytes.fromhex(reference.replace("\n", " "))
    assert len(data) == 60  # + 14 Ethernet + 20 IPv4 + 8 UDP = 102-byte frame (NLN)
    packet = decode(data)
    assert (packet.group, format_mac(packet.owner_id)) == (1, "c200.7cb8.0000")
    h = packet.hello
    assert h is not None
    assert (h.vg_state, h.priority, h.hello_ms, h.hold_ms) == (VgState.ACTIVE, 200, 3000, 10000)
    assert (h.redirect, h.timeout, h.virtual_ip) == (600, 14400, IPv4Address("192.168.0.1"))
    (f,) = packet.forwarders
    assert (f.forwarder, f.vf_state, f.priority, f.weight) == (1, VfState.ACTIVE, 167, 100)
    assert format_mac(f.virtual_mac) == "0007.b400.0101"
    assert packet.auth is None


def test_sizes_match_the_reference() -> None:
    sizes = {name: len(encode(p)) for name, p in GOLDEN_PACKETS.items()}
    assert sizes["hello_speak"] == 40  # 82-byte frame
    assert sizes["request"] == 32  # 74-byte frame
    assert sizes["four_forwarders"] == 40 + 4 * 20
    assert sizes["hello_ipv6_g1020"] == 12 + 40 + 20


def test_ipv6_and_group_1020() -> None:
    packet = decode(encode(GOLDEN_PACKETS["hello_ipv6_g1020"]))
    assert packet.hello is not None
    assert packet.hello.virtual_ip == IPv6Address("fe80::c800:8ff:fe64:aaaa")
    assert format_mac(packet.forwarders[0].virtual_mac) == "0007.b403.fc01"


def test_auth_tlv_fields() -> None:
    packet = decode(encode(GOLDEN_PACKETS["auth_chain_nonce"]))
    assert packet.auth == Auth(AuthType.MD5_CHAIN, bytes(range(16)), 1)
    assert packet.tlvs[1] == UnknownTlv(4, bytes.fromhex("0102030405060708"))
    text = decode(encode(GOLDEN_PACKETS["auth_text"])).auth
    assert text is not None and text.data == b"CISCO"


def test_unknown_bytes_are_ignored_on_receipt_and_sent_as_zero() -> None:
    data = bytearray(encode(GOLDEN_PACKETS["hello_vf1"]))
    for offset in (1, 4, 5, 14, 16, 18, 19, 32, 33, 44, 47, 48, 49, 50, 51, 52, 53):
        data[offset] = 0x03
    packet = decode(bytes(data))
    assert packet == GOLDEN_PACKETS["hello_vf1"]
    assert encode(packet) == encode(GOLDEN_PACKETS["hello_vf1"])


def test_unknown_tlv_is_skipped_by_length_and_trailing_tlv_bytes_ignored() -> None:
    base = encode(GOLDEN_PACKETS["hello_vf1"])
    extra = bytes([9, 5, 1, 2, 3])
    packet = decode(base[:12] + extra + base[12:])
    assert packet.tlvs[0] == UnknownTlv(9, b"\x01\x02\x03")
    assert packet.hello == GOLDEN_PACKETS["hello_vf1"].hello
    # a Hello TLV claiming 30 bytes: the 2 extra bytes are skipped
    longer = bytearray(base[:40] + b"\xee\xee" + base[40:])
    longer[13] = 30
    assert decode(bytes(longer)) == GOLDEN_PACKETS["hello_vf1"]


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:11], "shorter than the 12-byte header"),
        (lambda d: b"\x02" + d[1:], "version 2"),
        (lambda d: d[:2] + b"\x04\x00" + d[4:], "group 1024"),
        (lambda d: d[:13] + b"\x01" + d[14:], "TLV length 1 too small"),
        (lambda d: d[:-1], "runs past the packet end"),
        (lambda d: d + b"\x01", "TLV header cut short"),
        (lambda d: d[:13] + b"\x10" + d[14:], "Hello TLV value is 14 bytes"),
        (lambda d: d[:15] + b"\x07" + d[16:], "unknown VG state 0x07"),
        (lambda d: d[:34] + b"\x03" + d[35:], "unknown Hello address type 0x03"),
        (lambda d: d[:35] + b"\x02" + d[36:], "Hello address type 1 with length 2"),
        (lambda d: d[:35] + b"\x10" + d[36:], "address of 16 bytes runs past the TLV"),
        (lambda d: d[:41] + b"\x10" + d[42:], "Request/Response TLV value is 14 bytes"),
        (lambda d: d[:43] + b"\x05" + d[44:], "unknown VF state 0x05"),
    ],
)
def test_malformed_packets_raise_one_decode_error(mutate, reason: str) -> None:  # type: ignore[no-untyped-def]
    data = mutate(encode(GOLDEN_PACKETS["hello_vf1"]))
    with pytest.raises(DecodeError, match=reason) as info:
        decode(data)
    assert info.value.reason in str(info.value)


def test_malformed_auth_tlvs() -> None:
    header = encode(Packet(1, OWNER))
    for tlv, reason in [
        (b"\x03\x03\x01", "too short for its type and length"),
        (b"\x03\x06\x01\x09\x00\x00", "runs past the TLV"),
        (b"\x03\x06\x03\x02\x00\x00", "without a key ID"),
        (b"\x03\x04\x07\x00", "unknown authentication type 0x07"),
    ]:
        with pytest.raises(DecodeError, match=reason):
            decode(header + tlv)


def test_encoder_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        Hello(VgState.ACTIVE, 256, 3000, 10000, 600, 14400, None)
    with pytest.raises(ValueError):
        ReqResp(1, VfState.ACTIVE, 167, 100, b"\x00")
    with pytest.raises(ValueError):
        Auth(AuthType.MD5_STRING, bytes(16), key_id=1)
    with pytest.raises(ValueError):
        Packet(1, b"\x00" * 5)
    with pytest.raises(ValueError):
        Packet(1024, OWNER)
    with pytest.raises(ValueError):
        virtual_mac(1024, 1)


def test_virtual_mac_rule() -> None:
    assert format_mac(virtual_mac(1, 1)) == "0007.b400.0101"
    assert format_mac(virtual_mac(30, 1)) == "0007.b400.1e01"
    assert format_mac(virtual_mac(1020, 1)) == "0007.b403.fc01"
    assert parse_mac("00:07:b4:00:01:02") == virtual_mac(1, 2)
    with pytest.raises(ValueError):
        parse_mac("0007.b400")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_decode_raises_only_decode_error_on_random_bytes(data: bytes) -> None:
    try:
        packet = decode(data)
    except DecodeError:
        return
    assert decode(encode(packet)) == packet


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(GOLDEN_PACKETS)),
    st.lists(st.tuples(st.integers(0, 119), st.integers(0, 255)), max_size=6),
    st.integers(0, 120),
)
def test_decode_raises_only_decode_error_on_mutated_packets(
    name: str, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(encode(GOLDEN_PACKETS[name]))
    for offset, value in edits:
        if offset < len(data):
            data[offset] = value
    try:
        packet = decode(bytes(data[: max(cut, 12)]))
    except DecodeError:
        return
    assert decode(encode(packet)) == packet


u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
hellos = st.builds(
    Hello,
    st.sampled_from(VgState),
    u8,
    u32,
    u32,
    u16,
    u16,
    st.one_of(
        st.none(),
        st.ip_addresses(v=4).filter(lambda a: int(a) != 0),
        st.ip_addresses(v=6),
    ),
)
forwarders = st.builds(
    ReqResp, u8, st.sampled_from(VfState), u8, u8, st.binary(min_size=6, max_size=6)
)
auths = st.one_of(
    st.builds(
        Auth,
        st.sampled_from([AuthType.NONE, AuthType.TEXT, AuthType.MD5_STRING]),
        st.binary(max_size=40),
    ),
    st.builds(Auth, st.just(AuthType.MD5_CHAIN), st.binary(max_size=40), u32),
)
unknowns = st.builds(UnknownTlv, st.integers(4, 255), st.binary(max_size=60))


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 1023),
    st.binary(min_size=6, max_size=6),
    st.lists(st.one_of(hellos, forwarders, auths, unknowns), max_size=6),
)
def test_every_valid_packet_round_trips(group: int, owner: bytes, tlvs: list[object]) -> None:
    packet = Packet(group, owner, tuple(tlvs))  # type: ignore[arg-type]
    data = encode(packet)
    assert decode(data) == packet
    assert len(data) == 12 + sum(2 + len(t.encode_value()) for t in packet.tlvs)
