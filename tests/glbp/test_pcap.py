"""pcap writing: frame builders, classic pcap records, and Wireshark's own GLBP dissector."""

from __future__ import annotations

import os
import shutil
import subprocess
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from pbxgate.config import Secret
from pbxgate.glbp.auth import sign
from pbxgate.glbp.config import AuthConfig, AuthMode, KeyChain, KeyChainKey
from pbxgate.glbp.pcap import (
    PcapWriter,
    Record,
    arp_reply,
    arp_request,
    checksum,
    glbp_frame,
    multicast_mac,
    read_pcap,
    write_pcap,
)
from pbxgate.glbp.wire import (
    Hello,
    Packet,
    ReqResp,
    VfState,
    VgState,
    encode,
    parse_mac,
    virtual_mac,
)

R2 = (parse_mac("aabb.cc00.2000"), IPv4Address("192.168.0.1"))
R3 = (parse_mac("aabb.cc00.3000"), IPv4Address("192.168.0.2"))
HOST = (parse_mac("0050.7966.6801"), IPv4Address("192.168.0.10"))
VIP = IPv4Address("192.168.0.254")


def avg_hello(group: int = 1) -> Packet:
    return Packet(
        group,
        R2[0],
        (
            Hello(VgState.ACTIVE, 110, 3000, 10000, 600, 14400, VIP),
            ReqResp(1, VfState.ACTIVE, 167, 100, virtual_mac(group, 1)),
            ReqResp(2, VfState.LISTEN, 135, 90, virtual_mac(group, 2)),
        ),
    )


def standby_hello() -> Packet:
    hello = Hello(VgState.STANDBY, 100, 1000, 4000, 300, 7200, VIP)
    return Packet(1, R3[0], (hello,))


def ipv6_hello() -> Packet:
    hello = Hello(VgState.LISTEN, 90, 3000, 10000, 600, 14400, IPv6Address("fe80::1:254"))
    return Packet(1020, R3[0], (hello, ReqResp(1, VfState.ACTIVE, 167, 254, virtual_mac(1020, 1))))


def capture() -> list[Record]:
    chain = (KeyChain("GLBP", (KeyChainKey(3, Secret("k")),)),)
    md5 = sign(
        standby_hello(),
        AuthConfig(AuthMode.MD5_KEY_CHAIN, key_chain="GLBP"),
        source=R3[1],
        key_chains=chain,
    )
    text = sign(avg_hello(), AuthConfig(AuthMode.TEXT, Secret("CISCO")), source=R2[1])
    v6_src, v6_dst = IPv6Address("fe80::a8bb:ccff:fe00:3000"), IPv6Address("ff02::66")
    return [
        Record(1.0, glbp_frame(virtual_mac(1, 1), R2[1], encode(avg_hello()))),
        Record(1.5, glbp_frame(R3[0], R3[1], encode(standby_hello()))),
        Record(2.0, arp_request(HOST[0], HOST[1], VIP)),
        Record(2.000250, arp_reply(virtual_mac(1, 2), VIP, HOST[0], HOST[1])),
        Record(3.0, glbp_frame(R3[0], R3[1], md5)),
        Record(4.0, glbp_frame(R2[0], R2[1], text)),
        Record(5.0, glbp_frame(R3[0], v6_src, encode(ipv6_hello()), dst_ip=v6_dst)),
    ]


def test_frames_have_the_reference_sizes() -> None:
    two_vf = glbp_frame(R2[0], R2[1], encode(avg_hello()))
    assert len(two_vf) == 102 + 20
    assert len(glbp_frame(R3[0], R3[1], encode(standby_hello()))) == 82
    unicast = Packet(1, R3[0], (ReqResp(0, VfState.NONE, 0, 100, bytes(6)),))
    frame = glbp_frame(R3[0], R3[1], encode(unicast), dst_ip=R2[1], dst_mac=R2[0])
    assert len(frame) == 74 and frame[:6] == R2[0]
    with pytest.raises(ValueError, match="needs the destination MAC"):
        glbp_frame(R3[0], R3[1], b"", dst_ip=R2[1])
    with pytest.raises(ValueError, match="same IP version"):
        glbp_frame(R3[0], R3[1], b"", dst_ip=IPv6Address("ff02::66"))


def test_ipv4_and_udp_checksums_verify() -> None:
    frame = glbp_frame(R2[0], R2[1], encode(avg_hello()))
    ip_header = frame[14:34]
    assert checksum(ip_header) == 0
    udp = frame[34:]
    pseudo = R2[1].packed + IPv4Address("224.0.0.102").packed + bytes([0, 17]) + udp[4:6]
    assert checksum(pseudo + udp) == 0
    assert frame[22] == 255  # TTL


def test_multicast_macs() -> None:
    assert multicast_mac(IPv4Address("224.0.0.102")).hex() == "01005e000066"
    assert multicast_mac(IPv4Address("239.129.0.102")).hex() == "01005e010066"
    assert multicast_mac(IPv6Address("ff02::66")).hex() == "333300000066"


def test_arp_frames() -> None:
    request = arp_request(HOST[0], HOST[1], VIP)
    assert request[:6] == b"\xff" * 6 and request[12:14] == b"\x08\x06"
    assert request[20:22] == b"\x00\x01" and request[38:42] == VIP.packed
    reply = arp_reply(virtual_mac(1, 2), VIP, HOST[0], HOST[1])
    assert reply[:6] == HOST[0] and reply[6:12] == virtual_mac(1, 2)
    assert reply[20:22] == b"\x00\x02" and reply[22:28] == virtual_mac(1, 2)


def test_pcap_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run.pcap"
    records = capture()
    assert write_pcap(path, records) == len(records)
    data = path.read_bytes()
    assert data[:4] == bytes.fromhex("a1b2c3d4") and data[20:24] == b"\x00\x00\x00\x01"
    back = list(read_pcap(data))
    assert [r.frame for r in back] == [r.frame for r in records]
    assert [r.timestamp for r in back] == pytest.approx([r.timestamp for r in records], abs=1e-6)
    with path.open("wb") as stream, pytest.raises(ValueError, match="negative"):
        PcapWriter(stream).write(-1.0, b"")
    with pytest.raises(ValueError, match="bad magic"):
        list(read_pcap(bytes(24)))


@pytest.fixture
def tshark() -> str:
    """tshark's path; skipped when absent, unless CI requires every check."""
    found = shutil.which("tshark")
    if found is None:
        if os.environ.get("PBXGATE_TEST_REQUIRE_ALL"):
            pytest.fail("tshark is not installed but PBXGATE_TEST_REQUIRE_ALL is set")
        pytest.skip("tshark not installed")
    return found


FIELDS = [
    "frame.number",
    "glbp.group",
    "glbp.ownerid",
    "glbp.hello.vgstate",
    "glbp.hello.priority",
    "glbp.hello.helloint",
    "glbp.hello.holdint",
    "glbp.hello.redirect",
    "glbp.hello.timeout",
    "glbp.hello.virtualipv4",
    "glbp.hello.virtualipv6",
    "glbp.reqresp.forwarder",
    "glbp.reqresp.vfstate",
    "glbp.reqresp.priority",
    "glbp.reqresp.weight",
    "glbp.reqresp.virtualmac",
    "glbp.auth.authtype",
    "glbp.auth.plainpass",
    "glbp.auth.md5chainindex",
    "arp.opcode",
    "arp.src.hw_mac",
    "ip.checksum.status",
    "udp.checksum.status",
]


@pytest.mark.tshark
def test_wireshark_dissects_our_frames(tmp_path: Path, tshark: str) -> None:
    path = tmp_path / "glbp.pcap"
    write_pcap(path, capture())
    args = [tshark, "-r", str(path), "-o", "ip.check_checksum:TRUE"]
    args += ["-o", "udp.check_checksum:TRUE", "-T", "fields", "-E", "separator=|"]
    for name in FIELDS:
        args += ["-e", name]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    rows = [dict(zip(FIELDS, line.split("|"), strict=True)) for line in out.splitlines()]
    assert len(rows) == 7

    avg = rows[0]
    assert (avg["glbp.group"], avg["glbp.ownerid"]) == ("1", "aa:bb:cc:00:20:00")
    assert (avg["glbp.hello.vgstate"], avg["glbp.hello.priority"]) == ("32", "110")
    assert (avg["glbp.hello.helloint"], avg["glbp.hello.holdint"]) == ("3000", "10000")
    assert (avg["glbp.hello.redirect"], avg["glbp.hello.timeout"]) == ("600", "14400")
    assert avg["glbp.hello.virtualipv4"] == "192.168.0.254"
    assert avg["glbp.reqresp.forwarder"] == "1,2"
    assert avg["glbp.reqresp.vfstate"] == "32,4"
    assert avg["glbp.reqresp.priority"] == "167,135"
    assert avg["glbp.reqresp.weight"] == "100,90"
    assert avg["glbp.reqresp.virtualmac"] == "00:07:b4:00:01:01,00:07:b4:00:01:02"
    assert (avg["ip.checksum.status"], avg["udp.checksum.status"]) == ("1", "1")

    standby = rows[1]
    assert (standby["glbp.hello.vgstate"], standby["glbp.hello.priority"]) == ("16", "100")
    assert (standby["glbp.hello.helloint"], standby["glbp.hello.holdint"]) == ("1000", "4000")
    assert standby["glbp.reqresp.forwarder"] == ""

    assert rows[2]["arp.opcode"] == "1"
    assert (rows[3]["arp.opcode"], rows[3]["arp.src.hw_mac"]) == ("2", "00:07:b4:00:01:02")

    md5 = rows[4]
    assert (md5["glbp.auth.authtype"], md5["glbp.auth.md5chainindex"]) == ("3", "3")
    assert md5["glbp.hello.vgstate"] == "16"
    text = rows[5]
    assert (text["glbp.auth.authtype"], text["glbp.auth.plainpass"]) == ("1", "CISCO")
    assert text["glbp.reqresp.virtualmac"] == "00:07:b4:00:01:01,00:07:b4:00:01:02"

    v6 = rows[6]
    assert (v6["glbp.group"], v6["glbp.hello.virtualipv6"]) == ("1020", "fe80::1:254")
    assert v6["glbp.reqresp.virtualmac"] == "00:07:b4:03:fc:01"
    assert (v6["glbp.hello.vgstate"], v6["glbp.reqresp.weight"]) == ("4", "254")
    assert v6["udp.checksum.status"] == "1"

    expert = subprocess.run(
        [tshark, "-r", str(path), "-q", "-z", "expert,warn"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "Malformed" not in expert and "Error" not in expert, expert
