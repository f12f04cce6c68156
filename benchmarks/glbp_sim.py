"""Simulate many GLBP groups for a simulated hour and report how much faster than real time.

Default: 1,000 groups of 4 routers (each group on its own LAN segment), default timers
(hello 3 s, hold 10 s), one simulated hour, every packet encoded, authenticated (none) and
decoded through the wire codec as on a real LAN. ``--transport message`` skips the codec to show
the engine alone.

    .venv/bin/python benchmarks/glbp_sim.py
    .venv/bin/python benchmarks/glbp_sim.py --groups 100 --seconds 600 --transport message
"""

from __future__ import annotations

import argparse
import time

from pbxgate.glbp.sim import Network, WireTransport
from pbxgate.glbp.sim.lab import RouterSpec, group_config, make_engine
from pbxgate.glbp.sim.network import Node


def build(groups: int, routers: int, wire: bool) -> Network:
    net = Network(transport=WireTransport() if wire else None, keep_events=False)
    for g in range(groups):
        group = g % 1024
        config = group_config(group, f"10.{g // 250}.{g % 250}.254")
        for r in range(1, routers + 1):
            spec = RouterSpec(
                f"G{g}R{r}", f"10.{g // 250}.{g % 250}.{r}", f"aabb.{g:04x}.{r:04x}", config
            )
            net.attach(Node(spec.name, make_engine(spec, 0.0, seed=g), segment=f"lan{g}"))
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--routers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--transport", choices=("wire", "message"), default="wire")
    args = parser.parse_args()
    start = time.perf_counter()
    net = build(args.groups, args.routers, args.transport == "wire")
    built = time.perf_counter()
    net.run_until(args.seconds)
    done = time.perf_counter()
    wall = done - built
    sent = sum(n.engine.counters.sent for n in net.nodes)
    events = sent + net.delivered
    active = sum(1 for n in net.nodes if n.engine.is_avg)
    print(
        f"groups={args.groups} routers/group={args.routers} simulated={args.seconds:.0f}s "
        f"transport={args.transport}"
    )
    print(
        f"setup {built - start:.2f}s, run {wall:.2f}s wall, "
        f"{args.seconds / wall:.0f}x faster than real time"
    )
    print(
        f"packets sent {sent}, deliveries {net.delivered}, "
        f"{events / wall:,.0f} packet events/s; AVGs elected {active}/{args.groups}"
    )


if __name__ == "__main__":
    main()
