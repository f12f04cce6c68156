"""Weighting thresholds with tracking (hysteresis), authentication and malformed packets."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

from pbxgate.config import Secret
from pbxgate.glbp.config import AuthConfig, AuthMode, WeightingTrack
from pbxgate.glbp.engine import BadAuth, VfState, VgState
from pbxgate.glbp.sim import Network, WireTransport
from pbxgate.glbp.sim.lab import RouterSpec, power_on, routers


def boot(specs: list[RouterSpec], until: float = 100.0) -> Network:
    net = Network(transport=WireTransport())
    for spec in specs:
        power_on(net, spec)
    net.run_until(until)
    return net


def tracked(spec: RouterSpec) -> RouterSpec:
    config = replace(
        spec.config,
        weighting=130,
        weighting_lower=50,
        weighting_upper=110,
        weighting_tracks=(WeightingTrack(1, 40), WeightingTrack(2, 40)),
    )
    return replace(spec, config=config)


def active_for(net: Network, number: int) -> list[str]:
    return [
        n.name
        for n in net.nodes
        if n.powered and n.engine.forwarders.items[number].state is VfState.ACTIVE
    ]


def test_tracking_below_lower_gives_forwarders_up_and_back_only_above_upper() -> None:
    specs = routers(3)
    specs[0] = tracked(specs[0])
    net = boot(specs)
    r1 = net.node("R1").engine
    own = r1.forwarders.owned()
    assert own is not None and own.state is VfState.ACTIVE and r1.weight == 130
    r1.set_track(1, False, net.now)  # 130 - 40 = 90: still above lower 50
    net.service(net.node("R1"))
    net.run_for(15.0)
    assert r1.weight == 90 and active_for(net, own.number) == ["R1"]
    r1.set_track(2, False, net.now)  # 130 - 80 = 50 ... not below 50
    net.service(net.node("R1"))
    net.run_for(15.0)
    assert active_for(net, own.number) == ["R1"]
    r1.set_config(replace(r1.config, weighting_lower=60), net.now)  # now 50 < lower 60
    net.service(net.node("R1"))
    net.run_for(15.0)
    assert not r1.weight_ok
    holders = active_for(net, own.number)
    assert holders and "R1" not in holders  # a secondary forwards within the hold time
    r1.set_track(1, True, net.now)  # 90: above lower but below upper 110 -> stays out
    net.service(net.node("R1"))
    net.run_for(60.0)
    assert not r1.weight_ok and "R1" not in active_for(net, own.number)
    r1.set_track(2, True, net.now)  # 130 >= upper 110: takes it back after the preempt delay
    net.service(net.node("R1"))
    net.run_for(25.0)
    assert "R1" not in active_for(net, own.number)
    net.run_for(10.0)
    assert active_for(net, own.number) == ["R1"]


def test_weighting_never_moves_the_avg_role() -> None:
    specs = routers(3)
    specs[2] = tracked(specs[2])
    net = boot(specs)
    r3 = net.node("R3").engine
    assert r3.is_avg
    r3.set_config(replace(r3.config, weighting_lower=100), net.now)
    r3.set_track(1, False, net.now)
    net.service(net.node("R3"))
    net.run_for(60.0)
    assert r3.is_avg and not r3.weight_ok
    assert all(f.state is VfState.LISTEN for f in r3.forwarders)


def test_authentication_mismatch_isolates_a_router_and_logs_badauth() -> None:
    secret = AuthConfig(AuthMode.TEXT, Secret("CISCO"))
    specs = [replace(s, config=replace(s.config, authentication=secret)) for s in routers(3)]
    specs[2] = replace(specs[2], config=replace(specs[2].config, authentication=AuthConfig()))
    net = boot(specs)
    r1, r2, r3 = (net.node(n).engine for n in ("R1", "R2", "R3"))
    assert r3.is_avg and r2.is_avg  # two AVGs: each side sees only itself
    assert r3.forwarders.owned() is not None and len(r3.forwarders) == 1
    assert {f.owner_mac for f in r1.forwarders} == {r1.bia, r2.bia}
    assert r1.counters.bad_auth > 0 and r3.counters.bad_auth > 0
    bad = [e.event for e in net.events if isinstance(e.event, BadAuth)]
    assert bad[0].log_line in {
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.3, group 1",
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.1, group 1",
        "%GLBP-4-BADAUTH: Bad authentication received from 192.168.0.2, group 1",
    }
    assert "CISCO" not in " ".join(e.event.log_line for e in net.events)


def test_md5_key_string_peers_agree() -> None:
    md5 = AuthConfig(AuthMode.MD5_KEY_STRING, Secret("s3cret"))
    specs = [replace(s, config=replace(s.config, authentication=md5)) for s in routers(3)]
    net = boot(specs)
    assert [n.engine.state for n in net.nodes] == [
        VgState.LISTEN,
        VgState.STANDBY,
        VgState.ACTIVE,
    ]
    assert sum(n.engine.counters.bad_auth for n in net.nodes) == 0


def test_malformed_packets_are_counted_and_dropped() -> None:
    net = boot(routers(2))
    engine = net.node("R1").engine
    before = (engine.state, engine.counters.received)
    src = IPv4Address("192.168.0.77")
    for junk in (b"", b"\x01", b"\x02" + bytes(20), b"\x01\x00\x00\x01" + bytes(8) + b"\x01\x00"):
        engine.receive_packet(junk, src, net.now)
    assert engine.counters.malformed == 4
    assert (engine.state, engine.counters.received) == before
