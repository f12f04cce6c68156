"""Where an outbox lives: a SQLite file (one node), or PostgreSQL / MariaDB (several nodes).

The outbox (pbxgate.notify.outbox) writes its SQL once, with ``?`` placeholders and the table
names ``events``, ``deliveries``, ``messages`` and ``meta``; a backend runs it in its database's
spelling. On a server the tables are named ``pbxgate_events`` and so on (the outbox may share a
database such as FreePBX's), placeholders become ``%s``, ``INSERT OR IGNORE`` becomes ``INSERT
IGNORE`` (MariaDB) or ``ON CONFLICT DO NOTHING`` (PostgreSQL), and claims lock the rows they
take with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL 9.5+, MariaDB 10.6+), so that two nodes never
take the same delivery and neither waits for the other. Transactions on a server run at READ
COMMITTED: a claim must see the deliveries other nodes committed a moment ago.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from pbxgate.errors import DeliveryError

TABLES = ("events", "deliveries", "messages", "meta")
REASON_MAX = 1000  # characters of a delivery's last error kept
SERVER_PREFIX = "pbxgate_"


class Result(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """One transaction's connection."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> Any: ...


# One lock per outbox file for its write transactions. In this process the events of calls
# (pbxgate.notify.committer) and anything else that writes take turns on a Python lock, which
# wakes the next writer at once; between processes (pbxgate serve's outbox writer and delivery
# worker, pbxgate-agi scripts, the console) on an flock of ``<outbox>.write.lock``, tried again
# every 0.2 ms at first and at most 1 ms apart, for up to WRITE_LOCK_WAIT seconds. SQLite's
# busy handler, which sleeps 1, 2, 5, 10 ms and more between tries, held calls 20 ms at the 99th
# percentile; a writer that does not take the flock (another program) still meets it.
WRITE_LOCK_WAIT = 10.0  # seconds, as SQLite's busy timeout on these connections
_write_locks: dict[str, _WriteLock] = {}
_write_locks_guard = threading.Lock()


class _WriteLock:
    """This process's turn to write one outbox file (a thread lock, then the file's flock)."""

    def __init__(self, path: str, mode: int) -> None:
        self.path = path
        self.users = 0  # the backends of this process on this file
        self._thread = threading.Lock()
        # kept open while a backend uses it: closing any descriptor of a file drops its flock
        self._fd = os.open(f"{path}.write.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, mode)

    def __enter__(self) -> None:
        deadline = time.monotonic() + WRITE_LOCK_WAIT
        if not self._thread.acquire(timeout=WRITE_LOCK_WAIT):
            raise self._held()
        try:
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise self._held() from None
                time.sleep(pause)
                pause = min(pause * 2, 0.001)
        except BaseException:
            self._thread.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()

    def _held(self) -> DeliveryError:
        return DeliveryError(
            f"outbox {self.path}: another writer has held it for {WRITE_LOCK_WAIT:g} s"
        )

    def close(self) -> None:
        os.close(self._fd)


def _write_lock(path: Path, mode: int) -> _WriteLock:
    key = os.path.realpath(path)
    with _write_locks_guard:
        lock = _write_locks.get(key)
        if lock is None:
            lock = _write_locks[key] = _WriteLock(key, mode)
        lock.users += 1
        return lock


def _release_write_lock(lock: _WriteLock) -> None:
    with _write_locks_guard:
        lock.users -= 1
        if lock.users == 0 and _write_locks.get(lock.path) is lock:
            del _write_locks[lock.path]
            lock.close()


class SqliteBackend:
    """One SQLite file; one connection guarded by a lock. The worker's connection may run at
    ``synchronous=NORMAL`` (no fsync for claims and outcomes: losing the last few on power
    loss only means a resend, which idempotency absorbs); durable transactions (events) always
    run at FULL."""

    shared = False
    skip_locked = ""
    for_update = ""
    # after a table's name: read it by its key only (SQLite's planner, without statistics,
    # prefers any index that an equality matches, and reads a purge's kept rows every batch)
    by_key = " NOT INDEXED"
    # a new row's id is the highest in the table + 1: after a purge of the newest rows, an id
    # seen before (the servers' sequences never go back)
    reuses_ids = True

    def __init__(
        self, conn: sqlite3.Connection, path: Path, synchronous: str, mode: int = 0o600
    ) -> None:
        self.conn = conn
        self.path = path
        self.display = str(path)
        self._synchronous = synchronous
        self._lock = threading.Lock()
        self._writing: _WriteLock | None = _write_lock(path, mode)

    @contextmanager
    def tx(self, *, durable: bool = False) -> Iterator[Db]:
        relax = durable and self._synchronous != "FULL"
        if self._writing is None:
            raise DeliveryError(f"outbox {self.display} is closed")
        with self._writing, self._lock:
            try:
                if relax:
                    self.conn.execute("PRAGMA synchronous=FULL")
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    try:
                        yield self.conn  # type: ignore[misc]
                    except BaseException:
                        self.conn.execute("ROLLBACK")
                        raise
                    self.conn.execute("COMMIT")
                finally:
                    if relax:
                        self.conn.execute(f"PRAGMA synchronous={self._synchronous}")
            except sqlite3.Error as exc:
                raise DeliveryError(f"outbox {self.display}: {exc}") from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self.conn.execute(sql, params))
            except sqlite3.Error as exc:
                raise DeliveryError(f"outbox {self.display}: {exc}") from exc

    @staticmethod
    def ignore(sql: str) -> str:
        return sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)

    def close(self) -> None:
        writing = self._writing
        if writing is None:
            with self._lock:
                self.conn.close()
            return
        with writing._thread:  # no transaction on this file is running in this process
            mine = self._writing is writing  # not closed meanwhile by another thread
            self._writing = None
            with self._lock:
                self.conn.close()
        if mine:
            _release_write_lock(writing)


@functools.lru_cache(maxsize=256)
def _server_sql(sql: str) -> str:
    named = re.sub(rf"\b({'|'.join(TABLES)})\b", rf"{SERVER_PREFIX}\1", sql)
    return named.replace("%", "%%").replace("?", "%s")


class _ServerDb:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result:
        result: Result = self._conn.exec_driver_sql(_server_sql(sql), tuple(params))
        return result

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> Any:
        if rows:
            return self._conn.exec_driver_sql(_server_sql(sql), [tuple(r) for r in rows])
        return None


class Conflict(DeliveryError):
    """The database gave up a transaction to let another one through (a deadlock between
    nodes, a lock wait that timed out): trying it again is right."""


# PostgreSQL SQLSTATEs and MariaDB/MySQL error numbers of a transaction worth trying again.
RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available
RETRY_MYSQL = {1205, 1213}  # lock wait timeout, deadlock


def _is_conflict(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] in RETRY_MYSQL


def _reason(exc: BaseException) -> str:
    """The database's own words, on one line, without the statement and its parameters."""
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    return text[:300] or type(orig).__name__


class ServerBackend:
    """PostgreSQL or MariaDB/MySQL through SQLAlchemy's pool (its drivers: psycopg, PyMySQL)."""

    shared = True
    skip_locked = " FOR UPDATE SKIP LOCKED"
    for_update = " FOR UPDATE"
    by_key = ""  # the servers' planners weigh a key's range by their statistics
    reuses_ids = False

    def __init__(self, engine: Any, display: str) -> None:
        self.engine = engine
        self.display = display
        self.database = str(engine.url.database or "")
        self.mysql = engine.dialect.name in ("mysql", "mariadb")

    @contextmanager
    def tx(self, *, durable: bool = False) -> Iterator[Db]:
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

        try:
            with self.engine.begin() as conn:
                yield _ServerDb(conn)
        except SQLAlchemyError as exc:
            kind = Conflict if _is_conflict(exc) else DeliveryError
            raise kind(f"outbox {self.display}: {_reason(exc)}") from exc

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.tx() as db:
            return [tuple(r) for r in db.execute(sql, params)]

    def ignore(self, sql: str) -> str:
        if self.mysql:
            return sql.replace("INSERT INTO", "INSERT IGNORE INTO", 1)
        return sql + " ON CONFLICT DO NOTHING"

    def hold_lock(self, name: str) -> Any | None:
        """A connection holding the database's session lock ``name`` (PostgreSQL advisory
        lock, MariaDB ``GET_LOCK``) until it is closed; None when another session holds it.
        The server drops it when this process dies."""
        from sqlalchemy import text  # noqa: PLC0415
        from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

        try:
            conn = self.engine.connect()
            if self.mysql:
                got = conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name[:64]}).scalar()
            else:
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(hashtext(:n))"), {"n": name}
                ).scalar()
            conn.commit()
        except SQLAlchemyError as exc:
            raise DeliveryError(f"outbox {self.display}: {_reason(exc)}") from exc
        if got:
            return conn
        conn.close()
        return None

    def close(self) -> None:
        self.engine.dispose()


def server_tables(metadata: Any) -> None:
    """The outbox's tables on a server (SQLAlchemy Core: each dialect's own types)."""
    from sqlalchemy import (  # noqa: PLC0415
        BigInteger,
        Column,
        Float,
        ForeignKey,
        Index,
        Integer,
        SmallInteger,
        String,
        Table,
        Text,
        UniqueConstraint,
    )

    def name(table: str) -> str:
        return SERVER_PREFIX + table

    double = Float(precision=53)  # Unix seconds with microseconds
    Table(
        name("events"),
        metadata,
        Column("event_id", String(100), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", double, nullable=False),
        Column("planned", SmallInteger, nullable=False, server_default="0"),
        Index(name("events_unplanned"), "planned", "created_at"),
    )
    Table(
        name("deliveries"),
        metadata,
        Column("id", BigInteger, primary_key=True, autoincrement=True),
        Column(
            "event_id",
            String(100),
            ForeignKey(f"{name('events')}.event_id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("channel", String(16), nullable=False),
        Column("recipient", String(255), nullable=False),
        Column("state", String(16), nullable=False),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("next_attempt_at", double, nullable=False),
        Column("lease_until", double),
        Column("last_error", String(REASON_MAX), nullable=False, server_default=""),
        Column("updated_at", double, nullable=False),
        Column("thread", String(100), nullable=False, server_default=""),
        Column("stage", Integer, nullable=False, server_default="0"),
        Column("owner", String(100), nullable=False, server_default=""),
        UniqueConstraint("event_id", "channel", "recipient"),
        Index(name("deliveries_due"), "state", "next_attempt_at"),
        Index(name("deliveries_thread"), "thread", "channel", "recipient", "state"),
    )
    Table(
        name("messages"),
        metadata,
        Column("thread", String(100), primary_key=True),
        Column("channel", String(16), primary_key=True),
        Column("recipient", String(255), primary_key=True),
        Column("stage", Integer, nullable=False),
        Column("ref", String(100), nullable=False, server_default=""),
        Column("sent_at", double),
        Column("closed", String(REASON_MAX), nullable=False, server_default=""),
        Column("updated_at", double, nullable=False),
    )
    Table(
        name("meta"),
        metadata,
        Column("name", String(64), primary_key=True),
        Column("value", Text, nullable=False),
    )


__all__ = ["Conflict", "Db", "Result", "ServerBackend", "SqliteBackend", "server_tables"]
