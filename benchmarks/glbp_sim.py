"""Simulate many GLBP groups for a simulated hour and report how much faster than real time.

Default: 1,000 groups of 4 routers (each group on its own LAN segment), default timers
(hello 3 s, hold 10 s), one simulated hour, every packet encoded, authenticated (none) and
decoded through the wire codec as on a real LAN. The segments are independent, so the groups
are split over ``--workers`` processes (default: one per CPU); the result is the same, group
for group, as one process (``--workers 1``), and the printed digest of every router's final
state shows it. ``--transport message`` skips the codec to show the engine alone.

    .venv/bin/python benchmarks/glbp_sim.py
    .venv/bin/python benchmarks/glbp_sim.py --workers 1
    .venv/bin/python benchmarks/glbp_sim.py --groups 100 --seconds 600 --transport message
"""

from __future__ import annotations

import argparse
import os
import time

from pbxgate.glbp.sim.fleet import run_fleet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--routers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--transport", choices=("wire", "message"), default="wire")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    start = time.perf_counter()
    result = run_fleet(
        args.groups,
        args.routers,
        args.seconds,
        wire=args.transport == "wire",
        workers=args.workers,
    )
    wall = time.perf_counter() - start
    events = result.sent + result.delivered
    print(
        f"groups={args.groups} routers/group={args.routers} simulated={args.seconds:.0f}s "
        f"transport={args.transport} workers={args.workers}"
    )
    print(
        f"build+run {wall:.2f}s wall, {args.seconds / wall:.0f}x faster than real time, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(
        f"packets sent {result.sent}, deliveries {result.delivered}, "
        f"{events / wall:,.0f} packet events/s; AVGs elected {result.avgs}/{args.groups}; "
        f"final-state digest {result.digest}"
    )


if __name__ == "__main__":
    main()
