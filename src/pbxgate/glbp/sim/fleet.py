"""Many independent GLBP groups, each on its own LAN segment, run serially or in processes.

The benchmark's topology (``benchmarks/glbp_sim.py``): group ``g`` of ``routers`` routers on
segment ``lan{g}``, seeded by ``g``. Segments share nothing: no packet crosses them and the
network orders a segment's heap entries only among themselves (time, then push order, and
every push of a segment comes from handling that segment's own entries). So running groups
``0..k`` and ``k+1..n`` on two separate networks produces, group for group, exactly what one
network of all of them produces; :func:`run_fleet` uses that to spread the groups over worker
processes, and ``tests/glbp/test_sim_parallel.py`` checks the outcomes are identical.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from dataclasses import dataclass

from pbxgate.glbp.engine import GlbpEngine
from pbxgate.glbp.sim.lab import RouterSpec, group_config, make_engine
from pbxgate.glbp.sim.network import Network, Node, WireTransport


@dataclass(frozen=True)
class FleetResult:
    """Totals of a run and every router's final state, in group order."""

    sent: int
    delivered: int
    avgs: int
    outcomes: tuple[str, ...]  # one line per router (see ``outcome``)

    @property
    def digest(self) -> str:
        """A short fingerprint of every router's final state, to compare runs."""
        text = "\n".join(self.outcomes).encode()
        return hashlib.sha256(text).hexdigest()[:16]


def build_fleet(first: int, count: int, routers: int, wire: bool) -> Network:
    """Groups ``first .. first+count-1`` of the benchmark topology on one network."""
    net = Network(transport=WireTransport() if wire else None, keep_events=False)
    for g in range(first, first + count):
        config = group_config(g % 1024, f"10.{g // 250}.{g % 250}.254")
        for r in range(1, routers + 1):
            spec = RouterSpec(
                f"G{g}R{r}", f"10.{g // 250}.{g % 250}.{r}", f"aabb.{g:04x}.{r:04x}", config
            )
            net.attach(Node(spec.name, make_engine(spec, 0.0, seed=g), segment=f"lan{g}"))
    return net


def outcome(name: str, engine: GlbpEngine) -> str:
    """One router's final state: role, counters, deadlines, members, forwarders, rng."""
    fwds = [
        (f.number, f.state.name, f.holder_deadline, f.owner_seen, f.changes)
        for f in engine.forwarders
    ]
    members = sorted((m.mac, m.deadline) for m in engine.members.values())
    state = repr(engine.rng.getstate()) if engine.rng is not None else ""
    rng = hashlib.sha256(state.encode()).hexdigest()[:12]
    counters = engine.counters
    return (
        f"{name} {engine.state.name} {engine.state_changes} {counters} "
        f"hello={engine.next_hello!r} active={engine.active_deadline!r} "
        f"standby={engine.standby_deadline!r} members={members} fwds={fwds} rng={rng}"
    )


def summarize(net: Network) -> FleetResult:
    nodes = net.nodes
    return FleetResult(
        sent=sum(n.engine.counters.sent for n in nodes),
        delivered=net.delivered,
        avgs=sum(1 for n in nodes if n.engine.is_avg),
        outcomes=tuple(outcome(n.name, n.engine) for n in nodes),
    )


def run_shard(first: int, count: int, routers: int, seconds: float, wire: bool) -> FleetResult:
    """Groups ``first .. first+count-1``, one after the other, each on a network of its own.

    The same result as one network of all of them (the module docstring), and faster: a
    4-router heap and its engines stay in the CPU caches, where thousands of interleaved
    engines do not.
    """
    parts = []
    for g in range(first, first + count):
        net = build_fleet(g, 1, routers, wire)
        net.run_until(seconds)
        parts.append(summarize(net))
    return merge(parts)


def merge(parts: list[FleetResult]) -> FleetResult:
    return FleetResult(
        sent=sum(p.sent for p in parts),
        delivered=sum(p.delivered for p in parts),
        avgs=sum(p.avgs for p in parts),
        outcomes=tuple(line for p in parts for line in p.outcomes),
    )


def shards(groups: int, workers: int) -> list[tuple[int, int]]:
    """``groups`` split into at most ``workers`` contiguous ``(first, count)`` runs."""
    workers = max(1, min(workers, groups))
    size, extra = divmod(groups, workers)
    out = []
    first = 0
    for i in range(workers):
        count = size + (1 if i < extra else 0)
        out.append((first, count))
        first += count
    return out


def run_fleet(
    groups: int, routers: int, seconds: float, *, wire: bool = True, workers: int = 1
) -> FleetResult:
    """Run the fleet for ``seconds``; ``workers`` > 1 splits the groups over processes."""
    jobs = [(first, count, routers, seconds, wire) for first, count in shards(groups, workers)]
    if len(jobs) == 1:
        return run_shard(*jobs[0])
    # forkserver, not fork: forking a process that runs other threads (a test runner, an
    # asyncio service) can copy a held lock into the child, which then waits forever.
    with multiprocessing.get_context("forkserver").Pool(len(jobs)) as pool:
        return merge(pool.starmap(run_shard, jobs))


__all__ = ["FleetResult", "build_fleet", "merge", "run_fleet", "run_shard", "shards", "summarize"]
