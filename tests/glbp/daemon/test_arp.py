"""ARP frames of the daemon: decode what Linux sends, encode what the AVG answers."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from pbxgate.glbp.daemon import arp

HOST = bytes.fromhex("021a2b3c4d5e")
AVG = bytes.fromhex("7674f903a86f")
VMAC = bytes.fromhex("0007b4000102")
VIP = IPv4Address("192.168.0.254")

# An ARP request as Linux's neighbour code sends it (42 bytes, no padding: the NIC pads).
LINUX_REQUEST = bytes.fromhex(
    "ffffffffffff021a2b3c4d5e08060001080006040001021a2b3c4d5ec0a8000b000000000000c0a800fe"
)


def test_decode_a_linux_request() -> None:
    packet = arp.decode(LINUX_REQUEST)
    assert packet.op == arp.ARP_REQUEST
    assert packet.sha == HOST and packet.eth_src == HOST
    assert packet.spa == IPv4Address("192.168.0.11")
    assert packet.tpa == VIP
    assert arp.asks_for(packet, VIP)
    assert not arp.asks_for(packet, IPv4Address("192.168.0.1"))


def test_reply_names_the_vmac_but_comes_from_the_avg() -> None:
    request = arp.decode(LINUX_REQUEST)
    frame = arp.reply(request, VMAC, AVG).encode()
    assert len(frame) == 60  # padded to Ethernet's minimum
    answer = arp.decode(frame)
    assert answer.op == arp.ARP_REPLY
    assert answer.eth_dst == HOST and answer.eth_src == AVG  # the switch keeps the vMAC's port
    assert answer.sha == VMAC and answer.spa == VIP
    assert answer.tha == HOST and answer.tpa == IPv4Address("192.168.0.11")


def test_probe_changes_no_cache_and_is_not_answered() -> None:
    probe = arp.decode(arp.probe(VMAC, IPv4Address("192.168.0.2")).encode())
    assert probe.eth_src == VMAC and probe.eth_dst == arp.BROADCAST
    assert probe.spa == IPv4Address(0)  # RFC 5227: hosts learn nothing from a probe
    other_router = arp.probe(VMAC, VIP)
    assert not arp.asks_for(other_router, VIP)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (LINUX_REQUEST[:41], "shorter"),
        (LINUX_REQUEST[:12] + b"\x08\x00" + LINUX_REQUEST[14:], "not ARP"),
        (LINUX_REQUEST[:14] + b"\x00\x06" + LINUX_REQUEST[16:], "IPv4 over Ethernet"),
        (LINUX_REQUEST[:20] + b"\x00\x03" + LINUX_REQUEST[22:], "operation 3"),
    ],
)
def test_what_is_not_an_arp_packet(frame: bytes, reason: str) -> None:
    with pytest.raises(arp.ArpError, match=reason):
        arp.decode(frame)
