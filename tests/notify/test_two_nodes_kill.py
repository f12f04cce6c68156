"""Two ``pbxgate serve`` nodes sharing one outbox in PostgreSQL, one of them killed with
SIGKILL every second or so while calls arrive through both (the way Asterisk reaches them
with ``hagi://``: the next node when one refuses). Every call's message reaches VK once and
ends in the call's final state; no call waits longer than a failover."""

from __future__ import annotations

from pathlib import Path

from .conftest import make_place
from .nodes import PEER, chaos

CALLS = 120
SPACING = 0.08  # seconds between calls: they arrive over about 10 s


def test_kill_9_one_of_two_nodes_while_calls_arrive(tmp_path: Path) -> None:
    place = make_place("postgresql", tmp_path)
    try:
        run = chaos(place.target, tmp_path, calls=CALLS, spacing=SPACING, kill_every=0.8,
                    kills=3)  # fmt: skip
    finally:
        place.close()
    callers = [s.message.split("номера: ")[1].splitlines()[0] for s in run.shown]
    # each node killed while calls arrived (a node takes 0.5-1.5 s to start again)
    assert run.kills >= 3, "the nodes were killed while calls arrived"
    assert len(run.shown) == CALLS, f"{len(run.shown)} messages for {CALLS} calls"
    assert sorted(callers) == sorted(f"8499{n:07d}" for n in range(CALLS)), "lost or twice"
    assert all(s.peer_id == PEER for s in run.shown)
    not_final = [s.message.splitlines()[0] for s in run.shown if "Пропущенный" not in s.message]
    assert not not_final, f"messages not in the call's final state: {not_final[:5]}"
    # a failover costs a refused connection and a retry, never a wait for a lease to expire
    # (lease_seconds = 4) or a timeout; the times themselves are a benchmark's
    assert max(run.holds) < 4.0, f"a call was held {max(run.holds):.2f} s"
