"""``show glbp``, ``show glbp brief``, ``show track`` and ``debug glbp`` against the article."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pbxgate.glbp.config import TrackConfig, WeightingTrack
from pbxgate.glbp.engine import ForwarderPart, HelloPart, Message, VfState, VgState
from pbxgate.glbp.engine.views import snapshot
from pbxgate.glbp.show import (
    BRIEF_HEADER,
    TrackStatus,
    debug_packet,
    show_glbp,
    show_track,
    track_log,
    uptime,
)
from pbxgate.glbp.sim import Network, WireTransport
from pbxgate.glbp.sim.lab import RouterSpec, group_config, power_on

GOLDENS = Path(__file__).parent / "goldens"
CFG = group_config()
R2 = RouterSpec("R2", "192.168.0.1", "aabb.cc00.2000", CFG)
R3 = RouterSpec("R3", "192.168.0.2", "aabb.cc00.3000", CFG)
R4 = RouterSpec("R4", "192.168.0.3", "aabb.cc00.4000", CFG)
R5 = RouterSpec("R5", "192.168.0.4", "aabb.cc00.5000", CFG)


def article_three_routers() -> Network:
    """The article's R2, R3, R4: R2 boots first and stays AVG (preemption is off)."""
    net = Network(transport=WireTransport())
    power_on(net, R2)
    net.run_until(30.0)
    power_on(net, R3)
    net.run_until(41.0)
    power_on(net, R4)
    net.run_until(430.3)
    return net


def test_show_glbp_on_the_avg_matches_the_article_view(golden) -> None:  # type: ignore[no-untyped-def]
    net = article_three_routers()
    text = show_glbp([snapshot(net.node("R2").engine)], net.now)
    golden(GOLDENS / "show_article_r2.txt", text + "\n")
    assert "  State is Active\n    1 state change, last state change 00:06:" in text
    assert "  Standby is 192.168.0.3, priority 100 (expires in " in text
    assert "  There are 3 forwarders (1 active)" in text
    assert "    MAC address is 0007.b400.0102 (learnt)" in text
    assert "    Active is 192.168.0.2 (primary), weighting 100 (expires in " in text


def test_show_glbp_on_the_standby_and_a_listener() -> None:
    net = article_three_routers()
    r4 = show_glbp([snapshot(net.node("R4").engine)], net.now)
    r3 = show_glbp([snapshot(net.node("R3").engine)], net.now)
    assert "  State is Standby" in r4 and "  Standby is local" in r4
    assert "  Active is 192.168.0.1, priority 100 (expires in " in r4
    assert "  State is Listen" in r3 and "Redirection" not in r3  # the AVG only


def test_show_glbp_brief_with_four_forwarders_matches_the_article(golden) -> None:  # type: ignore[no-untyped-def]
    """R2 (priority 110) was AVG, flapped, came back as Standby and took Fwd 1 back."""
    r2 = replace(R2, config=replace(CFG, priority=110))
    net = Network(transport=WireTransport())
    power_on(net, r2)
    net.run_until(40.0)
    for at, spec in ((40.0, R3), (45.0, R4), (50.0, R5)):
        net.run_until(at)
        power_on(net, spec)
    net.run_until(100.0)
    node = net.node("R2")
    node.engine.set_interface(False, net.now)
    net.service(node)
    net.run_until(130.0)
    node.engine.set_interface(True, net.now)
    net.service(node)
    net.run_until(250.0)
    text = show_glbp([snapshot(node.engine)], net.now, ["brief"])
    golden(GOLDENS / "show_article_brief.txt", text + "\n")
    assert text.splitlines() == [
        BRIEF_HEADER,
        "Et0/0       1    -   110 Standby  192.168.0.254   192.168.0.4     local",
        "Et0/0       1    1   -   Active   0007.b400.0101  local           -",
        "Et0/0       1    2   -   Listen   0007.b400.0102  192.168.0.2     -",
        "Et0/0       1    3   -   Listen   0007.b400.0103  192.168.0.3     -",
        "Et0/0       1    4   -   Listen   0007.b400.0104  192.168.0.4     -",
    ]


def test_learned_timers_show_the_configured_ones() -> None:
    avg = replace(R4, config=replace(CFG, priority=200, hello=1.0, hold=4.0))
    net = Network(transport=WireTransport())
    for spec in (R2, avg):
        power_on(net, spec)
    net.run_until(60.0)
    text = show_glbp([snapshot(net.node("R2").engine)], net.now)
    assert "  Hello time 1 sec (cfgd 3 sec), hold time 4 sec (cfgd 10 sec)" in text


def test_msec_timers_and_weighting_low_with_tracks() -> None:
    config = replace(
        CFG,
        hello=0.25,
        hold=0.8,
        hello_msec=True,
        hold_msec=True,
        weighting=110,
        weighting_lower=95,
        weighting_upper=105,
        weighting_tracks=(WeightingTrack(1, 20),),
    )
    net = Network(transport=WireTransport())
    node = power_on(net, replace(R2, config=config))
    net.run_until(5.0)
    node.engine.set_track(1, False, net.now)
    text = show_glbp([snapshot(node.engine)], net.now)
    assert "  Hello time 250 msec, hold time 800 msec" in text
    assert "  Weighting 90, low (configured 110), thresholds: lower 95, upper 105" in text
    assert "    Track object 1 state Down decrement 20" in text


def test_filters_by_interface_group_and_state() -> None:
    net = article_three_routers()
    views = [snapshot(n.engine) for n in net.nodes]
    assert show_glbp(views, net.now, ["Et0/0", "1", "active", "brief"]).count("\n") == 4
    assert show_glbp(views, net.now, ["Ethernet0/0", "2"]) == ""
    assert show_glbp(views, net.now, ["standby"]).count("State is Standby") == 1


def test_show_track() -> None:
    status = TrackStatus(1, "Ethernet0/1", False, 2, 100.0, (("Ethernet0/0", 1),))
    assert show_track([status], 172.0).splitlines() == [
        "Track 1",
        "  Interface Ethernet0/1 line-protocol",
        "  Line protocol is Down",
        "    2 changes, last change 00:01:12",
        "  Tracked by:",
        "    GLBP Ethernet0/0 1",
    ]
    brief = show_track([status], 172.0, brief=True).splitlines()
    assert brief[1].split() == [
        "1",
        "interface",
        "Ethernet0/1",
        "line-protocol",
        "Down",
        "00:01:12",
    ]
    assert uptime(90061) == "1d01h"


def test_show_track_of_a_route() -> None:
    route = IPv4Network("10.0.0.0/8")
    status = TrackStatus(2, "", True, 1, 150.0, (("Ethernet0/0", 1),), route)
    assert show_track([status], 177.0).splitlines()[:4] == [
        "Track 2",
        "  IP route 10.0.0.0 255.0.0.0 reachability",
        "  Reachability is Up",
        "    1 change, last change 00:00:27",
    ]
    brief = show_track([status], 177.0, brief=True).splitlines()[1].split()
    assert brief == ["2", "ip", "route", "10.0.0.0/8", "reachability", "Up", "00:00:27"]
    track = TrackConfig(2, "", "reachability", route)
    assert track_log(track, False) == (
        "%TRACK-6-STATE: 2 ip route 10.0.0.0/8 reachability Up -> Down"
    )
    assert track_log(TrackConfig(1, "Ethernet0/1"), True) == (
        "%TRACK-6-STATE: 1 interface Et0/1 line-protocol Down -> Up"
    )


def test_debug_line_matches_the_real_ios_sample() -> None:
    hello = HelloPart(VgState.ACTIVE, 150, 3000, 10000, 600, 14400, IPv4Address("10.10.10.1"))
    part = ForwarderPart(1, VfState.ACTIVE, 167, 100, "0007.b400.0101")
    message = Message(1, "0011.2233.4455", hello, (part,))
    line = debug_packet("FastEthernet0/0", "in", IPv4Address("10.10.10.3"), message)
    # jtdub.com 2010: the one real sample of this line.
    assert line == (
        "GLBP: Fa0/0 Grp 1 Hello  in  10.10.10.3 VG Active  pri 150 vIP 10.10.10.1 "
        "hello 3000, hold 10000 VF 1 Active  pri 167 vMAC 0007.b400.0101"
    )
