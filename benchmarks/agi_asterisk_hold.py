"""How long pbxgate's AGI step holds a call, measured by a real Asterisk 22.

Runs the test office (tests/asterisk/: the vendored Asterisk, built once and cached) with
``pbxgate serve`` beside it, places inbound calls one at a time to a ring group DID (FastAGI) and
to a direct DID (``pbxgate-agi``, the process AGI), and reads the hold from Asterisk's own log:
the ``Verbose`` markers around ``AGI()`` in the dialplan, stamped to the millisecond.

    PBXGATE_TEST_MARIADB_DSN=... PBXGATE_TEST_POSTGRESQL_DSN=... \\
        .venv/bin/python benchmarks/agi_asterisk_hold.py --calls 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.asterisk.office import (
    DID_PREFIX,
    PHONES,
    Databases,
    Office,
    _inbound,
)
from tests.asterisk.pbxgate_side import PbxgateSide, holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50, help="calls per AGI kind")
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
    print("| AGI | calls | p50 ms | p90 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for kind in ("fastagi", "script"):
        ms = sorted(h.ms for h in found if h.kind == kind)
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(f"| {kind} | {len(ms)} | {statistics.median(ms):.1f} | {p90:.1f} | {ms[-1]:.1f} |")


if __name__ == "__main__":
    main()
