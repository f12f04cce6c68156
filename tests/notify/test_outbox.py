import fcntl
import itertools
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbxgate.errors import DeliveryError
from pbxgate.notify import outbox as outbox_module
from pbxgate.notify.outbox import TRANSITIONS, Action, Outbox, Plan, State, transition

from .conftest import Place
from .helpers import make_event


@pytest.fixture
def box(place: Place) -> Outbox:
    """A fresh outbox on each backend (the contract suite: SQLite, MariaDB, PostgreSQL)."""
    return place.open()


def test_open_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    Outbox.open(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_enqueue_is_idempotent_and_survives_reopen(place: Place) -> None:
    box = place.open()
    assert box.enqueue(make_event(1)) is True
    assert box.enqueue(make_event(1)) is False
    assert box.enqueue(make_event(1, kind="missed", caller_name="Пётр")) is True
    box.close()
    again = place.open()
    assert {e.event_id for e in again.unplanned()} == {
        "incoming:1700000000.1",
        "missed:1700000000.1",
    }
    assert {e.caller_name for e in again.unplanned()} == {"", "Пётр"}
    assert again.has_event("incoming:1700000000.1")
    assert not again.has_event("incoming:1700000000.2")
    # one call's events, as `send-test-event --call` continues it, each transfer's answer too
    call = make_event(1).call_id
    for n, who in ((0, "101"), (1, "102"), (2, "103")):
        again.enqueue(make_event(1, kind="answered", answered_by=who, transfers=n))
    again.enqueue(make_event(11, kind="answered", transfers=1))  # 1700000000.11: not this call
    assert [e.event_id for e in again.call_events(call)] == [
        "incoming:1700000000.1",
        "answered:1700000000.1",
        "answered:1700000000.1#1",
        "answered:1700000000.1#2",
        "missed:1700000000.1",
    ]
    assert again.call_events("1700000000.9") == []
    assert again.call_events("1700000000_1") == []  # LIKE's "_" is a character here


def test_a_group_says_which_of_its_events_are_new(box: Outbox) -> None:
    """enqueue_many, the group commit's one transaction: an event already in, or earlier in the
    same group, is not stored again; the answer is per event, in order."""
    assert box.enqueue(make_event(2)) is True
    group = [
        make_event(1),
        make_event(2),
        make_event(3),
        make_event(1),
        make_event(3, kind="missed"),
    ]
    assert box.enqueue_many(group) == [True, False, True, False, True]
    stored = {e.event_id for e in box.unplanned(100)}
    assert stored == {
        "incoming:1700000000.1",
        "incoming:1700000000.2",
        "incoming:1700000000.3",
        "missed:1700000000.3",
    }
    assert box.enqueue_many([]) == []


def test_a_group_larger_than_one_statement_is_stored_whole(box: Outbox) -> None:
    group = [make_event(n) for n in range(450)]  # SQLite: three INSERTs of at most 200 rows
    assert box.enqueue_many(group[:10]) == [True] * 10
    assert box.enqueue_many(group) == [False] * 10 + [True] * 440
    events = box.unplanned(1000)
    assert len(events) == 450
    assert {e.caller_number for e in events} == {group[0].caller_number}


def test_plan_claim_sent(box: Outbox) -> None:
    box.enqueue(make_event(1))
    assert box.plan("incoming:1700000000.1", [("vk", "1"), ("vk", "2")], now=100.0) == 2
    assert box.unplanned() == []
    claimed = box.claim(now=100.0, lease=30.0, limit=10)
    assert [(d.recipient, d.attempts) for d in claimed] == [("1", 1), ("2", 1)]
    assert box.claim(now=110.0, lease=30.0, limit=10) == []  # leased
    assert box.mark_sent(claimed[0].id, now=101.0)
    assert not box.mark_sent(claimed[0].id, now=101.0)  # sent -> sent is not allowed
    (st_vk,) = box.status()
    assert (st_vk.pending, st_vk.in_flight, st_vk.sent, st_vk.dead) == (0, 1, 1, 0)
    assert box.mark_retry(claimed[1].id, now=102.0, next_at=500.0, error="VK error 10")
    (st_vk,) = box.status()
    assert (st_vk.pending, st_vk.retrying, st_vk.last_error) == (1, 1, "VK error 10")
    assert box.hurry(now=103.0, channel="telegram") == 0
    assert box.hurry(now=103.0) == 1
    assert [d.id for d in box.claim(now=103.0, lease=30.0, limit=10)] == [claimed[1].id]


def test_expired_lease_is_claimed_again(box: Outbox) -> None:
    box.enqueue(make_event(1))
    box.plan("incoming:1700000000.1", [("vk", "1")], now=0.0)
    (first,) = box.claim(now=0.0, lease=30.0, limit=5)
    (second,) = box.claim(now=30.0, lease=30.0, limit=5)
    assert second.id == first.id and second.attempts == 2


def test_retry_waits_until_next_attempt(box: Outbox) -> None:
    box.enqueue(make_event(1))
    box.plan("incoming:1700000000.1", [("vk", "1")], now=0.0)
    (d,) = box.claim(now=0.0, lease=30.0, limit=5)
    assert box.mark_retry(d.id, now=1.0, next_at=11.0, error="VK error 6")
    assert box.next_due() == 11.0
    assert box.claim(now=10.9, lease=30.0, limit=5) == []
    assert [x.id for x in box.claim(now=11.0, lease=30.0, limit=5)] == [d.id]


def test_dead_letters_keep_reason_revive_and_purge(box: Outbox) -> None:
    for n in (1, 2):
        box.enqueue(make_event(n))
        box.plan(f"incoming:1700000000.{n}", [("vk", "1")], now=0.0)
    a, b = box.claim(now=0.0, lease=30.0, limit=5)
    box.mark_dead(a.id, now=5.0, reason="VK error 901: the user has not allowed messages")
    box.mark_sent(b.id, now=5.0)
    (dl,) = box.dead_letters()
    assert dl.reason.startswith("VK error 901") and dl.attempts == 1
    assert box.status()[0].last_error.startswith("VK error 901")
    assert box.revive(now=6.0, channel="vk") == 1
    (again,) = box.claim(now=6.0, lease=30.0, limit=5)
    assert again.id == a.id and again.attempts == 1  # a fresh attempt budget
    box.mark_dead(again.id, now=7.0, reason="still no")
    assert box.purge(sent_before=None, dead=False) == 0
    assert box.purge(sent_before=100.0, dead=True) == 2
    assert box.status() == [] and box.unplanned() == []


def test_a_purge_of_the_newest_deliveries_never_gives_their_numbers_again(box: Outbox) -> None:
    """VK keeps a random_id for good: a number given again after a purge would show nothing
    for the new call and have its edits change the old call's message."""
    seen: set[int] = set()
    for n in (1, 2, 3):
        box.enqueue(make_event(n))
        box.plan(f"incoming:1700000000.{n}", [("vk", "1"), ("vk", "2")], now=0.0)
        for d in box.claim(now=0.0, lease=30.0, limit=5):
            assert d.number not in seen
            seen.add(d.number)
            box.mark_sent(d.id, now=1.0)
        # every delivery so far goes, the newest included; and the planning after a purge
        # of a thread (several targets, an edit) gives new numbers too
        assert box.purge(sent_before=10.0, dead=False) == 2
    box.enqueue(make_event(4))
    box.plan_many([Plan("incoming:1700000000.4", [("vk", "1"), ("vk", "2")], thread="t4")], 20.0)
    numbers = [d.number for d in box.claim(now=20.0, lease=30.0, limit=5)]
    assert len(numbers) == 2 and not seen & set(numbers)


def test_purge_goes_in_batches_and_keeps_what_is_not_due(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A purge deletes a few rows a transaction, walking the keys in order: the calls'
    commits go in between (here one is made from another connection between batches, which
    one long transaction would have kept waiting), and what it keeps is what the one
    transaction kept: deliveries not old enough or not done, their events and threads."""
    monkeypatch.setattr(outbox_module, "PURGE_BATCH", 3)
    box = place.open()
    for n in range(1, 16):  # 13 older than the purge's cutoff, as the deliveries are
        box.enqueue(make_event(n, occurred_at=50.0) if n == 13 else make_event(n))
    # events 1-12: one delivery each; 1-4 of a call's message (a thread), 5-12 alone
    box.plan_many([Plan(f"incoming:1700000000.{n}", [("vk", "1")], thread="call-a", stage=n)
                   for n in range(1, 5)], now=0.0)  # fmt: skip
    box.plan_many([Plan(f"incoming:1700000000.{n}", [("vk", "1"), ("telegram", "2")])
                   for n in range(5, 13)], now=0.0)  # fmt: skip
    box.plan_many([Plan(f"incoming:1700000000.{n}", []) for n in (13, 15)], now=0.0)  # nothing
    claimed = {(d.event.event_id, d.channel): d.id for d in box.claim(0.0, 30.0, 100)}
    number = {key[0].rsplit(".", 1)[1]: i for key, i in claimed.items() if key[1] == "vk"}
    # the thread's first three states were superseded by the fourth as they were planned
    for n in (4, 5, 6, 7):  # sent long ago
        box.mark_sent(number[str(n)], now=10.0)
    box.mark_sent(number["8"], now=500.0)  # sent lately: kept
    box.mark_dead(number["9"], now=10.0, reason="VK error 901")
    for (event_id, channel), delivery in claimed.items():
        if channel == "telegram" and event_id.endswith((".5", ".6")):
            box.mark_sent(delivery, now=10.0)
    # left: 8 (vk, new), 10-12 (vk in flight), 7-12 telegram in flight; 14 not planned yet
    other = place.open()
    seen: list[tuple[int, int]] = []

    def between(done: int, span: int) -> None:
        seen.append((done, span))
        assert other.enqueue(make_event(100 + len(seen)))  # not kept waiting

    assert box.purge(sent_before=100.0, dead=True, progress=between) == 10
    assert len(seen) >= 6 and seen[-1][0] == seen[-1][1] == seen[0][1]
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    kept = box._query("SELECT event_id, channel FROM deliveries ORDER BY event_id, channel")
    assert [(str(e).rsplit(".", 1)[1], str(c)) for e, c in kept] == [
        ("10", "telegram"), ("10", "vk"), ("11", "telegram"), ("11", "vk"),
        ("12", "telegram"), ("12", "vk"), ("7", "telegram"), ("8", "telegram"),
        ("8", "vk"), ("9", "telegram"),
    ]  # fmt: skip
    events = {str(r[0]).rsplit(".", 1)[1] for r in box._query("SELECT event_id FROM events")}
    assert events == {"7", "8", "9", "10", "11", "12", "14", "15"} | {
        str(100 + n) for n in range(1, len(seen) + 1)
    }  # 1-6 had nothing left, 13 nothing to send and older than the cutoff (15 is not); 14
    # and those enqueued meanwhile are not planned
    assert box._query("SELECT thread FROM messages") == []  # call-a had nothing left
    assert box.purge(sent_before=100.0, dead=True) == 0
    other.close()
    box.close()


def test_purge_keeps_the_threads_with_a_delivery_left_across_batches(
    box: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox_module, "PURGE_BATCH", 3)
    for n in range(1, 8):
        box.enqueue(make_event(n))
    box.plan_many([Plan(f"incoming:1700000000.{n}", [("vk", "1"), ("telegram", "2")],
                        thread=f"call-{n}", stage=10) for n in range(1, 8)], now=0.0)  # fmt: skip
    for delivery in box.claim(0.0, 30.0, 100):
        n = int(delivery.event.event_id.rsplit(".", 1)[1])
        lately = n in (3, 5) or (n == 7 and delivery.channel == "vk")
        box.mark_sent(delivery.id, now=500.0 if lately else 10.0)
    assert box.purge(sent_before=100.0, dead=False) == 9
    kept = box._query("SELECT thread, channel FROM messages ORDER BY thread, channel")
    assert [(str(t), str(c)) for t, c in kept] == [
        ("call-3", "telegram"), ("call-3", "vk"), ("call-5", "telegram"), ("call-5", "vk"),
        ("call-7", "vk"),  # its telegram recipient has no delivery left
    ]  # fmt: skip


def test_purge_walks_the_events_and_threads_older_than_its_cutoff(
    box: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Besides what its deliveries leave, a purge with a cutoff takes the events planned with
    nothing to send and the message rows no delivery needs, once older than the cutoff; a
    call's rows are read together even where a batch would end among them."""
    monkeypatch.setattr(outbox_module, "PURGE_BATCH", 3)
    box.enqueue(make_event(1, occurred_at=50.0))  # old, not planned yet: the worker's
    box.enqueue(make_event(2, occurred_at=50.0))
    box.enqueue(make_event(3))
    box.plan_many([Plan("incoming:1700000000.2", []),
                   Plan("incoming:1700000000.3", [("vk", "1")], thread="t-live", stage=10)],
                  now=0.0)  # fmt: skip
    with box._tx() as db:  # rows a purge of an older release left, or a call with no delivery
        db.executemany(
            "INSERT INTO messages (thread, channel, recipient, stage, updated_at)"
            " VALUES (?, ?, '1', 10, ?)",
            [("t-a", "telegram", 10.0), ("t-a", "vk", 10.0),
             ("t-b", "email", 500.0), ("t-b", "vk", 10.0),  # the batch of 3 ends among them
             ("t-c", "vk", 500.0)],
        )  # fmt: skip
        db.execute("UPDATE messages SET updated_at = 0 WHERE thread = 't-live'")
    assert box.purge(sent_before=100.0, dead=False) == 0
    events = {str(r[0]) for r in box._query("SELECT event_id FROM events")}
    assert events == {"incoming:1700000000.1", "incoming:1700000000.3"}
    kept = box._query("SELECT thread, channel FROM messages ORDER BY thread, channel")
    assert [(str(t), str(c)) for t, c in kept] == [("t-c", "vk"), ("t-live", "vk")]


def test_release_inflight_returns_orphans(box: Outbox) -> None:
    box.acquire_worker_lock()  # the outbox's (or the node's) one worker
    box.enqueue(make_event(1))
    box.plan("incoming:1700000000.1", [("vk", "1")], now=0.0)
    box.claim(now=0.0, lease=1000.0, limit=5)
    assert box.release_inflight(now=1.0) == 1
    assert len(box.claim(now=1.0, lease=10.0, limit=5)) == 1


def test_second_worker_lock_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pbxgate.notify import outbox

    monkeypatch.setattr(outbox, "NODE_LOCK_WAIT", 0.3)
    a = Outbox.open(tmp_path / "o.sqlite3")
    b = Outbox.open(tmp_path / "o.sqlite3")
    a.acquire_worker_lock()
    with pytest.raises(DeliveryError, match="another worker"):
        b.acquire_worker_lock()
    a.close()
    b.acquire_worker_lock()  # the lock goes with its holder
    assert (tmp_path / "o.sqlite3.worker.lock").read_text() == str(os.getpid())
    b.close()


def test_a_worker_waits_for_the_one_finishing_its_sends(tmp_path: Path) -> None:
    """A worker whose service was killed finishes its sends in flight before it lets the lock
    go: the next one, started meanwhile, waits for it rather than failing."""
    a = Outbox.open(tmp_path / "o.sqlite3")
    b = Outbox.open(tmp_path / "o.sqlite3")
    a.acquire_worker_lock()
    threading.Timer(0.5, a.close).start()
    b.acquire_worker_lock()  # within NODE_LOCK_WAIT (5 s)
    assert not a._worker_lock and b._worker_lock is not None
    b.close()


def test_unopenable_path_is_one_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DeliveryError, match="cannot open the outbox"):
        Outbox.open(blocker / "outbox.sqlite3")


@given(st.sampled_from(list(State)), st.sampled_from(list(Action)))
def test_transition_table_is_enforced(state: State, action: Action) -> None:
    sources, target = TRANSITIONS[action]
    if state in sources:
        assert transition(state, action) is target
    else:
        with pytest.raises(ValueError, match=state.value):
            transition(state, action)


def test_every_action_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Action)
    reachable = {t for _, t in TRANSITIONS.values()} | set(
        itertools.chain.from_iterable(s for s, _ in TRANSITIONS.values())
    )
    assert reachable == set(State)


def test_worker_connection_is_normal_but_enqueue_is_full(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path / "o.sqlite3", synchronous="NORMAL")
    assert box._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert box.enqueue(make_event(1))
    assert box._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # restored
    box.close()
    full = Outbox.open(tmp_path / "o.sqlite3")
    assert full._db.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    full.close()


def test_events_since_gives_the_kinds_asked_for_oldest_first(box: Outbox) -> None:
    box.enqueue_many([
        make_event(3, kind="missed"),
        make_event(1, kind="missed"),
        make_event(2, kind="incoming"),
        make_event(4, kind="called_back"),
        make_event(0, kind="missed"),  # before the horizon
    ])  # fmt: skip
    found = box.events_since(("missed", "called_back"), since=1700000001.0)
    assert [(e.kind, e.linkedid) for e in found] == [
        ("missed", "1700000000.1"), ("missed", "1700000000.3"), ("called_back", "1700000000.4")
    ]  # fmt: skip


def test_a_group_is_a_few_statements_whatever_its_size(tmp_path: Path) -> None:
    """Each statement gives the interpreter lock away and waits to get it back, behind a busy
    FastAGI loop: a group commit of 100 calls is not 100 statements."""
    box = Outbox.open(tmp_path / "o.sqlite3")
    box.enqueue(make_event(0))
    statements: list[str] = []
    box._db.conn.set_trace_callback(statements.append)
    assert box.enqueue_many([make_event(n) for n in range(100)]) == [False] + [True] * 99
    box._db.conn.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "SELECT", "INSERT", "COMMIT"]
    box.close()


def test_writers_of_other_processes_wait_their_turn_in_the_kernel(tmp_path: Path) -> None:
    """A writer of another process (the delivery worker's own) holds ``<outbox>.write.lock``:
    a commit waits for it, without SQLite's busy sleeps, and goes ahead once it is released."""
    path = tmp_path / "o.sqlite3"
    box = Outbox.open(path)
    lock = tmp_path / "o.sqlite3.write.lock"
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    other = os.open(lock, os.O_RDWR)  # an open file of its own: as another process's
    fcntl.flock(other, fcntl.LOCK_EX)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (box.enqueue(make_event(1)), done.set()))
    thread.start()
    try:
        assert not done.wait(0.3)  # waiting for the other writer
        with sqlite3.connect(path) as reader:
            assert reader.execute("SELECT count(*) FROM events").fetchone() == (0,)
    finally:
        fcntl.flock(other, fcntl.LOCK_UN)
        os.close(other)
    assert done.wait(5)
    thread.join()
    assert [e.event_id for e in box.unplanned()] == ["incoming:1700000000.1"]
    box.close()


def test_a_writer_that_never_lets_go_is_an_error_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As SQLite's busy timeout would: a process stopped while it held the write lock does not
    hold the calls' commits for ever (each call goes on after [agi] commit_timeout anyway)."""
    from pbxgate.notify import backends

    monkeypatch.setattr(backends, "WRITE_LOCK_WAIT", 0.3)
    path = tmp_path / "o.sqlite3"
    box = Outbox.open(path)
    other = os.open(tmp_path / "o.sqlite3.write.lock", os.O_RDWR)
    fcntl.flock(other, fcntl.LOCK_EX)
    try:
        with pytest.raises(DeliveryError, match=r"another writer has held it for 0\.3 s"):
            box.enqueue(make_event(1))
    finally:
        os.close(other)
    assert box.enqueue(make_event(1)) is True  # and works again once it is free
    box.close()


def test_closing_the_last_outbox_of_a_file_closes_its_lock_file(tmp_path: Path) -> None:
    def open_files() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = open_files()
    first, second = Outbox.open(tmp_path / "o.sqlite3"), Outbox.open(tmp_path / "o.sqlite3")
    first.close()
    first.close()  # twice: counted once
    assert second.enqueue(make_event(1)) is True  # the lock is still there for the other
    second.close()
    assert open_files() == before
