"""Writing legs: pbxgate's embedded store, and FreePBX-shaped tables for demos and benchmarks.

The only tables pbxgate writes are its own: the embedded SQLite store (the default source) and
tables that ``pbxgate cdr generate --into URL`` creates for a demo or a benchmark. A row's
``rowkey`` is a digest of what identifies the CDR, so importing the same Master.csv twice adds
nothing (``INSERT OR IGNORE`` / ``INSERT IGNORE`` / ``ON CONFLICT DO NOTHING``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Index, MetaData, Table, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import CreateIndex

from pbxgate.cdr.model import Leg
from pbxgate.cdr.schema import LEG_COLUMNS, store_table
from pbxgate.errors import SourceError
from pbxgate.private import private_file

STORE_COLUMNS: tuple[str, ...] = (*LEG_COLUMNS, "answer", "end", "rowkey")
# cdr_csv and cdr_custom write the same CDR with different columns (no sequence in one, no
# linkedid in both by default): the key uses only what every file carries, so a row that
# comes in both files is stored once. KEY_VERSION counts changes of the key (PRAGMA
# user_version of the store); an older store has its keys redone when it is opened.
KEY_VERSION = 2
KEY_FIELDS = (
    "uniqueid",
    "src",
    "dst",
    "channel",
    "dstchannel",
    "disposition",
    "duration",
    "billsec",
    "lastapp",
    "userfield",
)
# FreePBX's own keys on asteriskcdrdb.cdr (framework cdr.sql + cdr module install.php).
FREEPBX_INDEXES = (
    ("calldate",),
    ("dst",),
    ("accountcode",),
    ("uniqueid",),
    ("did",),
    ("linkedid",),
)


def key_of(parts: list[str]) -> int:
    """A signed 64-bit digest of the identifying fields (start time, then ``KEY_FIELDS``)."""
    return key_of_text("\x1f".join(parts))


# The row key's hash, empty: copied for each key (cheaper than making one with parameters).
KEY_HASH = hashlib.blake2b(digest_size=8)


def key_of_text(text: str) -> int:
    """:func:`key_of` of fields already joined with ``\\x1f``."""
    digest = KEY_HASH.copy()
    digest.update(text.encode())
    return int.from_bytes(digest.digest(), "big", signed=True)


def rowkey(leg: Leg) -> int:
    """What identifies one CDR row: its start and its Asterisk identity (uniqueid, sequence,
    the parties, the outcome). Two imports of the same record give the same key."""
    parts = [leg.start.strftime("%Y-%m-%d %H:%M:%S")]
    parts += [str(getattr(leg, name)) for name in KEY_FIELDS]
    return key_of(parts)


def _fmt(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def leg_values(leg: Leg, *, text_dates: bool) -> tuple[Any, ...]:
    """The store row for ``leg`` in :data:`STORE_COLUMNS` order."""
    conv = _fmt if text_dates else (lambda v: v)
    out: list[Any] = []
    for name in LEG_COLUMNS:
        out.append(conv(leg.start) if name == "calldate" else getattr(leg, name, ""))
    out += [conv(leg.answered_at), conv(leg.finish), rowkey(leg)]
    return tuple(out)


@dataclass(frozen=True)
class ImportMark:
    """How far a Master.csv was imported: its size then, its lines, digests of head and tail."""

    size: int
    lines: int
    head: str
    tail: str


@dataclass
class InsertResult:
    inserted: int = 0
    duplicates: int = 0

    def add(self, other: InsertResult) -> None:
        self.inserted += other.inserted
        self.duplicates += other.duplicates


class Store:
    """A writable CDR table (pbxgate's own layout) behind a SQLAlchemy engine."""

    def __init__(self, engine: Engine, table: str = "cdr") -> None:
        self.engine = engine
        self.metadata = MetaData()
        self.table: Table = store_table(self.metadata, table)

    @classmethod
    def open_sqlite(cls, path: Path) -> Store:
        try:
            private_file(path, companions=True)  # phone numbers and names: 0600 in 0700
        except OSError as exc:
            raise SourceError(f"cannot create the CDR store {path}: {exc.strerror}") from exc
        engine = create_engine(f"sqlite:///{path}")
        event.listen(engine, "connect", _fast_sqlite)
        store = cls(engine)
        store.ensure_schema()
        store.upgrade_keys()
        return store

    def _marks(self, con: sqlite3.Connection) -> None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS import_marks (path TEXT PRIMARY KEY, size INTEGER,"
            " lines INTEGER, head TEXT, tail TEXT)"
        )

    @contextmanager
    def _sqlite(self) -> Iterator[sqlite3.Connection]:
        """The store's own sqlite3 connection, from the pool and back to it."""
        raw = self.engine.raw_connection()
        try:
            con = raw.driver_connection
            assert isinstance(con, sqlite3.Connection)
            yield con
        finally:
            raw.close()

    def import_mark(self, path: Path) -> ImportMark | None:
        """What an earlier ``cdr import`` of ``path`` recorded (None: none did)."""
        if self.engine.dialect.name != "sqlite":
            return None
        with self._sqlite() as con:
            self._marks(con)
            row = con.execute(
                "SELECT size, lines, head, tail FROM import_marks WHERE path = ?",
                (str(path.resolve()),),
            ).fetchone()
            con.commit()
        return ImportMark(*row) if row else None

    def import_marks(self) -> list[tuple[str, ImportMark]]:
        """Every file an earlier ``cdr import`` recorded: its path and how far it was read."""
        if self.engine.dialect.name != "sqlite":
            return []
        with self._sqlite() as con:
            self._marks(con)
            rows = con.execute("SELECT path, size, lines, head, tail FROM import_marks").fetchall()
            con.commit()
        return [(row[0], ImportMark(*row[1:])) for row in rows]

    def set_import_mark(self, path: Path, mark: ImportMark) -> None:
        with self._sqlite() as con:
            self._marks(con)
            con.execute(
                "INSERT OR REPLACE INTO import_marks VALUES (?, ?, ?, ?, ?)",
                (str(path.resolve()), mark.size, mark.lines, mark.head, mark.tail),
            )
            con.commit()

    def upgrade_keys(self) -> int:
        """Redo the row keys of a store written with an older :data:`KEY_VERSION`; rows that
        now share a key (one CDR imported from both cdr_csv and cdr_custom) are kept once, the
        copy with the most detail (a sequence, a linkedid) winning. Returns the rows removed."""
        with self._sqlite() as con:
            try:
                if con.execute("PRAGMA user_version").fetchone()[0] >= KEY_VERSION:
                    return 0
                removed = _rekey(con, self.table.name)
                con.execute(f"PRAGMA user_version = {KEY_VERSION}")
                con.commit()
                return removed
            except sqlite3.Error as exc:
                con.rollback()
                raise SourceError(f"cannot update the CDR store's row keys: {exc}") from exc

    def ensure_schema(self) -> None:
        try:
            self.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise SourceError(f"cannot create the CDR table: {_first_line(exc)}") from exc

    def insert(self, legs: Iterable[Leg], batch: int = 5000) -> InsertResult:
        total = InsertResult()
        text_dates = self.engine.dialect.name == "sqlite"
        for chunk in _chunks(legs, batch):
            total.add(self.insert_rows([leg_values(leg, text_dates=text_dates) for leg in chunk]))
        return total

    def insert_rows(self, rows: list[tuple[Any, ...]]) -> InsertResult:
        """Insert ready rows in :data:`STORE_COLUMNS` order; rows already present are skipped."""
        dialect = self.engine.dialect.name
        cols = column_list(dialect)
        marks = ", ".join(["?" if dialect == "sqlite" else "%s"] * len(STORE_COLUMNS))
        verb = {"sqlite": "INSERT OR IGNORE", "mysql": "INSERT IGNORE"}.get(dialect, "INSERT")
        tail = " ON CONFLICT (rowkey) DO NOTHING" if dialect == "postgresql" else ""
        sql = f"{verb} INTO {self.table.name} ({cols}) VALUES ({marks}){tail}"
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            before = raw.driver_connection.total_changes if dialect == "sqlite" else 0  # type: ignore[union-attr]
            cur.executemany(sql, rows)
            if dialect == "sqlite":
                inserted = raw.driver_connection.total_changes - before  # type: ignore[union-attr]
            else:
                inserted = max(cur.rowcount, 0)
            raw.commit()
        except Exception as exc:
            raw.rollback()
            raise SourceError(f"cannot write CDR rows: {_first_line(exc)}") from exc
        finally:
            raw.close()
        return InsertResult(inserted, len(rows) - inserted)

    def loader(
        self, *, bulk: bool = False, note: Callable[[str], None] | None = None, expected: int = 0
    ) -> Loader:
        """A writer for ready-made SQLite statements (``cdr import``); see :class:`Loader`."""
        return Loader(self, bulk=bulk, note=note, expected=expected)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {self.table.name}").scalar_one())


class Loader:
    """Writes rows into the SQLite store with one connection and prepared statements.

    A small load commits batch by batch, so ``--follow`` shows each batch at once. A bulk load
    runs in one transaction: when the store holds fewer rows than are coming (``expected``),
    its secondary indexes (on an empty store the unique row key too) are dropped, the rows go
    into the bare table, and the indexes are built once at the end from sorted data, several
    times faster than keeping them up to date row by row; into a larger store the rows go with
    the indexes in place, which is then cheaper than rebuilding them. Either the whole file lands
    or, if anything fails or the process dies, none of it: the store is left as it was and
    readers see the old rows, with their indexes, all along (WAL). A load that added nothing
    (the same file again) is rolled back: the dropped indexes come back as they were."""

    def __init__(
        self,
        store: Store,
        *,
        bulk: bool,
        note: Callable[[str], None] | None,
        expected: int = 0,
    ) -> None:
        if store.engine.dialect.name != "sqlite":
            raise SourceError("only pbxgate's SQLite store can import Master.csv")
        self.store = store
        self.bulk = bulk
        self.expected = expected
        self.note = note or (lambda _text: None)
        self.added = 0
        self.late_duplicates = 0  # found when the unique key was built at the end
        self._dropped: list[Index] = []
        self._raw: Any = None
        self._con: sqlite3.Connection | None = None
        self._saved_level: Any = None
        self._saved_pragmas: dict[str, int] = {}

    def __enter__(self) -> Loader:
        self._raw = self.store.engine.raw_connection()
        con: sqlite3.Connection = self._raw.driver_connection
        self._con, self._saved_level = con, con.isolation_level
        con.isolation_level = None  # transactions are begun and ended here, explicitly
        if self.bulk:
            try:
                self._saved_pragmas = {
                    name: con.execute(f"PRAGMA {name}").fetchone()[0] for name in BULK_PRAGMAS
                }
                for name, value in BULK_PRAGMAS.items():
                    con.execute(f"PRAGMA {name} = {value}")
                con.execute("BEGIN IMMEDIATE")
                table = self.store.table.name
                held = con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
                for ix in self.store.table.indexes if held < self.expected else ():
                    if ix.unique and (held or not _exists(con, str(ix.name))):
                        continue  # rows to dedupe against, or an old store's built-in key
                    con.execute(f"DROP INDEX IF EXISTS {ix.name}")
                    self._dropped.append(ix)
            except sqlite3.Error as exc:
                _rollback(con)
                self._close()
                raise SourceError(f"cannot write CDR rows: {_first_line(exc)}") from exc
        return self

    def write(self, statement: str, rows: list[Any]) -> int:
        """Run ``statement`` for each of ``rows``; returns how many rows were added."""
        con = self._con
        assert con is not None
        try:
            before = con.total_changes
            if not self.bulk:
                con.execute("BEGIN IMMEDIATE")
            con.executemany(statement, rows)
            if not self.bulk:
                con.execute("COMMIT")
            added = con.total_changes - before
            self.added += added
            return added
        except sqlite3.Error as exc:
            if not self.bulk:
                _rollback(con)
            raise SourceError(f"cannot write CDR rows: {_first_line(exc)}") from exc

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        con = self._con
        assert con is not None
        try:
            if not self.bulk:
                return
            if exc is not None or not self.added:
                _rollback(con)
                return
            try:
                self._build_indexes(con)
                con.execute("COMMIT")
            except sqlite3.Error as failure:
                _rollback(con)
                raise SourceError(f"cannot write CDR rows: {_first_line(failure)}") from failure
        finally:
            self._close()

    def _build_indexes(self, con: sqlite3.Connection) -> None:
        table = self.store.table.name
        for ix in self._dropped:
            self.note(f"indexing {', '.join(c.name for c in ix.columns)}")
            create = str(CreateIndex(ix).compile(dialect=self.store.engine.dialect))
            try:
                con.execute(create)
            except sqlite3.IntegrityError:  # the file held the same row twice: keep the first
                dupes = con.execute(
                    f"DELETE FROM {table} WHERE id NOT IN "
                    f"(SELECT MIN(id) FROM {table} GROUP BY rowkey)"
                )
                self.late_duplicates += dupes.rowcount
                con.execute(create)

    def _close(self) -> None:
        if self._con is not None:
            for name, value in self._saved_pragmas.items():
                with suppress(sqlite3.Error):
                    self._con.execute(f"PRAGMA {name} = {int(value)}")
            self._con.isolation_level = self._saved_level
            self._con = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None


# A bulk load's connection settings, the connection's own restored afterwards. SQLite sorts
# for CREATE INDEX in runs of the page cache's size, and with helper threads sorts several
# runs at once: a cache of 8 MiB and helper threads build the indexes of a million rows in
# 2.2 s instead of 3.6 s here (two cores: the connection's thread and one helper); the rows
# spill to the WAL as they come, while the reading process still parses, rather than all at
# the commit.
BULK_PRAGMAS = {"cache_size": -8192, "threads": max(1, min(4, (os.cpu_count() or 1) - 1))}


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back what is still open: SQLite has already rolled back by itself after some
    errors (a full disk), and a failing rollback must not hide the error that led to it."""
    if con.in_transaction:
        with suppress(sqlite3.Error):
            con.execute("ROLLBACK")


def _exists(con: sqlite3.Connection, index: str) -> bool:
    found = con.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (index,))
    return found.fetchone() is not None


def column_list(dialect: str) -> str:
    """:data:`STORE_COLUMNS` for an INSERT, ``end`` quoted as the dialect wants."""
    return ", ".join(_quote(c, dialect) for c in STORE_COLUMNS)


def _quote(name: str, dialect: str) -> str:
    if name != "end":
        return name
    return "`end`" if dialect == "mysql" else '"end"'


def _rekey(con: sqlite3.Connection, table: str) -> int:
    wanted = ("id", "calldate", "sequence", "linkedid", *KEY_FIELDS)
    names = ", ".join(_quote(n, "sqlite") for n in wanted)
    best: dict[int, tuple[tuple[int, int, int], int]] = {}
    removed: list[int] = []
    con.execute("BEGIN IMMEDIATE")
    for row in con.execute(f"SELECT {names} FROM {table}"):
        ident, start, sequence, linkedid, *fields = row
        key = key_of([str(start)[:19], *(str(v) for v in fields)])
        rank = (int(sequence or 0), 1 if linkedid else 0, -ident)
        kept = best.get(key)
        if kept is None:
            best[key] = (rank, ident)
        elif rank > kept[0]:
            removed.append(kept[1])
            best[key] = (rank, ident)
        else:
            removed.append(ident)
    con.executemany(f"DELETE FROM {table} WHERE id = ?", ((i,) for i in removed))
    # Keys are updated through a temporary value: a new key may equal another row's old one.
    con.execute(f"UPDATE {table} SET rowkey = -id")
    con.executemany(
        f"UPDATE {table} SET rowkey = ? WHERE id = ?", ((k, v[1]) for k, v in best.items())
    )
    return len(removed)


# The page size of a new store (an existing one keeps its own). With 16 KiB pages rather than
# SQLite's 4 KiB, the indexes of a million imported rows are built and committed in 3.1 s
# instead of 4.4 s here, and a month of calls is read in fewer, larger pages.
STORE_PAGE_SIZE = 16384


def _fast_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA page_size = {STORE_PAGE_SIZE}")  # before the file's first page
    # WAL: readers (queries, the notifier's name look-up) never wait for an import.
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute("PRAGMA synchronous = NORMAL")
    cur.execute("PRAGMA cache_size = -65536")
    cur.close()


def _chunks(items: Iterable[Leg], size: int) -> Iterator[list[Leg]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def open_target(
    url: str, table: str = "cdr", *, freepbx: bool = False, password: str | None = None
) -> Store:
    """A writable table at ``url`` for ``generate --into``: our layout, or FreePBX's indexes.
    The password comes apart from the URL (never on a command line)."""
    try:
        parsed = make_url(url)
        label = parsed.render_as_string(hide_password=True)
        engine = create_engine(parsed.set(password=password) if password else parsed)
    except (SQLAlchemyError, ImportError) as exc:
        where = url.rsplit("@", maxsplit=1)[-1]  # never the user:password part
        raise SourceError(f"cannot use {where}: {_first_line(exc)}") from exc
    store = Store(engine, table)
    if freepbx:
        for ix in [ix for ix in store.table.indexes if not ix.unique]:
            store.table.indexes.discard(ix)
        for cols in FREEPBX_INDEXES:
            Index(f"{table}_{'_'.join(cols)}", *(store.table.c[c] for c in cols))
    try:
        exists = inspect(engine).has_table(table)
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot reach {label}: {_first_line(exc)}") from exc
    if not exists:
        store.ensure_schema()
    return store


__all__ = [
    "KEY_FIELDS",
    "KEY_HASH",
    "STORE_COLUMNS",
    "ImportMark",
    "InsertResult",
    "Loader",
    "Store",
    "column_list",
    "key_of",
    "key_of_text",
    "leg_values",
    "open_target",
    "rowkey",
]
