"""Load balancing over many hosts: round-robin, weighted, host-dependent and none."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from pbxgate.glbp.config import LoadBalancing
from pbxgate.glbp.engine import Balancer, Candidate, GlbpEngine, host_dependent
from pbxgate.glbp.sim import Network, WireTransport
from pbxgate.glbp.sim.lab import RouterSpec, power_on, routers

HOSTS = [f"0050.79{i // 256:02x}.{i % 256:02x}01" for i in range(600)]


def lan(method: LoadBalancing, weights: tuple[int, ...] = (100, 100, 100)) -> Network:
    specs: list[RouterSpec] = []
    for spec, weight in zip(routers(len(weights)), weights, strict=True):
        config = replace(spec.config, load_balancing=method, weighting=weight)
        specs.append(replace(spec, config=config))
    net = Network(transport=WireTransport())
    for spec in specs:
        power_on(net, spec)
    net.run_until(100.0)
    return net


def avg(net: Network) -> GlbpEngine:
    return next(n.engine for n in net.nodes if n.engine.is_avg)


def owner_of(net: Network, vmac: str) -> str:
    for node in net.nodes:
        if node.engine.forwards(vmac):
            return node.name
    raise AssertionError(vmac)


def test_round_robin_hands_out_each_forwarder_in_turn() -> None:
    net = lan(LoadBalancing.ROUND_ROBIN)
    gateway = avg(net)
    answers = [gateway.arp_request(h, net.now) for h in HOSTS[:9]]
    assert answers[:3] == ["0007.b400.0101", "0007.b400.0102", "0007.b400.0103"]
    assert answers[3:6] == answers[:3] == answers[6:9]
    counts = Counter(gateway.arp_request(h, net.now) for h in HOSTS)
    assert set(counts.values()) == {200}
    assert sorted(f.selections for f in gateway.forwarders) == [203, 203, 203]


def test_weighted_divides_hosts_in_proportion_to_advertised_weights() -> None:
    net = lan(LoadBalancing.WEIGHTED, weights=(60, 30, 10))
    gateway = avg(net)
    shares = Counter(owner_of(net, gateway.arp_request(h, net.now) or "") for h in HOSTS)
    assert shares == {"R1": 360, "R2": 180, "R3": 60}


def test_smooth_weighted_round_robin_interleaves() -> None:
    balancer = Balancer(LoadBalancing.WEIGHTED)
    pool = [Candidate(1, "a", 5), Candidate(2, "b", 1), Candidate(3, "c", 1)]
    picks = [balancer.choose("h", pool, None) for _ in range(7)]
    assert [p.number for p in picks if p] == [1, 1, 2, 1, 3, 1, 1]


def test_host_dependent_is_stable_and_spread() -> None:
    net = lan(LoadBalancing.HOST_DEPENDENT)
    gateway = avg(net)
    first = {h: gateway.arp_request(h, net.now) for h in HOSTS}
    again = {h: gateway.arp_request(h, net.now) for h in reversed(HOSTS)}
    assert first == again
    shares = Counter(first.values())
    assert len(shares) == 3 and min(shares.values()) > 150  # 200 each, give or take


def test_host_dependent_moves_only_the_hosts_of_a_removed_forwarder() -> None:
    pool = [Candidate(n, f"0007.b400.010{n}", 100) for n in (1, 2, 3, 4)]
    before = {h: host_dependent(h, pool).number for h in HOSTS}
    smaller = [c for c in pool if c.number != 3]
    after = {h: host_dependent(h, smaller).number for h in HOSTS}
    moved = [h for h in HOSTS if before[h] != after[h]]
    assert moved and all(before[h] == 3 for h in moved)


def test_none_answers_with_the_avg_own_vmac() -> None:
    net = lan(LoadBalancing.NONE)
    gateway = avg(net)
    own = gateway.forwarders.owned()
    assert own is not None
    assert {gateway.arp_request(h, net.now) for h in HOSTS[:50]} == {own.vmac}


def test_only_the_avg_answers_arp() -> None:
    net = lan(LoadBalancing.ROUND_ROBIN)
    others = [n.engine for n in net.nodes if not n.engine.is_avg]
    assert [e.arp_request(HOSTS[0], net.now) for e in others] == [None, None]
