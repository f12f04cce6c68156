"""The namespace lab itself: forwarding, counters, ARP, link failures, captures, teardown.

Two routers forward statically here (the host's gateway is r1's own address, not a virtual IP),
so every expectation follows from the topology alone, with no GLBP daemon involved.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import pytest

from pbxgate.glbp.pcap import read_pcap
from tests.glbp.live.netns import (
    INTERNET,
    LAN,
    Lab,
    PingResult,
    cleanup_stale,
    netns_names,
    parse_ping,
    require,
    wait_for,
)

R1_LAN = "192.168.0.1"


@pytest.fixture
def static(lab: Lab) -> Lab:
    """r1 and r2 on the LAN, h1 routed through r1's own address; h1 has reached the internet."""
    require("ping", "iputils-ping")
    lab.add_router("r1")
    lab.add_router("r2")
    lab.add_host("h1", gateway=R1_LAN)
    wait_for(lambda: _ping(lab, "h1", INTERNET), 5, what="h1 to reach the internet via r1")
    return lab


def _ping(lab: Lab, host: str, target: str, count: int = 1) -> bool:
    done = lab.run(
        host, "ping", "-n", "-q", "-c", str(count), "-i", "0.01", "-W1", target, check=False
    )
    return done.returncode == 0


def _pids(netns: str) -> list[str]:
    return subprocess.run(
        ["ip", "netns", "pids", netns], check=False, capture_output=True, text=True
    ).stdout.split()


def _ours(lab_id: str) -> list[str]:
    return [name for name in netns_names() if name.startswith(f"{lab_id}-")]


def test_traffic_to_the_gateway_is_counted_on_its_lan_ingress_only(static: Lab) -> None:
    before = {router: static.rx_packets(router, "eth0") for router in ("r1", "r2")}
    assert _ping(static, "h1", INTERNET, count=20)
    assert static.rx_packets("r1", "eth0") - before["r1"] >= 20
    assert static.rx_packets("r2", "eth0") == before["r2"]
    assert static.link_stats("r1")["eth0"] >= before["r1"] + 20


def test_link_stats_lists_every_link_of_the_namespace(static: Lab) -> None:
    static.run(
        "r1", "ip", "link", "add", "glbp1", "link", "eth0", "type", "macvlan", "mode", "private"
    )
    assert set(static.link_stats("r1")) == {"lo", "eth0", "eth1", "glbp1"}


def test_the_host_resolves_its_gateway_to_r1s_eth0_mac(static: Lab) -> None:
    r1_mac = static.mac("r1", "eth0")
    assert static.neighbour_mac("h1", R1_LAN) == r1_mac
    assert static.resolve("h1", R1_LAN) == r1_mac
    assert static.neighbour_mac("h1", R1_LAN) == r1_mac
    assert static.arping("h1", R1_LAN) == [r1_mac]


def test_an_address_nobody_holds_resolves_to_none(static: Lab) -> None:
    assert static.resolve("h1", "192.168.0.254", timeout=0.5) is None
    assert static.neighbour_mac("h1", "192.168.0.254") is None


def test_uplink_down_drops_the_routers_carrier_and_the_pinger_sees_the_outage(static: Lab) -> None:
    pinger = static.pinger("h1", INTERNET, interval=0.05)
    wait_for(lambda: pinger.progress().received >= 5, 5, what="replies before the failure")
    static.uplink_down("r1")
    assert static.sys("r1", "eth1", "carrier") == "0"
    assert static.operstate("r1", "eth1") == "down"
    wait_for(lambda: len(pinger.progress().lost) >= 5, 5, what="losses while r1's uplink is down")
    static.uplink_up("r1")
    wait_for(lambda: static.operstate("r1", "eth1") == "up", 5, what="r1's eth1 to come back")
    resumed = pinger.progress().received
    wait_for(lambda: pinger.progress().received >= resumed + 5, 5, what="replies after repair")
    sent, received, lost = pinger.stop()
    assert len(lost) >= 5
    assert sent >= received + len(lost)
    assert max(lost) < sent


def test_the_wan_returns_traffic_through_the_first_router_with_both_links_up(static: Lab) -> None:
    def via() -> list[str]:
        routes = static.run("wan", "ip", "route", "show", LAN).stdout.splitlines()
        return [route.split()[2] for route in routes]

    assert via() == ["10.0.1.2", "10.0.2.2"]
    static.uplink_down("r1")
    assert via() == ["10.0.2.2"]
    static.uplink_up("r1")
    static.lan_link("r2", False)
    assert via() == ["10.0.1.2"]
    assert wait_for(lambda: static.sys("r2", "eth0", "carrier") == "0", 2, what="r2 eth0 down")
    static.lan_link("r2", True)
    assert via() == ["10.0.1.2", "10.0.2.2"]


def test_replies_come_back_through_r2_while_r1s_uplink_is_down(lab: Lab) -> None:
    lab.add_router("r1")
    lab.add_router("r2")
    lab.add_host("h1", gateway="192.168.0.2")
    lab.uplink_down("r1")
    assert wait_for(lambda: _ping(lab, "h1", INTERNET), 5, what="h1 to reach the internet via r2")


def test_glbp_multicast_floods_to_every_port(static: Lab) -> None:
    before = static.rx_packets("h1", "eth0")
    with static.capture("r2", "eth0") as pcap:
        static.run("r1", "ping", "-c1", "-W0.1", "-t1", "-I", "eth0", "224.0.0.102", check=False)
        wait_for(lambda: static.rx_packets("h1", "eth0") > before, 2, what="h1 to hear it")
    frames = [record.frame for record in read_pcap(pcap.read_bytes())]
    assert any(frame[:6] == bytes.fromhex("01005e000066") for frame in frames)


def test_teardown_stops_processes_and_deletes_every_namespace(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Lab(workdir=tmp_path) as lab:
        lab.add_router("r1")
        lab.add_host("h1")
        sleeper = lab.popen("r1", "sleep", "600")
        assert len(_ours(lab.id)) == 4
        raise RuntimeError("boom")
    assert sleeper.returncode is not None
    assert _ours(lab.id) == []


def test_cleanup_stale_removes_crashed_labs_and_keeps_live_ones(tmp_path: Path) -> None:
    prefix = "t" + secrets.token_hex(2)  # this run's own: parallel runs leave each other be
    crashed = f"{prefix}0bad-r1"
    subprocess.run(["ip", "netns", "add", crashed], check=True)
    orphan = subprocess.Popen(["ip", "netns", "exec", crashed, "sleep", "600"])
    try:
        wait_for(lambda: _pids(crashed) == [str(orphan.pid)], 5, what="the orphan in its netns")
        with Lab(workdir=tmp_path, prefix=prefix) as live:
            assert cleanup_stale(prefix) == [crashed]
            assert len(_ours(live.id)) == 2
        assert orphan.wait(5) != 0
        assert crashed not in netns_names()
    finally:
        orphan.kill()
        orphan.wait()
        subprocess.run(["ip", "netns", "del", crashed], check=False, capture_output=True)


def test_nodes_are_named_within_the_interface_name_limit(lab: Lab) -> None:
    with pytest.raises(ValueError, match="not"):
        lab.add_host("averylonghostname")
    with pytest.raises(KeyError, match="no node 'r9'"):
        lab.run("r9", "true")


def test_parse_ping_counts_late_replies_as_received_and_errors_as_lost() -> None:
    text = "\n".join(
        [
            "[10.00] 64 bytes from 198.51.100.1: icmp_seq=1 ttl=63 time=0.1 ms",
            "[10.05] no answer yet for icmp_seq=2",
            "[10.10] From 192.168.0.1 icmp_seq=3 Destination Net Unreachable",
            "[10.15] no answer yet for icmp_seq=3",
            "[10.20] no answer yet for icmp_seq=4",
            "[10.30] 64 bytes from 198.51.100.1: icmp_seq=4 ttl=63 time=100 ms",
            "[10.30] 64 bytes from 198.51.100.1: icmp_seq=5 ttl=63 time=0.1 ms",
            "",
            "--- 198.51.100.1 ping statistics ---",
            "6 packets transmitted, 3 received, +1 errors, 50% packet loss, time 250ms",
        ]
    )
    result = parse_ping(text)
    assert tuple(result) == (6, 3, [2, 3])
    assert result.longest_loss_run() == 2
    assert result.longest_outage_ms(0.05) == pytest.approx(100.0)
    assert result.longest_silence_ms() == pytest.approx(300.0)
    assert PingResult(3, 0, [1, 3]).longest_loss_run() == 1
