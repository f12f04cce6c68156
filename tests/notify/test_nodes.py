"""Several nodes on one shared outbox (PostgreSQL, MariaDB): each delivery is taken by one
node, a node that restarts takes back only its own, and a call's message is never edited by
two nodes at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from pbxgate.notify.outbox import Outbox, Plan

from .conftest import Place, make_place
from .helpers import make_event


@pytest.fixture(params=["mariadb", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Place:
    where = make_place(request.param, tmp_path)
    yield where  # type: ignore[misc]
    where.close()


def fill(box: Outbox, calls: int, recipients: int = 2) -> int:
    targets = [("vk", str(r)) for r in range(recipients)]
    box.enqueue_many([make_event(n) for n in range(calls)])
    return box.plan_many([Plan(e.event_id, targets) for e in box.unplanned(calls)], now=0.0)


def test_two_nodes_claiming_at_once_never_take_the_same_delivery(shared: Place) -> None:
    planned = fill(shared.open("node-a"), calls=150)
    nodes = [shared.open("node-a"), shared.open("node-b")]
    taken: dict[str, list[int]] = {"node-a": [], "node-b": []}
    start = threading.Barrier(2)

    def work(box: Outbox) -> None:
        start.wait()
        while True:
            batch = box.claim(1.0, lease=60.0, limit=7)
            if not batch:  # all due rows are being taken by the other node, or none is left
                if box.next_due() is None:
                    return
                time.sleep(0.001)
                continue
            taken[box.node] += [d.id for d in batch]
            for d in batch:
                assert box.mark_sent(d.id, 1.0)

    failures: list[BaseException] = []

    def guarded(box: Outbox) -> None:
        try:
            work(box)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guarded, args=(box,)) for box in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not failures, failures
    every = taken["node-a"] + taken["node-b"]
    assert len(every) == len(set(every)) == planned == 300
    assert taken["node-a"] and taken["node-b"]  # both worked
    (status,) = nodes[0].status()
    assert (status.sent, status.pending, status.in_flight) == (300, 0, 0)


def test_a_restarted_node_takes_back_its_own_deliveries_and_no_others(shared: Place) -> None:
    fill(shared.open("node-a"), calls=3, recipients=1)
    a, b = shared.open("node-a"), shared.open("node-b")
    mine = a.claim(10.0, lease=30.0, limit=2)
    theirs = b.claim(10.0, lease=30.0, limit=5)
    assert len(mine) == 2 and len(theirs) == 1
    a.close()  # node-a is killed; restarted, it holds the node's lock again
    a_again = shared.open("node-a")
    a_again.acquire_worker_lock()
    assert a_again.release_inflight(11.0) == 2
    again = a_again.claim(11.0, lease=30.0, limit=5)
    assert sorted(d.id for d in again) == sorted(d.id for d in mine)
    assert a_again.claim(39.0, 30.0, 5) == []  # node-b's lease still runs
    (late,) = a_again.claim(40.0, 30.0, 5)  # until it runs out
    assert late.id == theirs[0].id and late.attempts == 2


def test_a_call_is_edited_by_one_node_at_a_time(shared: Place) -> None:
    a, b = shared.open("node-a"), shared.open("node-b")
    incoming = make_event(1)
    answered = make_event(1, kind="answered", answered_by="102")
    a.enqueue_many([incoming, answered])
    a.plan_many([Plan(incoming.event_id, [("vk", "1")], thread=incoming.call_id,
                      stage=incoming.stage)], 0.0)  # fmt: skip
    (first,) = a.claim(0.0, 60.0, 5)
    b.plan_many([Plan(answered.event_id, [("vk", "1")], thread=answered.call_id,
                      stage=answered.stage)], 0.5, edit_delay=1.0)  # fmt: skip
    assert b.claim(5.0, 60.0, 5) == []  # node-a is still sending the first state
    assert a.mark_sent(first.id, 5.5, ref="77")
    (edit,) = b.claim(6.0, 60.0, 5)
    assert (edit.event.kind, edit.ref) == ("answered", "77")


def test_two_nodes_planning_one_call_at_once_keep_its_order(shared: Place) -> None:
    """Two nodes plan a call's states concurrently, in either order: whatever the
    interleaving, the message's last planned state is the call's last."""
    a, b = shared.open("node-a"), shared.open("node-b")
    for n in range(20):
        events = [make_event(n), make_event(n, kind="answered"), make_event(n, kind="ended")]
        a.enqueue_many(events)
        plans = [Plan(e.event_id, [("vk", "1")], thread=e.call_id, stage=e.stage) for e in events]
        start = threading.Barrier(2)

        def plan(box: Outbox, mine: list[Plan], start: threading.Barrier = start) -> None:
            start.wait()
            for p in mine:
                box.plan_many([p], 1.0, edit_delay=0.0)

        order = [plans[2], plans[0]] if n % 2 else [plans[0], plans[2]]
        failures: list[BaseException] = []

        def guarded(
            box: Outbox, mine: list[Plan], failures: list[BaseException] = failures
        ) -> None:
            try:
                plan(box, mine)
            except BaseException as exc:
                failures.append(exc)

        threads = [
            threading.Thread(target=guarded, args=(a, order)),
            threading.Thread(target=guarded, args=(b, [plans[1]])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not failures, failures
        (row,) = a.thread(events[0].call_id)
        assert row[2] == events[2].stage  # ended, whatever came last
        pending = a._query(
            "SELECT e.kind FROM deliveries d JOIN events e ON e.event_id = d.event_id"
            " WHERE d.thread = ? AND d.state = 'pending'",
            (events[0].call_id,),
        )
        assert pending == [("ended",)]  # one state waits to be shown: the last


def test_only_the_holder_of_a_node_name_takes_its_deliveries_back(
    shared: Place, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A second worker under a node's name (or one that starts while the server still keeps
    the session of the node's previous life, after a power cut) works, but does not take the
    node's deliveries in flight back: they may be the first one's, still being sent."""
    monkeypatch.setattr("pbxgate.notify.outbox.NODE_LOCK_WAIT", 0.3)
    fill(shared.open("node-a"), calls=2, recipients=1)
    first = shared.open("node-a")
    first.acquire_worker_lock()
    assert len(first.claim(1.0, lease=60.0, limit=1)) == 1
    same = shared.open("node-a")
    same.acquire_worker_lock()  # no error: it runs, without the lock
    assert "another session holds node 'node-a'" in caplog.text
    assert same.release_inflight(2.0) == 0  # first's delivery stays first's
    assert len(same.claim(2.0, lease=60.0, limit=5)) == 1  # the other one
    other = shared.open("node-b")
    other.acquire_worker_lock()  # another node is welcome
    assert other._node_lock is not None
    first.close()  # the process ends: its lock goes with its connection
    again = shared.open("node-a")
    again.acquire_worker_lock()
    # the holder takes back the node's deliveries: first's, not those of the lockless worker
    # that may still be sending them (its leases carry a name of their own)
    assert again.release_inflight(3.0) == 1
    assert same.node.startswith("node-a#")
    (status,) = again.status()
    assert (status.in_flight, status.pending) == (1, 1)


def test_two_nodes_planning_the_same_event_at_once_both_succeed(shared: Place) -> None:
    """With AMI on every node, each queues the same answered event and plans it at once."""
    a, b = shared.open("node-a"), shared.open("node-b")
    for n in range(30):
        incoming, answered = make_event(n), make_event(n, kind="answered")
        a.enqueue_many([incoming, answered])
        a.plan_many([Plan(incoming.event_id, [("vk", "1"), ("vk", "2")],
                          thread=incoming.call_id, stage=incoming.stage)], 0.0)  # fmt: skip
        same = Plan(answered.event_id, [("vk", "1"), ("vk", "2")], thread=answered.call_id,
                    stage=answered.stage)  # fmt: skip
        start, failures = threading.Barrier(2), []

        def go(
            box: Outbox,
            start: threading.Barrier = start,
            failures: list[BaseException] = failures,
            same: Plan = same,
        ) -> None:
            start.wait()
            try:
                box.plan_many([same], 1.0, edit_delay=0.0)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=go, args=(box,)) for box in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not failures, failures
        assert [row[2] for row in a.thread(answered.call_id)] == [answered.stage] * 2
