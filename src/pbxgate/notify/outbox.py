"""The durable outbox: call events and their deliveries in one SQLite file.

Theory of operation. ``enqueue`` stores the event (one row, ``synchronous=FULL`` in WAL mode:
the commit is on disk before the AGI session returns). The worker *plans* each new event into
delivery rows, one per (channel, recipient), then *claims* due rows with a lease, sends, and
records the outcome. A delivery moves through this table (and nowhere else)::

    action    from                  to
    claim     pending, in-flight*   in-flight      (* only when the lease has run out)
    sent      in-flight             sent
    retry     in-flight             pending        (attempts kept, next_attempt_at later)
    dead      in-flight             dead           (last_error keeps the reason)
    release   in-flight             pending        (orphans of a worker that died)
    revive    dead                  pending        (``pbxgate notify retry``)

A worker killed mid-delivery leaves its rows in flight; the next worker (it holds an exclusive
lock file, so it knows no other worker is alive) releases them and sends again with the same
idempotency key (VK ``random_id``, webhook ``Idempotency-Key``), so nothing is lost and the
recipient sees one message. Times are Unix seconds passed in by the caller.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from pbxgate.errors import DeliveryError
from pbxgate.notify.events import CallEvent
from pbxgate.private import FILE_MODE, private_file


class State(Enum):
    PENDING = "pending"
    INFLIGHT = "in-flight"
    SENT = "sent"
    DEAD = "dead"


class Action(Enum):
    CLAIM = "claim"
    SENT = "sent"
    RETRY = "retry"
    DEAD = "dead"
    RELEASE = "release"
    REVIVE = "revive"


# (action) -> (states it may start from, resulting state); see the module docstring.
TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = {
    Action.CLAIM: (frozenset({State.PENDING, State.INFLIGHT}), State.INFLIGHT),
    Action.SENT: (frozenset({State.INFLIGHT}), State.SENT),
    Action.RETRY: (frozenset({State.INFLIGHT}), State.PENDING),
    Action.DEAD: (frozenset({State.INFLIGHT}), State.DEAD),
    Action.RELEASE: (frozenset({State.INFLIGHT}), State.PENDING),
    Action.REVIVE: (frozenset({State.DEAD}), State.PENDING),
}


def transition(state: State, action: Action) -> State:
    """The state after ``action``; raises on a pair the table does not allow."""
    sources, target = TRANSITIONS[action]
    if state not in sources:
        raise ValueError(f"delivery in state {state.value} cannot take action {action.value}")
    return target


SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id   TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at REAL NOT NULL,
    planned    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_unplanned ON events(created_at) WHERE planned = 0;
CREATE TABLE IF NOT EXISTS deliveries (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES events(event_id) ON DELETE CASCADE,
    channel         TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    lease_until     REAL,
    last_error      TEXT NOT NULL DEFAULT '',
    updated_at      REAL NOT NULL,
    UNIQUE (event_id, channel, recipient)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_at);
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
# Delivery numbers (VK's random_id): (random base + row id) mod NUMBERS + 1, so every delivery
# of one outbox has its own, in 1..2^31-1, for the first 2^31-1 deliveries.
NUMBERS = 2**31 - 1


@dataclass(frozen=True)
class Delivery:
    id: int
    event: CallEvent
    channel: str
    recipient: str
    attempts: int  # including the current one
    number: int = 1  # this delivery's own number (see NUMBERS), the same on every attempt


@dataclass(frozen=True)
class ChannelStatus:
    channel: str
    pending: int
    retrying: int  # pending deliveries that already failed at least once (waiting for backoff)
    in_flight: int
    sent: int
    dead: int
    oldest_pending_at: float | None
    last_error: str
    last_error_at: float | None


@dataclass(frozen=True)
class DeadLetter:
    id: int
    event_id: str
    channel: str
    recipient: str
    attempts: int
    reason: str
    updated_at: float


# One lock per outbox file for the write transactions of this process: the events of calls
# (pbxgate.notify.committer) and the worker's claims and outcomes then take turns on a Python
# lock, which wakes the next at once, rather than on SQLite's busy handler, which sleeps 1, 2,
# 5, 10 ms and more between tries and so held calls 20 ms at the 99th percentile.
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()


def _write_lock(path: Path) -> threading.Lock:
    key = os.path.realpath(path)
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


class Outbox:
    """One SQLite outbox file. Thread-safe: one connection guarded by a lock."""

    def __init__(self, conn: sqlite3.Connection, path: Path, synchronous: str = "FULL") -> None:
        self._conn = conn
        self.path = path
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._writing = _write_lock(path)
        self._worker_lock: IO[bytes] | None = None
        self.mode = FILE_MODE
        self.number_base = 0

    @classmethod
    def open(cls, path: Path, *, synchronous: str = "FULL", mode: int = FILE_MODE) -> Outbox:
        """Open (creating) the outbox. The worker passes ``synchronous="NORMAL"``: its commits
        (claims, outcomes) then skip the fsync; losing the last few on power loss only means a
        resend, which idempotency absorbs. Enqueues always use FULL.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        try:
            private_file(path, mode, companions=True)  # callers' numbers and names
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            # WAL: readers (pbxgate notify status) never block the AGI's enqueue.
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: in WAL mode every commit is fsynced, so an enqueued event survives power loss.
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('number_base', ?)",
                (str(secrets.randbelow(NUMBERS)),),
            )
            base = int(
                conn.execute("SELECT value FROM meta WHERE name = 'number_base'").fetchone()[0]
            )
        except (OSError, sqlite3.Error) as exc:
            raise DeliveryError(f"cannot open the outbox {path}: {exc}") from exc
        box = cls(conn, path, synchronous)
        box.mode = mode
        box.number_base = base
        return box

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._worker_lock is not None:
                self._worker_lock.close()
                self._worker_lock = None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._writing, self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise DeliveryError(f"outbox {self.path}: {exc}") from exc

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params))
            except sqlite3.Error as exc:
                raise DeliveryError(f"outbox {self.path}: {exc}") from exc

    # -- the AGI side -------------------------------------------------------------------------

    def enqueue(self, event: CallEvent) -> bool:
        """Store ``event`` durably; False when an event with this ``event_id`` is already in."""
        return self.enqueue_many([event])[0]

    def enqueue_many(self, events: Sequence[CallEvent]) -> list[bool]:
        """Store ``events`` durably, in one transaction (one fsync); for each, False when an
        event with its ``event_id`` is already in (or earlier in ``events``)."""
        if self._synchronous != "FULL":
            with self._lock:
                self._conn.execute("PRAGMA synchronous=FULL")
        try:
            with self._tx() as db:
                stored = []
                for event in events:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO events (event_id, kind, payload, created_at)"
                        " VALUES (?, ?, ?, ?)",
                        (event.event_id, event.kind, event.to_json(), event.occurred_at),
                    )
                    stored.append(cur.rowcount == 1)
                return stored
        finally:
            if self._synchronous != "FULL":
                with self._lock:
                    self._conn.execute(f"PRAGMA synchronous={self._synchronous}")

    # -- the worker ---------------------------------------------------------------------------

    def acquire_worker_lock(self) -> None:
        """Become this outbox's only worker (an flock the kernel drops when the process dies)."""
        fd = os.open(f"{self.path}.worker.lock", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.mode)
        handle = os.fdopen(fd, "wb")  # held until close
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DeliveryError(
                f"another worker is already delivering from {self.path}",
                hint="run one pbxgate serve (or notify worker) per outbox",
            ) from None
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._worker_lock = handle

    def unplanned(self, limit: int = 100) -> list[CallEvent]:
        rows = self._query(
            "SELECT payload FROM events WHERE planned = 0 ORDER BY created_at LIMIT ?", (limit,)
        )
        return [CallEvent.from_json(str(r[0])) for r in rows]

    def plan(self, event_id: str, targets: Iterable[tuple[str, str]], now: float) -> int:
        """Create one pending delivery per (channel, recipient); mark the event planned."""
        return self.plan_many([(event_id, list(targets))], now)

    def plan_many(self, plans: Sequence[tuple[str, Sequence[tuple[str, str]]]], now: float) -> int:
        """:meth:`plan` for several events in one transaction (the events of a busy second are
        planned together, not one write each beside the calls' commits)."""
        with self._tx() as db:
            count = 0
            for event_id, targets in plans:
                for channel, recipient in targets:
                    cur = db.execute(
                        "INSERT OR IGNORE INTO deliveries (event_id, channel, recipient, state,"
                        " next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                        (event_id, channel, recipient, State.PENDING.value, now, now),
                    )
                    count += cur.rowcount
                db.execute("UPDATE events SET planned = 1 WHERE event_id = ?", (event_id,))
            return count

    def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due deliveries in flight until ``now + lease``."""
        with self._tx() as db:
            rows = list(
                db.execute(
                    "SELECT d.id, e.payload, d.channel, d.recipient, d.attempts"
                    " FROM deliveries d JOIN events e USING (event_id)"
                    " WHERE (d.state = ? AND d.next_attempt_at <= ?)"
                    "    OR (d.state = ? AND d.lease_until <= ?)"
                    " ORDER BY d.next_attempt_at, d.id LIMIT ?",
                    (State.PENDING.value, now, State.INFLIGHT.value, now, limit),
                )
            )
            db.executemany(
                "UPDATE deliveries SET state = ?, lease_until = ?, attempts = attempts + 1,"
                " updated_at = ? WHERE id = ?",
                [(State.INFLIGHT.value, now + lease, now, r[0]) for r in rows],
            )
        base = self.number_base
        return [
            Delivery(int(r[0]), CallEvent.from_json(r[1]), r[2], r[3], int(r[4]) + 1,
                     (base + int(r[0])) % NUMBERS + 1)
            for r in rows
        ]  # fmt: skip

    def _move(self, action: Action, ids: Sequence[int], sets: str, params: Sequence[object]) -> int:
        sources, target = TRANSITIONS[action]
        marks = ",".join("?" * len(sources))
        idmarks = ",".join("?" * len(ids))
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE deliveries SET state = ?, {sets}"
                f" WHERE id IN ({idmarks}) AND state IN ({marks})",
                (target.value, *params, *ids, *(s.value for s in sources)),
            )
            return cur.rowcount

    def mark_sent(self, delivery_id: int, now: float, detail: str = "") -> bool:
        sets = "lease_until = NULL, updated_at = ?, last_error = ?"
        return self._move(Action.SENT, [delivery_id], sets, (now, detail)) == 1

    def mark_retry(self, delivery_id: int, now: float, next_at: float, error: str) -> bool:
        sets = "lease_until = NULL, updated_at = ?, next_attempt_at = ?, last_error = ?"
        return self._move(Action.RETRY, [delivery_id], sets, (now, next_at, error)) == 1

    def mark_dead(self, delivery_id: int, now: float, reason: str) -> bool:
        sets = "lease_until = NULL, updated_at = ?, last_error = ?"
        return self._move(Action.DEAD, [delivery_id], sets, (now, reason)) == 1

    def release_inflight(self, now: float) -> int:
        """Return every in-flight delivery to pending (call only while holding the worker lock)."""
        ids = [int(str(r[0])) for r in self._ids_in(State.INFLIGHT, None)]
        if not ids:
            return 0
        sets = "lease_until = NULL, updated_at = ?, next_attempt_at = ?"
        return self._move(Action.RELEASE, ids, sets, (now, now))

    def revive(self, now: float, channel: str | None = None) -> int:
        """Dead letters back to pending with a fresh attempt budget (``pbxgate notify retry``)."""
        ids = [int(str(r[0])) for r in self._ids_in(State.DEAD, channel)]
        if not ids:
            return 0
        sets = "attempts = 0, updated_at = ?, next_attempt_at = ?"
        return self._move(Action.REVIVE, ids, sets, (now, now))

    def hurry(self, now: float, channel: str | None = None) -> int:
        """Make deliveries waiting for a backoff due now (after fixing the network, say)."""
        sql = "UPDATE deliveries SET next_attempt_at = ? WHERE state = ? AND next_attempt_at > ?"
        params: list[object] = [now, State.PENDING.value, now]
        if channel:
            sql += " AND channel = ?"
            params.append(channel)
        with self._tx() as db:
            return int(db.execute(sql, params).rowcount)

    def _ids_in(self, state: State, channel: str | None) -> list[tuple[object, ...]]:
        sql = "SELECT id FROM deliveries WHERE state = ?"
        params: list[object] = [state.value]
        if channel:
            sql += " AND channel = ?"
            params.append(channel)
        return self._query(sql, params)

    def next_due(self) -> float | None:
        """The earliest time a pending delivery becomes due or a lease runs out."""
        row = self._query(
            "SELECT min(CASE WHEN state = ? THEN next_attempt_at ELSE lease_until END)"
            " FROM deliveries WHERE state IN (?, ?)",
            (State.PENDING.value, State.PENDING.value, State.INFLIGHT.value),
        )[0]
        return None if row[0] is None else float(str(row[0]))

    # -- status, retry, purge -----------------------------------------------------------------

    def backlog(self) -> int:
        """Events not yet planned into deliveries (the worker has not seen them yet)."""
        return int(str(self._query("SELECT count(*) FROM events WHERE planned = 0")[0][0]))

    def status(self) -> list[ChannelStatus]:
        rows = self._query(
            "SELECT channel,"
            " sum(state = 'pending'), sum(state = 'pending' AND attempts > 0),"
            " sum(state = 'in-flight'), sum(state = 'sent'),"
            " sum(state = 'dead'), min(CASE WHEN state = 'pending' THEN e.created_at END)"
            " FROM deliveries JOIN events e USING (event_id) GROUP BY channel ORDER BY channel"
        )
        out = []
        for ch, pending, retrying, inflight, sent, dead, oldest in rows:
            err = self._query(
                "SELECT last_error, updated_at FROM deliveries WHERE channel = ?"
                " AND state != 'sent' AND last_error != '' ORDER BY updated_at DESC LIMIT 1",
                (ch,),
            )
            out.append(
                ChannelStatus(
                    channel=str(ch),
                    pending=int(str(pending)),
                    retrying=int(str(retrying)),
                    in_flight=int(str(inflight)),
                    sent=int(str(sent)),
                    dead=int(str(dead)),
                    oldest_pending_at=None if oldest is None else float(str(oldest)),
                    last_error=str(err[0][0]) if err else "",
                    last_error_at=float(str(err[0][1])) if err else None,
                )
            )
        return out

    def dead_letters(self, channel: str | None = None, limit: int = 20) -> list[DeadLetter]:
        sql = (
            "SELECT id, event_id, channel, recipient, attempts, last_error, updated_at"
            " FROM deliveries WHERE state = 'dead'"
        )
        params: list[object] = []
        if channel:
            sql += " AND channel = ?"
            params.append(channel)
        sql += " ORDER BY updated_at DESC LIMIT ?"
        params.append(limit)
        return [
            DeadLetter(
                int(str(r[0])),
                str(r[1]),
                str(r[2]),
                str(r[3]),
                int(str(r[4])),
                str(r[5]),
                float(str(r[6])),
            )
            for r in self._query(sql, params)
        ]

    def purge(self, *, sent_before: float | None, dead: bool, channel: str | None = None) -> int:
        """Delete sent deliveries older than ``sent_before`` and, with ``dead``, dead letters."""
        clauses: list[str] = []
        params: list[object] = []
        if sent_before is not None:
            clauses.append("(state = 'sent' AND updated_at < ?)")
            params.append(sent_before)
        if dead:
            clauses.append("state = 'dead'")
        if not clauses:
            return 0
        where = "(" + " OR ".join(clauses) + ")"
        if channel:
            where += " AND channel = ?"
            params.append(channel)
        with self._tx() as db:
            removed = db.execute(f"DELETE FROM deliveries WHERE {where}", params).rowcount
            db.execute(
                "DELETE FROM events WHERE planned = 1 AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.event_id = events.event_id)"
            )
            return int(removed)


__all__ = [
    "TRANSITIONS",
    "Action",
    "ChannelStatus",
    "DeadLetter",
    "Delivery",
    "Outbox",
    "State",
    "transition",
]
