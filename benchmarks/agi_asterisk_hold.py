"""How long pbxgate's AGI step holds a call, measured by a real Asterisk 22.

Runs the test office (tests/asterisk/: the vendored Asterisk, built once and cached) with
``pbxgate serve`` beside it, places inbound calls one at a time to a ring group DID (FastAGI) and
to a direct DID (``pbxgate-agi``, the process AGI), and reads the hold from Asterisk's own log:
the ``Verbose`` markers around ``AGI()`` in the dialplan, stamped to the millisecond.

With ``--burst N`` the calls come N at a time instead (FastAGI only): the caller's Asterisk
is asked for N calls at once, and the next N once they have all ended. The report then says
how many AGI steps Asterisk had in progress at once, at most.

    PBXGATE_TEST_MARIADB_DSN=... PBXGATE_TEST_POSTGRESQL_DSN=... \\
        .venv/bin/python benchmarks/agi_asterisk_hold.py --calls 50 [--burst 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.asterisk.office import (
    DID_PREFIX,
    PHONES,
    Databases,
    Office,
    _inbound,
)
from tests.asterisk.pbxgate_side import Hold, PbxgateSide, holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per AGI kind")
    parser.add_argument(
        "--burst", type=int, default=0, help="FastAGI calls asked for at once (0: one at a time)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pbxgate-hold-"))
    side = PbxgateSide(root / "pbxgate")
    databases = Databases(
        os.environ["PBXGATE_TEST_MARIADB_DSN"], os.environ["PBXGATE_TEST_POSTGRESQL_DSN"]
    )
    subs = {"FASTAGI_PORT": str(side.port), "AGI_SCRIPT": str(side.agi_script)}
    office = Office(root, databases, subs, side.env)
    side.start()
    try:
        office.start()
        for ext in PHONES:
            office.world.cli(f"database put phone {ext} busy")
        if args.burst:
            for first in range(0, args.calls, args.burst):
                for n in range(first, min(first + args.burst, args.calls)):
                    office.originate(_inbound(f"8499{n:07d}", f"{DID_PREFIX}0600"))
                time.sleep(0.1)
                office.wait_idle()
        else:
            for n in range(args.calls):
                for did in (f"{DID_PREFIX}0600", f"{DID_PREFIX}0104"):
                    office.originate(_inbound(f"8499{n:07d}", did))
                    time.sleep(0.1)
                    office.wait_idle()
        side.wait_delivered(quiet=2)
    finally:
        office.stop()
        side.stop()
        databases.drop()
    found = list(holds(office.pbx.log))
    load = os.getloadavg()[0]
    print(f"load average {load:.1f}; {len(side.receiver.bodies)} messages delivered")
    print("| AGI | calls | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in ("fastagi", "script"):
        ms = sorted(h.ms for h in found if h.kind == kind)
        if not ms:
            continue
        p90, p99 = (ms[int(q * (len(ms) - 1))] for q in (0.9, 0.99))
        print(
            f"| {kind} | {len(ms)} | {statistics.median(ms):.1f} | {p90:.1f} | {p99:.1f} "
            f"| {ms[-1]:.1f} |"
        )
    statuses = sorted({(h.status, h.event) for h in found})
    print(f"AGISTATUS / PBXGATE_EVENT seen: {statuses}")
    print(f"at most {most_at_once(found)} AGI steps in progress at once")


def most_at_once(found: list[Hold]) -> int:
    """The most steps whose [begin, end] overlap at one instant (Asterisk's millisecond)."""
    edges: list[tuple[datetime, int]] = []
    for hold in found:
        if hold.at is not None:
            edges.append((hold.at, 1))
            edges.append((hold.at + timedelta(milliseconds=hold.ms), -1))
    most = now = 0
    for _, step in sorted(edges):  # an end before a begin at the same instant
        now += step
        most = max(most, now)
    return most


if __name__ == "__main__":
    main()
