"""Virtual forwarders: assignment, takeover, redirect and timeout, preemption, the 5th router."""

from __future__ import annotations

from dataclasses import replace

from pbxgate.glbp.engine import FwdStateChange, VfState, virtual_mac
from pbxgate.glbp.sim import Network, WireTransport
from pbxgate.glbp.sim.lab import RouterSpec, power_on, routers


def boot(specs: list[RouterSpec], until: float = 100.0) -> Network:
    net = Network(transport=WireTransport())
    for spec in specs:
        power_on(net, spec)
    net.run_until(until)
    return net


def owners(net: Network, router: str) -> dict[int, str]:
    return {f.number: f.owner_mac for f in net.node(router).engine.forwarders}


def active_for(net: Network, number: int) -> list[str]:
    return [
        n.name
        for n in net.nodes
        if n.powered
        and number in n.engine.forwarders.items
        and n.engine.forwarders.items[number].state is VfState.ACTIVE
    ]


def fwd_changes(net: Network, since: int = 0) -> list[tuple[float, str, int, str, str]]:
    return [
        (e.time, e.router, e.event.forwarder, e.event.old.label, e.event.new.label)
        for e in net.events[since:]
        if isinstance(e.event, FwdStateChange)
    ]


def test_virtual_mac_layout() -> None:
    assert virtual_mac(1, 1) == "0007.b400.0101"
    assert virtual_mac(30, 1) == "0007.b400.1e01"
    assert virtual_mac(1020, 1) == "0007.b403.fc01"  # REF §2, Wireshark


def test_avg_numbers_forwarders_in_request_order_and_each_owner_is_primary() -> None:
    net = boot(routers(4))
    avg = net.node("R4").engine
    assert avg.is_avg
    # The AVG takes number 1 when it becomes Active, the others in the order they asked.
    table = owners(net, "R1")
    assert table[1] == "aabb.cc00.4000"
    assert sorted(table.values()) == sorted(f"aabb.cc00.{n}000" for n in range(1, 5))
    for number, owner in table.items():
        holders = active_for(net, number)
        assert len(holders) == 1
        assert net.node(holders[0]).engine.bia == owner
        for node in net.nodes:
            fwd = node.engine.forwarders.items[number]
            assert fwd.vmac == virtual_mac(1, number)
            expected = VfState.ACTIVE if node.engine.bia == owner else VfState.LISTEN
            assert fwd.state is expected


def test_fifth_router_gets_no_forwarder_and_takes_over_a_dead_one() -> None:
    net = boot(routers(5))
    fifth = next(n for n in net.nodes if n.engine.forwarders.owned() is None)
    assert len(fifth.engine.forwarders) == 4
    victim_number = 2 if net.node("R5").engine.is_avg else 1
    victim_mac = owners(net, fifth.name)[victim_number]
    victim = next(n for n in net.nodes if n.engine.bia == victim_mac)
    net.detach(victim)
    mark, killed = len(net.events), net.now
    net.run_for(15.0)
    assert active_for(net, victim_number) == [fifth.name]  # fewest forwarders goes first
    took = [c for c in fwd_changes(net, mark) if c[3:] == ("Listen", "Active")]
    assert len(took) == 1 and took[0][0] <= killed + 10.0
    assert fifth.engine.forwarders.owned() is None  # it forwards as a secondary (VF pri 135)


def test_redirect_then_timeout_then_the_number_is_reused() -> None:
    net = boot(routers(3, redirect=60, timeout=700))
    avg = net.node("R3").engine
    number = next(n for n, mac in owners(net, "R3").items() if mac == "aabb.cc00.1000")
    vmac = virtual_mac(1, number)
    net.detach(net.node("R1"))
    killed = net.now
    net.run_for(30.0)
    handed = {avg.arp_request(f"0050.7966.68{i:02x}", net.now) for i in range(12)}
    assert vmac in handed  # within the redirect time the AVG still hands out the old vMAC
    assert active_for(net, number)  # and a secondary forwards for it
    net.run_until(killed + 61.0)
    handed = {avg.arp_request(f"0050.7966.69{i:02x}", net.now) for i in range(12)}
    assert vmac not in handed and len(handed) == 2
    net.run_until(killed + 701.0)
    for node in net.nodes:
        if node.powered:
            assert number not in node.engine.forwarders.items
    newcomer = RouterSpec("R9", "192.168.0.9", "aabb.cc00.9000", net.node("R3").engine.config)
    power_on(net, newcomer)
    net.run_for(30.0)
    assert owners(net, "R3")[number] == "aabb.cc00.9000"


def test_a_redirect_shorter_than_a_hello_keeps_live_owners_in_the_balance() -> None:
    """redirect counts once the owner has gone: ``timers redirect 0 700`` (accepted, 0-3600)
    dropped every live owner's vMAC between its hellos, and the AVG handed out its own
    alone."""
    net = boot(routers(3, redirect=0, timeout=700))
    avg = next(n.engine for n in net.nodes if n.engine.is_avg)
    handed = {avg.arp_request(f"0050.7966.68{i:02x}", net.now) for i in range(12)}
    assert handed == {virtual_mac(1, n) for n in (1, 2, 3)}


def test_a_router_that_joins_after_an_owner_died_lets_its_forwarder_be_retired() -> None:
    """R4 joins while a secondary holds dead R1's forwarder: it learnt the secondary as its
    owner with a fresh time to live, took it over when the others timed it out, and the
    number came back for ever, each router taking it in turn. It is retired everywhere."""
    net = boot(routers(3, redirect=60, timeout=700))
    number = next(n for n, mac in owners(net, "R3").items() if mac == "aabb.cc00.1000")
    net.detach(net.node("R1"))
    killed = net.now
    net.run_for(200.0)
    newcomer = RouterSpec("R4", "192.168.0.4", "aabb.cc00.4000", net.node("R3").engine.config)
    power_on(net, newcomer)
    net.run_for(30.0)
    assert owners(net, "R4")[number] == ""  # learnt from a secondary: its owner is unknown
    net.run_until(killed + 2000.0)
    for node in net.nodes:
        if node.powered:
            assert number not in node.engine.forwarders.items, node.name
    avg = next(n.engine for n in net.nodes if n.powered and n.engine.is_avg)
    handed = {avg.arp_request(f"0050.7966.68{i:02x}", net.now) for i in range(12)}
    assert virtual_mac(1, number) not in handed and len(handed) == 3


def test_owner_takes_its_forwarder_back_after_the_preempt_delay() -> None:
    specs = routers(3)
    net = boot(specs)
    number = next(n for n, mac in owners(net, "R3").items() if mac == "aabb.cc00.1000")
    net.detach(net.node("R1"))
    net.run_for(20.0)
    secondary = active_for(net, number)
    assert secondary and secondary != ["R1"]
    power_on(net, specs[0])
    back = net.now
    net.run_for(25.0)  # assigned again, but 30 s of forwarder preemption delay not over
    r1 = net.node("R1").engine
    assert r1.forwarders.owned() is not None and r1.forwarders.owned().number == number
    assert active_for(net, number) == secondary
    net.run_for(30.0)
    assert active_for(net, number) == ["R1"]
    preempted = [
        c for c in fwd_changes(net) if c[1] == "R1" and c[2] == number and c[4] == "Active"
    ]
    assert preempted and preempted[-1][0] >= back + 30.0


def test_forwarder_preemption_off_leaves_the_secondary_forwarding() -> None:
    specs = [replace(s, config=replace(s.config, forwarder_preempt=False)) for s in routers(3)]
    net = boot(specs)
    number = next(n for n, mac in owners(net, "R3").items() if mac == "aabb.cc00.1000")
    net.detach(net.node("R1"))
    net.run_for(20.0)
    secondary = active_for(net, number)
    power_on(net, specs[0])
    net.run_for(200.0)
    assert active_for(net, number) == secondary
    assert net.node("R1").engine.forwarders.items[number].state is VfState.LISTEN
