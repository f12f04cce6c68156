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
    supersede pending               superseded     (a later state of the same call came first)

A worker killed mid-delivery leaves its rows in flight; the next worker (it holds an exclusive
lock file, so it knows no other worker is alive) releases them and sends again with the same
idempotency key (VK ``random_id``, webhook ``Idempotency-Key``), so nothing is lost and the
recipient sees one message. Times are Unix seconds passed in by the caller.

A message that follows its call (a *thread*: one call, channel and recipient) has a row in
``messages``: the latest stage planned for it, the channel's id of the message once shown
(``ref``), when it was shown, and why it is no longer edited (``closed``). Each state of the
call is a delivery of that thread. Three rules keep a thread in order: a state no later than
the thread's stage is not planned (a late ``incoming`` after ``answered``); a new state
supersedes the thread's pending one (coalescing: only the latest is shown); and a delivery is
not claimed while another of its thread is in flight (never two edits racing).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import math
import os
import random
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO, Any, ParamSpec, TypeVar

from pbxgate.errors import DeliveryError
from pbxgate.notify.backends import (
    REASON_MAX,
    Conflict,
    Db,
    ServerBackend,
    SqliteBackend,
    server_tables,
)
from pbxgate.notify.events import ANSWERED, KINDS, CallEvent
from pbxgate.notify.settings import DATABASE_TIMEOUT
from pbxgate.private import FILE_MODE, private_file

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


class State(Enum):
    PENDING = "pending"
    INFLIGHT = "in-flight"
    SENT = "sent"
    DEAD = "dead"
    SUPERSEDED = "superseded"


class Action(Enum):
    CLAIM = "claim"
    SENT = "sent"
    RETRY = "retry"
    DEAD = "dead"
    RELEASE = "release"
    REVIVE = "revive"
    SUPERSEDE = "supersede"


# (action) -> (states it may start from, resulting state); see the module docstring.
TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = {
    Action.CLAIM: (frozenset({State.PENDING, State.INFLIGHT}), State.INFLIGHT),
    Action.SENT: (frozenset({State.INFLIGHT}), State.SENT),
    Action.RETRY: (frozenset({State.INFLIGHT}), State.PENDING),
    Action.DEAD: (frozenset({State.INFLIGHT}), State.DEAD),
    Action.RELEASE: (frozenset({State.INFLIGHT}), State.PENDING),
    Action.REVIVE: (frozenset({State.DEAD}), State.PENDING),
    Action.SUPERSEDE: (frozenset({State.PENDING}), State.SUPERSEDED),
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
CREATE TABLE IF NOT EXISTS messages (
    thread     TEXT NOT NULL,
    channel    TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    stage      INTEGER NOT NULL,
    ref        TEXT NOT NULL DEFAULT '',
    sent_at    REAL,
    closed     TEXT NOT NULL DEFAULT '',
    updated_at REAL NOT NULL,
    PRIMARY KEY (thread, channel, recipient)
);
"""
# Columns added since the first release, with their definitions (an older outbox gains them).
ADDED_COLUMNS = {
    "thread": "TEXT NOT NULL DEFAULT ''",  # the call, for a message that follows it; '' = none
    "stage": "INTEGER NOT NULL DEFAULT 0",
    "owner": "TEXT NOT NULL DEFAULT ''",  # the node whose lease it is, while in flight
}
# A delivery ``d`` of a thread may go only when no earlier delivery of its thread is unfinished
# (pending or in flight): a state planned later waits for it even when due first (the earlier
# one was released by a node that died, or waits for a retry): shown out of order, it would be
# overwritten, or sent as a second message. Two parameters: the pending and in-flight states.
FIRST_OF_THREAD = (
    "(d.thread = '' OR NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.thread = d.thread"
    " AND x.channel = d.channel AND x.recipient = d.recipient AND x.id < d.id"
    " AND x.state IN (?, ?)))"
)
LATE_INDEXES = """
CREATE INDEX IF NOT EXISTS deliveries_thread ON deliveries(thread, channel, recipient, state)
    WHERE thread != '';
"""
# Delivery numbers (VK's random_id): (random base + row id) mod NUMBERS + 1, so every delivery
# of one outbox has its own, in 1..2^31-1, for the first 2^31-1 deliveries.
NUMBERS = 2**31 - 1
# meta: the highest delivery id a purge deleted. SQLite gives a new row the highest id in the
# table + 1, so once a purge deleted the newest rows their ids, and their numbers, would come
# again, and VK, which keeps a random_id for good, would show nothing for the new call and
# have its edits change the old call's message. The servers' sequences never go back.
PURGED_ID = "purged_id"


@dataclass(frozen=True)
class Delivery:
    id: int
    event: CallEvent
    channel: str
    recipient: str
    attempts: int  # including the current one
    number: int = 1  # this delivery's own number (see NUMBERS), the same on every attempt
    thread: str = ""  # the call whose message this delivery shows ('' = a message of its own)
    ref: str = ""  # the thread's message id at the channel, once shown
    shown_at: float | None = None  # when the thread's message was first shown
    closed: str = ""  # why the thread's message is no longer edited


@dataclass(frozen=True)
class Plan:
    """The deliveries of one event: a (channel, recipient) per target; with ``thread``, as
    the next state of that call's message (``stage``: events.STAGE)."""

    event_id: str
    targets: Sequence[tuple[str, str]]
    thread: str = ""
    stage: int = 0


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


@dataclass(frozen=True)
class DeliveryRow:
    """One delivery as :meth:`Outbox.recent` lists it (the web console's pages)."""

    id: int
    event_id: str
    kind: str
    channel: str
    recipient: str
    state: str
    attempts: int
    last_error: str
    updated_at: float


def _retried(method: Callable[P, R]) -> Callable[P, R]:
    """Run a write again when the database gave its transaction up for another's (a deadlock
    between two nodes): a few times, a few milliseconds apart."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(RETRIES):
            try:
                return method(*args, **kwargs)
            except Conflict:
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.005 * (attempt + 1) + random.random() * 0.01)
        raise AssertionError("unreachable")

    return run


RETRIES = 5
# Events in one INSERT of a group commit: 4 parameters each, under SQLite's oldest limit (999).
GROUP_ROWS = 200
# seconds a worker waits for its node's lock (then works without it), or for an outbox file's
# worker lock (then says another worker delivers from it)
NODE_LOCK_WAIT = 5.0
# Deliveries' ids a purge goes through at a time, and keys it reads at a time (Outbox.purge;
# under SQLite's oldest limit of 999 parameters in a statement), and its pause after each
# transaction: longer than a waiting writer's poll of the write lock (backends.py), which
# otherwise found the lock taken again by the next batch for hundreds of milliseconds
PURGE_BATCH = 500
PURGE_PAUSE = 0.002


# An event as the events table stores it: event_id, kind, payload (its JSON), created_at.
Row = tuple[str, str, str, float]


def row_of(event: CallEvent) -> Row:
    return (event.event_id, event.kind, event.to_json(), event.occurred_at)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _timeouts(backend: str, driver: str, timeout: float) -> dict[str, object]:
    """The drivers' settings that bound the wait for a server that does not answer: without
    them a server that accepts the connection and stays silent, or a host gone without a
    reset, held the start or a commit (and every call waiting for it) for as long as TCP kept
    trying.

    PostgreSQL (psycopg): ``connect_timeout`` for the whole connection start (whole seconds,
    two at least), ``tcp_user_timeout`` for data the server does not acknowledge, keepalives
    for an idle connection to a host that has gone. MariaDB/MySQL: the connect timeout (whole
    seconds for the C drivers, which bound the greeting with it too); PyMySQL's bounds only
    the TCP connect and reads the server's greeting under its read timeout, so it gets that
    too, lifted once connected (:func:`_statements_unbounded`): a statement may rightly run
    long (a console's status of a large outbox, InnoDB's lock wait that ends in a retry)."""
    seconds = max(1, math.ceil(timeout))
    if backend == "postgresql":
        return {
            "connect_timeout": seconds,
            "tcp_user_timeout": int(timeout * 1000),
            "keepalives": 1,
            "keepalives_idle": seconds,
            "keepalives_interval": max(1, seconds // 3),
            "keepalives_count": 3,
        }
    if driver == "pymysql":
        return dict.fromkeys(("connect_timeout", "read_timeout", "write_timeout"), timeout)
    if driver in ("mysqldb", "mariadbconnector"):
        return {"connect_timeout": seconds}
    return {}


def _statements_unbounded(dbapi_connection: Any, _record: object) -> None:
    """A new PyMySQL connection's read and write timeouts lifted once it has greeted (they
    bound the start only, :func:`_timeouts`); its next read or write applies that."""
    if hasattr(dbapi_connection, "_read_timeout"):
        dbapi_connection._read_timeout = None
        dbapi_connection._write_timeout = None


def _found(
    read: Callable[[str, Sequence[object]], Iterable[Any]], select: str, keys: Sequence[str]
) -> set[str]:
    """Those of ``keys`` that ``select`` (``SELECT <key> FROM ... WHERE <key>``) finds, run
    through ``read`` (a transaction's ``execute``, or :meth:`Outbox._query`)."""
    marks = ", ".join("?" * len(keys))
    return {str(row[0]) for row in read(f"{select} IN ({marks})", keys)}


def _default_node() -> str:
    """This host's name: a node that restarts takes back its own leases at once."""
    return socket.gethostname() or "pbxgate"


class Outbox:
    """One outbox: a SQLite file (:meth:`open`) or tables on PostgreSQL / MariaDB shared by
    several nodes (:meth:`connect`). Thread-safe."""

    def __init__(self, db: SqliteBackend | ServerBackend, node: str = "") -> None:
        self._db = db
        self.display = db.display
        self.path = db.path if isinstance(db, SqliteBackend) else None
        self.shared = db.shared
        self.node = node  # who holds the leases this outbox takes
        self._worker_lock: IO[bytes] | None = None
        self._node_lock: Any = None  # a shared outbox's worker: the connection holding its lock
        self.mode = FILE_MODE
        self.number_base = 0

    @classmethod
    def open(cls, path: Path, *, synchronous: str = "FULL", mode: int = FILE_MODE) -> Outbox:
        """Open (creating) the outbox file. The worker passes ``synchronous="NORMAL"``: its
        commits (claims, outcomes) then skip the fsync; losing the last few on power loss only
        means a resend, which idempotency absorbs. Enqueues always use FULL.
        """
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        try:
            private_file(path, mode, companions=True)  # callers' numbers and names
            private_file(Path(f"{path}.write.lock"), mode)  # its writers' turns (backends.py)
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            # WAL: readers (pbxgate notify status) never block the AGI's enqueue.
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: in WAL mode every commit is fsynced, so an enqueued event survives power loss.
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(SCHEMA)
            have = {str(r[1]) for r in conn.execute("PRAGMA table_info(deliveries)")}
            for column, definition in ADDED_COLUMNS.items():
                if column not in have:
                    try:
                        conn.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {definition}")
                    except sqlite3.OperationalError as exc:  # another process was quicker
                        if "duplicate column" not in str(exc):
                            raise
            conn.executescript(LATE_INDEXES)
        except (OSError, sqlite3.Error) as exc:
            raise DeliveryError(f"cannot open the outbox {path}: {exc}") from exc
        try:
            backend = SqliteBackend(conn, path, synchronous, mode)
        except OSError as exc:
            conn.close()
            raise DeliveryError(f"cannot open the outbox {path}: {exc}") from exc
        box = cls(backend)
        box.mode = mode
        try:
            box._number_base()
            box._stages_by_ten()
        except BaseException:
            backend.close()
            raise
        return box

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        password: str | None = None,
        node: str = "",
        timeout: float = DATABASE_TIMEOUT,
    ) -> Outbox:
        """Open (creating its tables) an outbox on PostgreSQL or MariaDB/MySQL, given as a
        SQLAlchemy URL (``postgresql+psycopg://pbxgate@db/pbxgate``, ``mysql+pymysql://...``);
        the password comes apart from the URL, so it is never shown. ``node`` names this
        pbxgate among those sharing it (its leases carry the name). A server that does not
        answer is waited for about ``timeout`` seconds (:func:`_timeouts`), then fails in one
        line."""
        from sqlalchemy import MetaData, create_engine, event  # noqa: PLC0415
        from sqlalchemy.engine import make_url  # noqa: PLC0415
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError  # noqa: PLC0415

        try:
            parsed = make_url(url)
        except ArgumentError:
            raise DeliveryError("the outbox database URL is not a SQLAlchemy URL") from None
        if parsed.get_backend_name() not in ("postgresql", "mysql", "mariadb"):
            raise DeliveryError(
                f"an outbox database must be PostgreSQL or MariaDB/MySQL, not "
                f"{parsed.get_backend_name()}",
                hint="a SQLite outbox is a file: [notify] outbox = PATH",
            )
        if password is not None:
            parsed = parsed.set(password=password)
        if parsed.get_backend_name() != "postgresql" and "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        display = parsed.render_as_string(hide_password=True)
        try:
            engine = create_engine(
                parsed,
                isolation_level="READ COMMITTED",
                pool_pre_ping=True,
                pool_size=4,
                max_overflow=4,
                connect_args=_timeouts(
                    parsed.get_backend_name(), parsed.get_driver_name(), timeout
                ),
            )
            if parsed.get_driver_name() == "pymysql":
                event.listen(engine, "connect", _statements_unbounded)
            metadata = MetaData()
            server_tables(metadata)
            try:
                metadata.create_all(engine, checkfirst=True)
            except SQLAlchemyError:  # two nodes starting at once: the other made them
                time.sleep(0.5)
                metadata.create_all(engine, checkfirst=True)
        except SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None) or exc
            reason = " ".join(str(orig).split())[:300]
            raise DeliveryError(f"cannot open the outbox {display}: {reason}") from exc
        except ImportError as exc:
            raise DeliveryError(
                f"cannot open the outbox {display}: its driver is not installed ({exc.name})",
                hint="pip install 'pbxgate[mysql]' or 'pbxgate[postgresql]'",
            ) from exc
        box = cls(ServerBackend(engine, display), node=node or _default_node())
        box._number_base()
        box._stages_by_ten()
        return box

    def _lock_name(self) -> str:
        """The node's lock name: server-wide on MariaDB (64 characters at most), so made of
        the database's name and the node's (not of the address it is reached by)."""
        database = getattr(self._db, "database", "")
        digest = hashlib.sha256(f"{database}|{self.node}".encode()).hexdigest()[:32]
        return f"pbxgate-worker-{digest}"

    def _number_base(self) -> None:
        with self._db.tx() as db:
            db.execute(
                self._db.ignore("INSERT INTO meta (name, value) VALUES ('number_base', ?)"),
                (str(secrets.randbelow(NUMBERS)),),
            )
            row = db.execute("SELECT value FROM meta WHERE name = 'number_base'").fetchone()
        self.number_base = int(row[0])

    def _stages_by_ten(self) -> None:
        """Stages were 0-3 before transfers had stages of their own (events.STAGE): the
        messages and deliveries of an older outbox are moved to the new scale once, by the
        first process that opens it (the meta row it adds is the others' sign)."""
        with self._db.tx() as db:
            added = db.execute(
                self._db.ignore("INSERT INTO meta (name, value) VALUES ('stages', '10')")
            ).rowcount
            if added == 1:
                db.execute("UPDATE messages SET stage = stage * 10 WHERE stage > 0")
                db.execute("UPDATE deliveries SET stage = stage * 10 WHERE stage > 0")

    def close(self) -> None:
        if self._node_lock is not None:
            self._node_lock.close()
            self._node_lock = None
        self._db.close()
        if self._worker_lock is not None:
            self._worker_lock.close()
            self._worker_lock = None

    def _tx(self, *, durable: bool = False) -> Any:
        return self._db.tx(durable=durable)

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._db.query(sql, params)

    # -- the AGI side -------------------------------------------------------------------------

    def has_event(self, event_id: str) -> bool:
        """Whether an event with this id is in the outbox."""
        return bool(self._query("SELECT 1 FROM events WHERE event_id = ?", (event_id,)))

    def enqueue(self, event: CallEvent) -> bool:
        """Store ``event`` durably; False when an event with this ``event_id`` is already in."""
        return self.enqueue_many([event])[0]

    def enqueue_many(self, events: Sequence[CallEvent]) -> list[bool]:
        """Store ``events`` durably, in one transaction (one fsync); for each, False when an
        event with its ``event_id`` is already in (or earlier in ``events``)."""
        return self.enqueue_rows([row_of(event) for event in events])

    @_retried
    def enqueue_rows(self, rows: Sequence[Row]) -> list[bool]:
        """:meth:`enqueue_many` for events already in their stored form (:func:`row_of`: what
        the outbox writer process gets from the service)."""
        if isinstance(self._db, SqliteBackend):
            return self._enqueue_rows(rows)
        sql = self._db.ignore(
            "INSERT INTO events (event_id, kind, payload, created_at) VALUES (?, ?, ?, ?)"
        )
        with self._tx(durable=True) as db:
            return [db.execute(sql, row).rowcount == 1 for row in rows]

    def _enqueue_rows(self, rows: Sequence[Row]) -> list[bool]:
        """:meth:`enqueue_rows` on SQLite in four statements whatever the number of events: one
        SELECT finds the ids already in, one INSERT writes every new row. Each statement lets
        the GIL go and takes it back, and a thread that commits for the FastAGI side waits
        for it every time while the event loop is busy: a statement per event made a group's
        commit wait for the loop once per call in it."""
        first: dict[str, Row] = {}
        for row in rows:
            first.setdefault(row[0], row)
        inserted: set[str] = set()
        with self._tx(durable=True) as db:
            for chunk in _chunks(list(first), GROUP_ROWS):
                there = _found(db.execute, "SELECT event_id FROM events WHERE event_id", chunk)
                new = [event_id for event_id in chunk if event_id not in there]
                if not new:
                    continue
                params: list[object] = []
                for event_id in new:
                    params += first[event_id]
                values = ", ".join(["(?, ?, ?, ?)"] * len(new))
                db.execute(
                    f"INSERT INTO events (event_id, kind, payload, created_at) VALUES {values}",
                    params,
                )
                inserted.update(new)
        stored: list[bool] = []
        for row in rows:  # a repeated id: its first occurrence only
            stored.append(row[0] in inserted)
            inserted.discard(row[0])
        return stored

    # -- the worker ---------------------------------------------------------------------------

    def acquire_worker_lock(self) -> None:
        """Become this outbox file's only worker (an flock the kernel drops when the process
        dies). On a shared outbox, try to hold this node's session lock (the database drops it
        when the session ends): only its holder takes back the node's deliveries in flight at
        start (:meth:`release_inflight`). Without it (another worker under the same node name,
        or a session of this node's previous life the server has not noticed is gone, as
        after a power cut, for up to TCP keepalive's two hours) the worker still works, and
        those deliveries go back when their leases run out."""
        if isinstance(self._db, ServerBackend):
            # a node killed a moment ago: the server may not have ended its session yet
            deadline = time.monotonic() + NODE_LOCK_WAIT
            while (held := self._db.hold_lock(self._lock_name())) is None:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
            self._node_lock = held
            if held is None:
                log.warning(
                    "another session holds node %r's lock on %s (a second worker under this "
                    "node name, or this node's session before a crash); deliveries it left in "
                    "flight go back when their leases run out",
                    self.node,
                    self.display,
                )
                # its leases carry a name of their own, so that the lock's holder (now or
                # later) never takes this worker's deliveries in flight back as its own
                self.node = f"{self.node}#{secrets.token_hex(4)}"
            return
        if self.path is None:
            return
        fd = os.open(f"{self.path}.worker.lock", os.O_WRONLY | os.O_CREAT, self.mode)
        handle = os.fdopen(fd, "wb")  # held until close
        # a worker whose service was killed a moment ago finishes its sends in flight first
        deadline = time.monotonic() + NODE_LOCK_WAIT
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise DeliveryError(
                        f"another worker is already delivering from {self.path}",
                        hint="run one pbxgate serve (or notify worker) per outbox",
                    ) from None
            time.sleep(0.1)
        handle.truncate(0)  # the holder's pid, not the one before
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._worker_lock = handle

    def unplanned(self, limit: int = 100) -> list[CallEvent]:
        rows = self._query(
            "SELECT payload FROM events WHERE planned = 0 ORDER BY created_at LIMIT ?", (limit,)
        )
        return [CallEvent.from_json(str(r[0])) for r in rows]

    def call_events(self, call_id: str) -> list[CallEvent]:
        """The events of one call (``call_id``: :attr:`CallEvent.call_id`) still in the outbox,
        in the order they occurred; each transfer's ``answered`` (``answered:ID#n``) too."""
        ids = [f"{kind}:{call_id}" for kind in KINDS]
        marks = ", ".join("?" * len(ids))
        # "!" escapes LIKE's wildcards the same way in SQLite, MariaDB and PostgreSQL
        after = re.sub(r"([!%_])", r"!\1", f"{ANSWERED}:{call_id}#") + "%"
        rows = self._query(
            f"SELECT payload FROM events WHERE event_id IN ({marks}) OR event_id LIKE ? ESCAPE '!'",
            [*ids, after],
        )
        events = [CallEvent.from_json(str(r[0])) for r in rows]
        return sorted(events, key=lambda e: (e.occurred_at, e.stage))

    def events_since(self, kinds: Iterable[str], since: float) -> list[CallEvent]:
        """The queued events of these kinds that occurred at ``since`` or later, oldest first
        (what a restarted service remembers of the last hours)."""
        wanted = tuple(kinds)
        marks = ", ".join("?" * len(wanted))
        rows = self._query(
            f"SELECT payload FROM events WHERE kind IN ({marks}) AND created_at >= ?"
            " ORDER BY created_at",
            (*wanted, since),
        )
        return [CallEvent.from_json(str(r[0])) for r in rows]

    def plan(self, event_id: str, targets: Iterable[tuple[str, str]], now: float) -> int:
        """Create one pending delivery per (channel, recipient); mark the event planned."""
        return self.plan_many([Plan(event_id, list(targets))], now)

    @_retried
    def plan_many(self, plans: Sequence[Plan], now: float, *, edit_delay: float = 0.0) -> int:
        """:meth:`plan` for several events in one transaction (the events of a busy second are
        planned together, not one write each beside the calls' commits). A plan with a
        thread also reaches every recipient already shown that call's message; its edits wait
        ``edit_delay`` seconds for the call's next change."""
        with self._tx() as db:
            fresh = self._past_purged(db)
            count = 0
            for plan in plans:
                if plan.thread:
                    count += self._plan_thread(db, plan, now, edit_delay, fresh)
                else:
                    for channel, recipient in plan.targets:
                        count += self._insert(db, plan, channel, recipient, now, fresh)
                db.execute("UPDATE events SET planned = 1 WHERE event_id = ?", (plan.event_id,))
            return count

    def _past_purged(self, db: Db) -> list[int]:
        """The id the next delivery must take ([] for the table's own next): past every id a
        purge deleted, on SQLite, when the purge took the newest rows (:data:`PURGED_ID`)."""
        if not self._db.reuses_ids:
            return []
        row = db.execute("SELECT value FROM meta WHERE name = ?", (PURGED_ID,)).fetchone()
        if row is None:
            return []
        top = db.execute("SELECT MAX(id) FROM deliveries").fetchone()[0]
        purged = int(row[0])
        return [purged + 1] if top is None or int(top) < purged else []

    def _insert(
        self, db: Db, plan: Plan, channel: str, recipient: str, due: float, fresh: list[int]
    ) -> int:
        """Insert a pending delivery (none when it exists); with ``fresh``, under that id (the
        first one inserted takes it and empties ``fresh``: the next follow it)."""
        columns = "event_id, channel, recipient, state, next_attempt_at, updated_at, thread, stage"
        values: tuple[object, ...] = (plan.event_id, channel, recipient, State.PENDING.value,
                                      due, due, plan.thread, plan.stage)  # fmt: skip
        if fresh:
            columns, values = f"id, {columns}", (fresh[0], *values)
        marks = ", ".join("?" * len(values))
        cur = db.execute(
            self._db.ignore(f"INSERT INTO deliveries ({columns}) VALUES ({marks})"), values
        )
        if cur.rowcount:
            fresh.clear()
        return int(cur.rowcount)

    def _plan_thread(
        self, db: Db, plan: Plan, now: float, edit_delay: float, fresh: list[int]
    ) -> int:
        # The thread's rows are locked first (nodes planning two states of one call at once
        # take turns), then the targets without a row get one (stage -1: new) and all are
        # read again. Locking before inserting: two nodes that both inserted (or met) a row
        # first would each hold a shared lock on it and wait for the other's.
        def rows() -> dict[tuple[str, str], tuple[int, Any, str]]:
            return {
                (str(r[0]), str(r[1])): (int(r[2]), r[3], str(r[4]))
                for r in db.execute(
                    "SELECT channel, recipient, stage, sent_at, closed FROM messages"
                    " WHERE thread = ? ORDER BY channel, recipient" + self._db.for_update,
                    (plan.thread,),
                )
            }

        known = rows()
        missing = [t for t in dict.fromkeys(plan.targets) if t not in known]
        if missing:
            db.executemany(
                self._db.ignore(
                    "INSERT INTO messages (thread, channel, recipient, stage, updated_at)"
                    " VALUES (?, ?, ?, -1, ?)"
                ),
                [(plan.thread, channel, recipient, now) for channel, recipient in missing],
            )
            known = rows()
        count = 0
        for channel, recipient in dict.fromkeys([*plan.targets, *known]):
            row = known.get((channel, recipient))
            if row is None:
                continue  # a race lost to a purge: planned again by the next event
            key = (plan.thread, channel, recipient)
            stage, shown_at, closed = row
            if stage >= plan.stage:
                continue  # the message shows this state or a later one already
            db.execute(
                "UPDATE messages SET stage = ?, updated_at = ? WHERE thread = ? AND channel = ?"
                " AND recipient = ?",
                (plan.stage, now, *key),
            )
            if closed:
                continue  # no longer edited: nothing is sent again
            # The waiting state is replaced; but a first send that was tried may have reached
            # the channel (a timeout, a node killed before it could record it): it is sent
            # again under its own key, so that the recipient gets one message, then edited.
            # (never tried: no attempt and no error; a dead letter revived has no attempt
            # left on its count but kept the reason it died of)
            tried = " AND attempts = 0 AND last_error = ''" if shown_at is None else ""
            db.execute(
                "UPDATE deliveries SET state = ?, updated_at = ?, last_error = ?"
                " WHERE thread = ? AND channel = ? AND recipient = ? AND state = ?" + tried,
                (State.SUPERSEDED.value, now, f"superseded by {plan.event_id}"[:REASON_MAX], *key,
                 State.PENDING.value),
            )  # fmt: skip
            busy = (
                shown_at is not None
                or db.execute(
                    "SELECT 1 FROM deliveries WHERE thread = ? AND channel = ? AND recipient = ?"
                    " AND state IN (?, ?) LIMIT 1",
                    (*key, State.INFLIGHT.value, State.PENDING.value),
                ).fetchone()
                is not None
            )
            due = now + edit_delay if busy else now
            count += self._insert(db, plan, channel, recipient, due, fresh)
        return count

    @_retried
    def claim(self, now: float, lease: float, limit: int) -> list[Delivery]:
        """Take up to ``limit`` due deliveries in flight until ``now + lease``; of a thread,
        only its earliest unfinished delivery (so none while another is in flight). On a
        shared outbox the rows taken are locked and those another node is taking are
        skipped."""
        with self._tx() as db:
            found = [
                int(r[0])
                for r in db.execute(
                    "SELECT d.id FROM deliveries d"
                    " WHERE ((d.state = ? AND d.next_attempt_at <= ?)"
                    "    OR (d.state = ? AND d.lease_until <= ?))"
                    " AND " + FIRST_OF_THREAD + " ORDER BY d.next_attempt_at, d.id LIMIT ?"
                    + self._db.skip_locked,
                    (State.PENDING.value, now, State.INFLIGHT.value, now,
                     State.PENDING.value, State.INFLIGHT.value, limit),
                )
            ]  # fmt: skip
            if not found:
                return []
            db.executemany(
                "UPDATE deliveries SET state = ?, lease_until = ?, attempts = attempts + 1,"
                " updated_at = ?, owner = ? WHERE id = ?",
                [(State.INFLIGHT.value, now + lease, now, self.node, i) for i in found],
            )
            marks = ",".join("?" * len(found))
            rows = list(
                db.execute(
                    "SELECT d.id, e.payload, d.channel, d.recipient, d.attempts, d.thread,"
                    " m.ref, m.sent_at, m.closed"
                    " FROM deliveries d JOIN events e ON e.event_id = d.event_id"
                    " LEFT JOIN messages m ON d.thread != '' AND m.thread = d.thread"
                    "  AND m.channel = d.channel AND m.recipient = d.recipient"
                    f" WHERE d.id IN ({marks}) ORDER BY d.next_attempt_at, d.id",
                    found,
                )
            )
        base = self.number_base
        return [
            Delivery(int(r[0]), CallEvent.from_json(r[1]), r[2], r[3], int(r[4]),
                     (base + int(r[0])) % NUMBERS + 1, r[5], r[6] or "",
                     None if r[7] is None else float(r[7]), r[8] or "")
            for r in rows
        ]  # fmt: skip

    @_retried
    def _move(self, action: Action, ids: Sequence[int], sets: str, params: Sequence[object]) -> int:
        with self._tx() as db:
            return self._move_in(db, action, ids, sets, params)

    @staticmethod
    def _move_in(
        db: Db,
        action: Action,
        ids: Sequence[int],
        sets: str,
        params: Sequence[object],
        holder: tuple[str, int] | None = None,
    ) -> int:
        """Apply ``action`` to the deliveries ``ids`` that are in one of its source states;
        with ``holder`` (node, attempt), only while that node's claim of that attempt holds
        (a lease that ran out and was taken by another node is not this node's to finish)."""
        sources, target = TRANSITIONS[action]
        marks = ",".join("?" * len(sources))
        idmarks = ",".join("?" * len(ids))
        sql = (
            f"UPDATE deliveries SET state = ?, {sets}"
            f" WHERE id IN ({idmarks}) AND state IN ({marks})"
        )
        args: list[object] = [target.value, *params, *ids, *(s.value for s in sources)]
        if holder is not None:
            sql += " AND owner = ? AND attempts = ?"
            args += holder
        return int(db.execute(sql, args).rowcount)

    def _holder(self, attempt: int | None) -> tuple[str, int] | None:
        return None if attempt is None else (self.node, attempt)

    def _finish(
        self,
        action: Action,
        delivery_id: int,
        sets: str,
        params: Sequence[object],
        attempt: int | None,
        thread_sql: str = "",
        thread_params: Sequence[object] = (),
    ) -> bool:
        """Move one claimed delivery on (with ``attempt``: only while this node's claim of that
        attempt holds) and, when it moved, update its thread's message row with ``thread_sql``
        (``... WHERE`` the delivery's thread, channel and recipient; its id is the last
        parameter)."""
        with self._tx() as db:
            moved = self._move_in(db, action, [delivery_id], sets, params, self._holder(attempt))
            if moved == 1 and thread_sql:
                db.execute(
                    thread_sql + " WHERE (thread, channel, recipient) ="
                    " (SELECT thread, channel, recipient FROM deliveries WHERE id = ?)",
                    (*thread_params, delivery_id),
                )
            return moved == 1

    @_retried
    def mark_sent(
        self,
        delivery_id: int,
        now: float,
        detail: str = "",
        ref: str = "",
        *,
        attempt: int | None = None,
    ) -> bool:
        """The delivery was shown (or needs no showing: ``detail`` says why); for a thread,
        its message's id ``ref`` is kept from the first state shown. With ``attempt`` (the
        claimed delivery's), only if this node still holds that claim."""
        return self._finish(
            Action.SENT,
            delivery_id,
            "lease_until = NULL, updated_at = ?, last_error = ?",
            (now, detail[:REASON_MAX]),
            attempt,
            "UPDATE messages SET ref = CASE WHEN ref = '' THEN ? ELSE ref END,"
            " sent_at = coalesce(sent_at, ?), updated_at = ?",
            (ref, now, now),
        )

    @_retried
    def mark_gone(
        self, delivery_id: int, now: float, reason: str, *, attempt: int | None = None
    ) -> bool:
        """The thread's message can no longer be edited: this delivery is done (``reason``
        kept), and the thread's later states are not sent."""
        return self._finish(
            Action.SENT,
            delivery_id,
            "lease_until = NULL, updated_at = ?, last_error = ?",
            (now, reason[:REASON_MAX]),
            attempt,
            "UPDATE messages SET closed = ?, updated_at = ?",
            (reason[:REASON_MAX], now),
        )

    @_retried
    def mark_retry(
        self,
        delivery_id: int,
        now: float,
        next_at: float,
        error: str,
        *,
        attempt: int | None = None,
    ) -> bool:
        sets = "lease_until = NULL, updated_at = ?, next_attempt_at = ?, last_error = ?"
        params = (now, next_at, error[:REASON_MAX])
        return self._finish(Action.RETRY, delivery_id, sets, params, attempt)

    @_retried
    def mark_dead(
        self, delivery_id: int, now: float, reason: str, *, attempt: int | None = None
    ) -> bool:
        sets = "lease_until = NULL, updated_at = ?, last_error = ?"
        return self._finish(Action.DEAD, delivery_id, sets, (now, reason[:REASON_MAX]), attempt)

    def release_inflight(self, now: float) -> int:
        """Return in-flight deliveries to pending: every one of an outbox file (call only while
        holding the worker lock), this node's own on a shared outbox (the orphans of its
        previous life; other nodes' orphans go back when their leases run out)."""
        if self.shared:
            if self._node_lock is None:
                return 0  # not this node's only worker: leases bring its deliveries back
            ids = [
                int(str(r[0]))
                for r in self._query(
                    "SELECT id FROM deliveries WHERE state = ? AND owner = ?",
                    (State.INFLIGHT.value, self.node),
                )
            ]
        else:
            ids = [int(str(r[0])) for r in self._ids_in(State.INFLIGHT, None)]
        if not ids:
            return 0
        sets = "lease_until = NULL, updated_at = ?, next_attempt_at = ?"
        return self._move(Action.RELEASE, ids, sets, (now, now))

    def revive(self, now: float, channel: str | None = None) -> int:
        """Dead letters back to pending with a fresh attempt budget (``pbxgate notify retry``);
        not a call's state that a later one of its message has replaced (shown again, it would
        take the message back in time)."""
        sql = (
            "SELECT d.id FROM deliveries d WHERE d.state = ? AND (d.thread = '' OR NOT EXISTS"
            " (SELECT 1 FROM deliveries x WHERE x.thread = d.thread AND x.channel = d.channel"
            " AND x.recipient = d.recipient AND x.id > d.id AND x.state != ?))"
        )
        params: list[object] = [State.DEAD.value, State.DEAD.value]
        if channel:
            sql += " AND d.channel = ?"
            params.append(channel)
        ids = [int(str(r[0])) for r in self._query(sql, params)]
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
        """The earliest time a pending delivery may be claimed or a lease runs out (a state
        that waits for an earlier one of its call does not count: it goes after that one)."""
        row = self._query(
            "SELECT min(CASE WHEN d.state = ? THEN d.next_attempt_at ELSE d.lease_until END)"
            " FROM deliveries d WHERE d.state IN (?, ?) AND " + FIRST_OF_THREAD,
            (State.PENDING.value, State.PENDING.value, State.INFLIGHT.value,
             State.PENDING.value, State.INFLIGHT.value),
        )[0]  # fmt: skip
        return None if row[0] is None else float(str(row[0]))

    # -- status, retry, purge -----------------------------------------------------------------

    def waiting_first_attempt(self) -> bool:
        """Whether a delivery never tried yet is waiting (an edit's short delay)."""
        return bool(
            self._query(
                "SELECT 1 FROM deliveries d WHERE d.state = ? AND d.attempts = 0 AND "
                + FIRST_OF_THREAD
                + " LIMIT 1",
                (State.PENDING.value, State.PENDING.value, State.INFLIGHT.value),
            )
        )

    def backlog(self) -> int:
        """Events not yet planned into deliveries (the worker has not seen them yet)."""
        return int(str(self._query("SELECT count(*) FROM events WHERE planned = 0")[0][0]))

    def status(self) -> list[ChannelStatus]:
        rows = self._query(
            "SELECT channel,"
            " sum(CASE WHEN state = 'pending' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN state = 'pending' AND attempts > 0 THEN 1 ELSE 0 END),"
            " sum(CASE WHEN state = 'in-flight' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN state = 'sent' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN state = 'dead' THEN 1 ELSE 0 END),"
            " min(CASE WHEN state = 'pending' THEN e.created_at END)"
            " FROM deliveries d JOIN events e ON e.event_id = d.event_id"
            " GROUP BY channel ORDER BY channel"
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

    def recent(self, limit: int = 50, after: int = 0) -> list[DeliveryRow]:
        """The latest deliveries, newest first; with ``after``, only those planned after the
        delivery of that id (a follower's cursor: ids only grow)."""
        rows = self._query(
            "SELECT d.id, d.event_id, e.kind, d.channel, d.recipient, d.state, d.attempts,"
            " d.last_error, d.updated_at FROM deliveries d"
            " JOIN events e ON e.event_id = d.event_id"
            " WHERE d.id > ? ORDER BY d.id DESC LIMIT ?",
            (after, limit),
        )
        return [
            DeliveryRow(int(str(r[0])), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]),
                        int(str(r[6])), str(r[7]), float(str(r[8])))
            for r in rows
        ]  # fmt: skip

    def purge(
        self,
        *,
        sent_before: float | None,
        dead: bool,
        channel: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Delete sent deliveries older than ``sent_before`` and, with ``dead``, dead letters,
        with the events and message rows they leave without a delivery; then, older than
        ``sent_before``, events planned with nothing to send and message rows no delivery
        needs. ``progress`` gets, after each window of the deliveries, how far through their
        keys the purge is, and how far they go.

        :data:`PURGE_BATCH` ids a window, each window read first without the write lock, and
        deleted in a short transaction of its own when something in it is due: the calls'
        commits go in between. As one transaction, half of a month of an office's deliveries
        (180,000 of 360,000) held a SQLite outbox's write lock for 1.2 s, and every call
        arriving meanwhile waited for it; on a shared outbox a long transaction also holds the
        rows it deletes and the server's undo log. Each batch is read by its key alone and
        sorted out here: a condition on the state or on ``planned`` let a planner (SQLite's
        without statistics, PostgreSQL's with stale ones) take their index and read every kept
        row again for each batch (PostgreSQL: 90-140 ms a batch)."""
        if sent_before is None and not dead:
            return 0

        def due(state: str, updated_at: float, on: str) -> bool:
            if channel and on != channel:
                return False
            if dead and state == State.DEAD.value:
                return True
            return (
                sent_before is not None
                and state in (State.SENT.value, State.SUPERSEDED.value)
                and updated_at < sent_before
            )

        removed = 0
        first, last = self._query("SELECT MIN(id), MAX(id) FROM deliveries")[0]
        if first is not None:
            before, span = int(first) - 1, int(last) - int(first) + 1
            for start in range(before, int(last), PURGE_BATCH):
                removed += self._purge_window(start, due)
                if progress is not None:
                    progress(min(span, start + PURGE_BATCH - before), span)
        if sent_before is not None:  # events planned with nothing to send, and older threads
            for key, select in (
                ("event_id", "SELECT event_id, created_at, planned FROM events"),
                ("thread", "SELECT thread, updated_at, 1 FROM messages"),
            ):
                for rows in self._batches(key, select):
                    old = {str(r[0]) for r in rows if float(r[1]) < sent_before and int(r[2]) == 1}
                    events, threads = (old, set()) if key == "event_id" else (set(), old)
                    if old and self._drop_old(events, threads):
                        time.sleep(PURGE_PAUSE)
        return removed

    def _purge_window(self, start: int, due: Callable[[str, float, str], bool]) -> int:
        """Delete the deliveries with ids in (start, start + PURGE_BATCH] that are ``due``
        (state, updated_at, channel), and what no delivery needs any more; how many went."""
        columns = (
            "SELECT id, state, updated_at, channel, event_id, thread"
            f" FROM deliveries{self._db.by_key}"
        )
        # read first without the write lock: a window with nothing to delete (the part of the
        # outbox that is kept) takes no turn from the calls' commits
        ids = [
            int(row[0])
            for row in self._query(
                f"{columns} WHERE id > ? AND id <= ?", (start, start + PURGE_BATCH)
            )
            if due(str(row[1]), float(row[2]), str(row[3]))
        ]
        if not ids:
            return 0
        removed = self._delete_due(columns, ids, due)
        time.sleep(PURGE_PAUSE)
        return removed

    @_retried
    def _delete_due(
        self, columns: str, ids: list[int], due: Callable[[str, float, str], bool]
    ) -> int:
        """Delete those of the deliveries ``ids`` that are still ``due``, read again and
        locked (on a server) in the same transaction: only they are locked, not the window's
        deliveries in progress, which the workers and the planning of other nodes update."""
        marks = ", ".join("?" * len(ids))
        with self._tx() as db:
            gone = [
                (int(row[0]), str(row[4]), str(row[5]))
                for row in db.execute(f"{columns} WHERE id IN ({marks}){self._db.for_update}", ids)
                if due(str(row[1]), float(row[2]), str(row[3]))
            ]
            if not gone:
                return 0
            if self._db.reuses_ids:  # the ids past which new deliveries go (PURGED_ID)
                top = max(id_ for id_, _, _ in gone)
                db.execute(
                    self._db.ignore("INSERT INTO meta (name, value) VALUES (?, '0')"),
                    (PURGED_ID,),
                )
                db.execute(
                    "UPDATE meta SET value = ? WHERE name = ? AND CAST(value AS INTEGER) < ?",
                    (str(top), PURGED_ID, top),
                )
            marks = ", ".join("?" * len(gone))
            removed = db.execute(
                f"DELETE FROM deliveries{self._db.by_key} WHERE id IN ({marks})",
                [id_ for id_, _, _ in gone],
            ).rowcount
            self._drop_unused(db, {event for _, event, _ in gone}, {t for _, _, t in gone if t})
        return int(removed)

    @staticmethod
    def _unused(
        read: Callable[[str, Sequence[object]], Iterable[Any]],
        events: set[str],
        threads: set[str],
    ) -> tuple[list[str], list[str], list[tuple[str, str, str]]]:
        """Which of ``events`` no delivery needs any more, which of ``threads`` none needs at
        all, and which message rows (thread, channel, recipient) of the others none needs,
        read by key through ``read`` and sorted out here: with ``NOT EXISTS`` over a list of
        keys, planners chose to read the whole deliveries table once a statement (PostgreSQL:
        a hash join, 50-200 ms a batch)."""
        unused: list[str] = []
        for chunk in _chunks(sorted(events), GROUP_ROWS):
            used = _found(read, "SELECT DISTINCT event_id FROM deliveries WHERE event_id", chunk)
            unused += [event for event in chunk if event not in used]
        whole: list[str] = []
        rows: list[tuple[str, str, str]] = []
        for chunk in _chunks(sorted(threads), GROUP_ROWS):
            marks = ", ".join("?" * len(chunk))
            needed = {
                (str(row[0]), str(row[1]), str(row[2]))
                for row in read(
                    "SELECT DISTINCT thread, channel, recipient FROM deliveries"
                    f" WHERE thread != '' AND thread IN ({marks})",
                    chunk,
                )
            }
            kept = {thread for thread, _, _ in needed}
            whole += [thread for thread in chunk if thread not in kept]
            if kept:  # some of a call's recipients still have a delivery: the others' rows
                shown = read(
                    "SELECT thread, channel, recipient FROM messages"
                    f" WHERE thread IN ({', '.join('?' * len(kept))})",
                    sorted(kept),
                )
                rows += [key for key in ((str(t), str(c), str(r)) for t, c, r in shown)
                         if key not in needed]  # fmt: skip
        return unused, whole, rows

    def _drop_unused(self, db: Db, events: set[str], threads: set[str]) -> None:
        """Delete what :meth:`_unused` finds, in the transaction of ``db``."""
        unused, whole, rows = self._unused(db.execute, events, threads)
        for chunk in _chunks(unused, GROUP_ROWS):
            marks = ", ".join("?" * len(chunk))
            db.execute(f"DELETE FROM events WHERE event_id IN ({marks})", chunk)
        for chunk in _chunks(whole, GROUP_ROWS):
            marks = ", ".join("?" * len(chunk))
            db.execute(f"DELETE FROM messages WHERE thread IN ({marks})", chunk)
        db.executemany(
            "DELETE FROM messages WHERE thread = ? AND channel = ? AND recipient = ?", rows
        )

    @_retried
    def _drop_old(self, events: set[str], threads: set[str]) -> bool:
        """:meth:`_drop_unused` for keys the purge's walk found older than its cutoff, in a
        transaction only when something is to go (read first without the write lock)."""
        if not any(self._unused(self._query, events, threads)):
            return False
        with self._tx() as db:
            self._drop_unused(db, events, threads)
        return True

    def _batches(self, key: str, select: str) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of ``select`` in the order of the text ``key`` (their first column),
        :data:`PURGE_BATCH` at a time, each batch read after the last key of the one before.
        A key may have several rows (a call's message rows): a full batch keeps its last
        key's rows for the next one, which reads them all."""
        after, since = "", ">"
        while True:
            rows = self._query(
                f"{select} WHERE {key} {since} ? ORDER BY {key} LIMIT {PURGE_BATCH}", (after,)
            )
            if len(rows) < PURGE_BATCH:
                if rows:
                    yield rows
                return
            last = str(rows[-1][0])
            whole = [row for row in rows if str(row[0]) != last]
            if whole and (since, after) != (">=", last):
                yield whole  # the last key's rows may go on in the next batch: read them there
                after, since = last, ">="
            else:  # one key filled the batch (or keys a collation holds equal did)
                yield rows
                after, since = last, ">"

    # -- threads ------------------------------------------------------------------------------

    def thread(self, thread: str) -> list[tuple[str, str, int, str, float | None, str]]:
        """The messages of a call: (channel, recipient, stage, ref, shown_at, closed)."""
        return [
            (str(r[0]), str(r[1]), int(str(r[2])), str(r[3]),
             None if r[4] is None else float(str(r[4])), str(r[5]))
            for r in self._query(
                "SELECT channel, recipient, stage, ref, sent_at, closed FROM messages"
                " WHERE thread = ? ORDER BY channel, recipient",
                (thread,),
            )
        ]  # fmt: skip


__all__ = [
    "TRANSITIONS",
    "Action",
    "ChannelStatus",
    "DeadLetter",
    "Delivery",
    "DeliveryRow",
    "Outbox",
    "Plan",
    "Row",
    "State",
    "row_of",
    "transition",
]
