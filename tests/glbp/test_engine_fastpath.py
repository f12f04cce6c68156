"""The steady-state shortcut (engine/fastpath.py) never changes what happens."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from pbxgate.glbp.sim import Network, WireTransport, load_topology, run_simulation
from pbxgate.glbp.sim.fleet import outcome
from pbxgate.glbp.sim.lab import RouterSpec, power_on, routers

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "glbp"


@pytest.mark.parametrize("name", ["article.toml", "five-routers.toml"])
def test_examples_report_the_same_with_and_without_the_shortcut(name: str) -> None:
    topology = load_topology(EXAMPLES / name)
    fast = run_simulation(topology, capture=True)
    full = run_simulation(topology, capture=True, fast_path=False)
    assert fast.report == full.report
    assert fast.frames == full.frames


def _chaos(seed: int, fast: bool, specs: list[RouterSpec] | None = None) -> list[str]:
    """Routers going off and on and links flapping at random times, logged."""
    rng = random.Random(seed)
    net = Network(transport=WireTransport())
    specs = specs or routers(5, redirect=40, timeout=700)
    nodes = {s.name: power_on(net, s, seed) for s in specs}
    for node in nodes.values():
        node.engine.fast_path = fast
    for _ in range(25):
        net.run_for(rng.uniform(1.0, 40.0))
        spec = rng.choice(specs)
        node = nodes[spec.name]
        if node.powered and rng.random() < 0.4:
            net.detach(node)
        elif not node.powered:
            nodes[spec.name] = power_on(net, spec, seed)
            nodes[spec.name].engine.fast_path = fast
        else:
            node.engine.set_interface(not node.engine.interface_up, net.now)
            net.service(node)
    net.run_for(800.0)
    log = [f"{e.time:.6f} {e.router} {e.event.log_line}" for e in net.events]
    return log + [outcome(n.name, n.engine) for n in net.nodes if n.powered]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_failures_log_the_same_with_and_without_the_shortcut(seed: int) -> None:
    fast = _chaos(seed, True)
    assert len(fast) > 50
    assert fast == _chaos(seed, False)


def _mixed_timers() -> list[RouterSpec]:
    """Routers whose own hello/hold differ, so the learned hold (and every deadline counted
    from it) jumps earlier or later whenever another router becomes AVG."""
    timers = [(1.0, 4.0), (3.0, 10.0), (0.5, 2.0), (2.0, 7.0), (3.0, 10.0)]
    return [
        replace(
            spec,
            config=replace(
                spec.config, hello=hello, hold=hold, priority=100 + 5 * n, preempt=n % 2 == 0
            ),
        )
        for n, (spec, (hello, hold)) in enumerate(
            zip(routers(5, redirect=40, timeout=700), timers, strict=True)
        )
    ]


@pytest.mark.parametrize("seed", [4, 5])
def test_mixed_timers_log_the_same_with_and_without_the_shortcut(seed: int) -> None:
    fast = _chaos(seed, True, _mixed_timers())
    assert len(fast) > 50
    assert fast == _chaos(seed, False, _mixed_timers())
