"""AVG election, standby takeover and preemption, on a virtual clock (no sleeps)."""

from __future__ import annotations

from pbxgate.glbp.engine import StateChange, VgState
from pbxgate.glbp.sim import Network
from pbxgate.glbp.sim.lab import RouterSpec, group_config, power_on, routers


def boot(specs: list[RouterSpec], until: float = 60.0) -> Network:
    net = Network()
    for spec in specs:
        power_on(net, spec)
    net.run_until(until)
    return net


def states(net: Network) -> dict[str, VgState]:
    return {n.name: n.engine.state for n in net.nodes if n.powered}


def test_equal_priority_elects_the_highest_ip_and_the_next_as_standby() -> None:
    net = boot(routers(3))
    assert states(net) == {"R1": VgState.LISTEN, "R2": VgState.STANDBY, "R3": VgState.ACTIVE}
    r1 = net.node("R1").engine
    assert r1.active is not None and str(r1.active.ip) == "192.168.0.3"
    assert r1.standby is not None and str(r1.standby.ip) == "192.168.0.2"


def test_priority_beats_address() -> None:
    specs = routers(3)
    specs[0] = RouterSpec("R1", "192.168.0.1", "aabb.cc00.1000", group_config(priority=150))
    specs[1] = RouterSpec("R2", "192.168.0.2", "aabb.cc00.2000", group_config(priority=120))
    net = boot(specs)
    assert states(net) == {"R1": VgState.ACTIVE, "R2": VgState.STANDBY, "R3": VgState.LISTEN}


def test_avg_failure_standby_takes_over_after_hold_and_a_new_standby_is_elected() -> None:
    net = boot(routers(4))
    assert net.node("R4").engine.state is VgState.ACTIVE
    assert net.node("R3").engine.state is VgState.STANDBY
    net.detach(net.node("R4"))
    killed = net.now
    net.run_for(9.0)
    assert net.node("R3").engine.state is VgState.STANDBY  # hold time (10 s) not over yet
    net.run_for(30.0)
    assert states(net) == {"R1": VgState.LISTEN, "R2": VgState.STANDBY, "R3": VgState.ACTIVE}
    takeover = [
        e.time
        for e in net.events
        if e.router == "R3" and isinstance(e.event, StateChange) and e.event.new is VgState.ACTIVE
    ]
    assert len(takeover) == 1 and killed + 7.0 <= takeover[0] <= killed + 10.0


def test_preemption_off_by_default_a_better_router_does_not_take_the_avg_role() -> None:
    net = boot(routers(2))
    assert net.node("R2").engine.state is VgState.ACTIVE
    better = RouterSpec("R9", "192.168.0.9", "aabb.cc00.9000", group_config(priority=200))
    power_on(net, better)
    net.run_for(120.0)
    assert net.node("R2").engine.state is VgState.ACTIVE
    assert net.node("R9").engine.state is VgState.STANDBY


def test_preemption_on_with_minimum_delay() -> None:
    net = boot(routers(2))
    better = RouterSpec(
        "R9",
        "192.168.0.9",
        "aabb.cc00.9000",
        group_config(priority=200, preempt=True, preempt_delay=20),
    )
    power_on(net, better)
    booted = net.now
    net.run_for(15.0)
    assert net.node("R2").engine.state is VgState.ACTIVE
    net.run_for(60.0)
    assert net.node("R9").engine.state is VgState.ACTIVE
    assert net.node("R2").engine.state is VgState.STANDBY
    changes = [
        e
        for e in net.events
        if e.router == "R9" and isinstance(e.event, StateChange) and e.event.new is VgState.ACTIVE
    ]
    # the delay runs on through Listen -> Speak -> Standby (it restarted at each: 20 s took
    # 31); the preemption comes with the first hello after it
    assert changes and booted + 20.0 <= changes[0].time <= booted + 24.0
    assert changes[0].event.log_line.startswith("%GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state ")


def test_hello_and_hold_are_learned_from_the_avg_and_configured_values_kept() -> None:
    specs = routers(2)
    specs[1] = RouterSpec(
        "R2", "192.168.0.2", "aabb.cc00.2000", group_config(priority=200, hello=1.0, hold=4.0)
    )
    net = boot(specs)
    r1 = net.node("R1").engine
    assert net.node("R2").engine.state is VgState.ACTIVE
    assert (r1.hello, r1.hold) == (1.0, 4.0)
    assert (r1.config.hello, r1.config.hold) == (3.0, 10.0)


def test_msec_timers_fail_over_within_the_hold_time() -> None:
    specs = routers(2, hello=0.25, hold=0.8, hello_msec=True, hold_msec=True)
    net = boot(specs, until=10.0)
    assert net.node("R2").engine.state is VgState.ACTIVE
    net.detach(net.node("R2"))
    net.run_for(0.5)  # the last hello was at most 0.25 s ago: 0.8 s hold not over
    assert net.node("R1").engine.state is VgState.STANDBY
    net.run_for(0.31)
    assert net.node("R1").engine.state is VgState.ACTIVE


def test_debug_events_use_the_ios_letter_codes() -> None:
    net = Network()
    nodes = [power_on(net, spec) for spec in routers(3)]
    for node in nodes:
        node.engine.debug = True
    net.run_until(60.0)
    net.detach(net.node("R3"))
    net.run_for(15.0)
    lines = [e.event.log_line for e in net.events if e.router == "R2"]
    # JTD (real IOS): "GLBP: Fa0/0 1 Standby: g/Active timer expired (10.10.10.3)"
    assert "GLBP: Et0/0 1 Standby: g/Active timer expired (192.168.0.3)" in lines
    index = lines.index("GLBP: Et0/0 1 Standby: g/Active timer expired (192.168.0.3)")
    assert lines[index + 1] == "%GLBP-6-STATECHANGE: Ethernet0/0 Grp 1 state Standby -> Active"
