"""Two pbxgate serve nodes on one PostgreSQL outbox, one killed with SIGKILL every few seconds.

The large run of tests/notify/test_two_nodes_kill.py: ``--calls`` calls (an incoming AGI step,
then a missed one 0.2 s later, messages following their calls) arrive through both nodes the
way Asterisk reaches them with hagi://, while one node after the other is killed and started
again. Reports what VK shows at the end (lost, twice, not in the call's final state), how long
the AGI steps took with their failovers, and how long after the last call every message was
final.

    PBXGATE_TEST_POSTGRESQL_DSN=postgresql+psycopg://postgres@127.0.0.1:5432/pbxgate_test \\
        .venv/bin/python benchmarks/two_nodes.py --calls 5000 --spacing 0.012 --kill-every 3
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

from tests.notify.conftest import make_place
from tests.notify.nodes import chaos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--spacing", type=float, default=0.012, help="seconds between calls")
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    parser.add_argument("--concurrency", type=int, default=20, help="AGI steps at once")
    parser.add_argument("--lease", type=float, default=10.0, help="[notify] lease_seconds")
    args = parser.parse_args()
    dsn = os.environ.get("PBXGATE_TEST_POSTGRESQL_DSN", "")
    if not dsn:
        sys.exit("set PBXGATE_TEST_POSTGRESQL_DSN to a PostgreSQL database pbxgate may use")
    root = Path(tempfile.mkdtemp(prefix="pbxgate-nodes-"))
    place = make_place("postgresql", root)
    started = time.monotonic()
    try:
        run = chaos(
            place.target,
            root,
            calls=args.calls,
            spacing=args.spacing,
            kill_every=args.kill_every,
            concurrency=args.concurrency,
            lease=args.lease,
        )
    finally:
        place.close()
    wall = time.monotonic() - started
    callers = [s.message.split("номера: ")[1].splitlines()[0] for s in run.shown]
    expected = {f"8499{n:07d}" for n in range(args.calls)}
    lost = len(expected - set(callers))
    twice = len(callers) - len(set(callers))
    not_final = sum("Пропущенный" not in s.message for s in run.shown)
    holds = sorted(h * 1000 for h in run.holds)
    q = statistics.quantiles(holds, n=100)
    print(f"calls {args.calls} ({len(holds)} AGI steps) over {wall:.1f} s, "
          f"{run.kills} nodes killed with SIGKILL (every {args.kill_every:g} s), "
          f"lease {args.lease:g} s")  # fmt: skip
    print(f"VK shows {len(run.shown)} messages: lost {lost}, twice {twice}, "
          f"not in the final state {not_final}; repeats VK absorbed (random_id) "
          f"{run.duplicates}")  # fmt: skip
    print(f"AGI step incl. failover: p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms, "
          f"max {holds[-1]:.1f} ms")  # fmt: skip
    print(f"every message final {run.settled:.2f} s after the last call")


if __name__ == "__main__":
    main()
