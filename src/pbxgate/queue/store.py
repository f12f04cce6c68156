"""Asterisk's queue_log in pbxgate's store: imported once, read back by time.

``pbxgate queue import`` copies queue_log lines into the ``queue_log`` table of the embedded
SQLite store (the file that holds imported CDRs), so that statistics over a month or a year
read only that month's lines through an index, whatever happened to the file since (logrotate
renames and compresses it).

The import is incremental and idempotent, as ``cdr import`` is: the store remembers how far
each file was read (its size, its lines and digests of its first and last 64 KiB), so a file
that has only grown is read from where the last import ended, and so is a file that starts
with one imported before (``queue_log.1`` after a rotation). Every row carries a key, a digest
of the line's text, so a line read twice (a copy, ``--full``) is stored once. Two lines alike in
every byte within one second are two lines (PAUSE, UNPAUSE, PAUSE in a second, from a button
pressed twice, writes two identical PAUSE lines): the second one's digest takes its count. The
key is the pair (time, digest): the index that keeps lines unique is also the one windows are
read through, and a file's lines, in time order, go in at its end. A line still being written
(no newline yet) waits for the next import. A line that is not a queue_log line goes to the
reject file with its line number; an event pbxgate does not know is stored and counted. A
damaged compressed file is a one-line error.
"""

from __future__ import annotations

import gzip
import sqlite3
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pbxgate.cdr.csvimport import Reject, Rejects, imported_prefix, no_gc, open_csv, remember_import
from pbxgate.cdr.store import ImportMark, key_of_text
from pbxgate.errors import InputError, SourceError
from pbxgate.private import private_file
from pbxgate.queue.log import FIELDS, QueueLogLine

TABLE = "queue_log"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (time INTEGER NOT NULL, callid TEXT NOT NULL,"
    " queuename TEXT NOT NULL, agent TEXT NOT NULL, event TEXT NOT NULL, data TEXT NOT NULL,"
    " rowkey INTEGER NOT NULL)",
    # One index: a line is one (second, digest of its text); by time first, so that a file's
    # lines, which come in time order, go in at the index's end, and a window is a range of it.
    f"CREATE UNIQUE INDEX IF NOT EXISTS {TABLE}_line ON {TABLE} (time, rowkey)",
    "CREATE TABLE IF NOT EXISTS queue_log_marks (path TEXT PRIMARY KEY, size INTEGER,"
    " lines INTEGER, head TEXT, tail TEXT)",
)
INSERT = f"INSERT OR IGNORE INTO {TABLE} VALUES (?, ?, ?, ?, ?, ?, ?)"
BLOCK = 1 << 20  # bytes read at a time
BATCH = 20000  # rows written at a time
MAX_CONSECUTIVE_REJECTS = 1000  # then the file is not a queue_log
SHOWN_REJECTS = 20


@dataclass
class QueueImport:
    """What one import of one file did."""

    lines: int = 0  # queue_log lines read (blank lines aside)
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)  # the first SHOWN_REJECTS
    unknown: Counter[str] = field(default_factory=Counter)  # events pbxgate does not know
    bytes_read: int = 0  # where the next import of this file starts
    last_line: int = 0  # the number of the last whole line read
    resumed_after: int = 0  # lines skipped, read by an earlier import
    resumed_from: str = ""  # the file that earlier import read

    @property
    def refused(self) -> bool:
        """No line of the file is a queue_log line: every line read was rejected, and none was
        read before (a resumed import's earlier lines were imported, so the file is a queue_log
        and rejects in what was appended are rejects like any others)."""
        return bool(self.lines) and self.rejected == self.lines and not self.resumed_after


Row = tuple[int, str, str, str, str, str, int]


def row_of(text: str) -> Row:
    """The store's row for one line (without its newline); :class:`InputError` if it is not
    a queue_log line."""
    parts = text.split("|", 5)
    if len(parts) < 5:
        raise InputError("not a queue_log line (time|callid|queue|agent|event|...)")
    try:
        when = int(parts[0])
    except ValueError:
        raise InputError(f"the time {parts[0][:20]!r} is not Unix seconds") from None
    data = parts[5] if len(parts) == 6 else ""
    return when, parts[1], parts[2], parts[3], parts[4], data, key_of_text(text)


class QueueStore:
    """The ``queue_log`` table of pbxgate's SQLite store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            private_file(path, companions=True)  # callers' numbers: 0600 in 0700
            self.con = sqlite3.connect(path, timeout=30)
            self.con.execute("PRAGMA journal_mode = WAL")
            self.con.execute("PRAGMA synchronous = NORMAL")
            for statement in SCHEMA:
                self.con.execute(statement)
            self.con.commit()
        except (OSError, sqlite3.Error) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise SourceError(f"cannot open the store {path}: {reason}") from exc

    def close(self) -> None:
        self.con.close()

    # where each file's import ended (pbxgate.cdr.csvimport.MarkBook)
    def import_mark(self, path: Path) -> ImportMark | None:
        row = self.con.execute(
            "SELECT size, lines, head, tail FROM queue_log_marks WHERE path = ?",
            (str(path.resolve()),),
        ).fetchone()
        return ImportMark(*row) if row else None

    def import_marks(self) -> list[tuple[str, ImportMark]]:
        rows = self.con.execute("SELECT path, size, lines, head, tail FROM queue_log_marks")
        return [(row[0], ImportMark(*row[1:])) for row in rows]

    def set_import_mark(self, path: Path, mark: ImportMark) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO queue_log_marks VALUES (?, ?, ?, ?, ?)",
            (str(path.resolve()), mark.size, mark.lines, mark.head, mark.tail),
        )
        self.con.commit()

    def count(self) -> int:
        return int(self.con.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])

    def import_file(
        self,
        path: Path,
        *,
        resume: bool = True,
        reject_file: Path | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> QueueImport:
        """Import ``path`` (a queue_log, plain or gzip-compressed); see the module's notes."""
        result = QueueImport()
        offset = 0
        if resume:
            found = imported_prefix(self, path)
            if found is not None:
                result.resumed_from, mark = found
                offset, result.resumed_after = mark.size, mark.lines
        result.last_line = result.resumed_after  # nothing new read: where the mark said
        rejects = Rejects(result, reject_file, MAX_CONSECUTIVE_REJECTS, keep=SHOWN_REJECTS,
                          stop=_not_a_queue_log)  # fmt: skip
        try:
            with open_csv(path) as fh, no_gc():
                if offset:
                    fh.seek(offset)
                consumed = self._load(fh, result, rejects, result.resumed_after, progress,
                                      resumed=offset > 0)  # fmt: skip
        except sqlite3.Error as exc:
            raise SourceError(f"cannot write to the store {self.path}: {exc}") from exc
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise InputError(f"{path}: a damaged compressed file ({exc})") from exc
        finally:
            rejects.close()
        result.bytes_read = offset + consumed
        # a queue_log, not some other file: a line of it stored now, or before (resumed); what
        # was appended and rejected is read past, as a rejected line between good ones is
        if resume and (result.inserted + result.duplicates or result.resumed_after):
            remember_import(self, path, result.bytes_read, result.last_line)
        return result

    def _load(
        self,
        fh: IO[bytes],
        result: QueueImport,
        rejects: Rejects,
        lineno: int,
        progress: Callable[[int], None] | None,
        resumed: bool,
    ) -> int:
        """Read whole lines from ``fh`` into the table; returns the bytes consumed."""
        consumed = 0
        stored = self._twins if resumed else None
        for rows, consumed in _parse(fh, result, rejects, lineno, stored):
            self._write(rows, result)
            if progress is not None:
                progress(consumed)
        return consumed

    def _twins(self, row: Row) -> int:
        """How many lines the same as ``row`` the store holds."""
        found = self.con.execute(
            f"SELECT COUNT(*) FROM {TABLE} WHERE time = ? AND callid = ? AND queuename = ?"
            " AND agent = ? AND event = ? AND data = ?",
            row[:6],
        ).fetchone()
        return int(found[0])

    def _write(self, rows: list[Row], result: QueueImport) -> None:
        if not rows:
            return
        before = self.con.total_changes
        self.con.executemany(INSERT, rows)
        self.con.commit()
        inserted = self.con.total_changes - before
        result.inserted += inserted
        result.duplicates += len(rows) - inserted

    def lines(self, start: int | None = None, end: int | None = None) -> Iterator[QueueLogLine]:
        """The stored lines with ``start <= time < end`` (Unix seconds), in time order (lines of
        one second in the order they were imported)."""
        lo = start if start is not None else -(1 << 62)
        hi = end if end is not None else 1 << 62
        cursor = self.con.execute(
            f"SELECT time, callid, queuename, agent, event, data FROM {TABLE}"
            " WHERE time >= ? AND time < ? ORDER BY time, rowid",
            (lo, hi),
        )
        for when, callid, queue, agent, event, data in cursor:
            yield QueueLogLine(
                when, callid, queue, agent, event, tuple(data.split("|")) if data else ()
            )


def _parse(
    fh: IO[bytes],
    result: QueueImport,
    rejects: Rejects,
    lineno: int,
    stored: Callable[[Row], int] | None = None,
) -> Iterator[tuple[list[Row], int]]:
    """Batches of rows from ``fh``'s whole lines, with the bytes consumed so far.

    A line the same as an earlier one of its second (PAUSE, UNPAUSE, PAUSE within a second
    writes two identical PAUSE lines) is another line: its key takes its count. ``stored``
    (when reading on from where an import ended) says how many of a line's twins that import
    stored, for the lines of the second it ended in."""
    consumed = 0
    rows: list[Row] = []
    tail = b""
    second: int | None = None
    first_second: int | None = None
    seen: dict[str, int] = {}
    while block := fh.read(BLOCK):
        block = tail + block
        cut = block.rfind(b"\n") + 1
        tail = block[cut:]
        for raw in block[:cut].decode("utf-8", "replace").split("\n")[:-1]:
            lineno += 1
            text = raw.rstrip("\r")
            if not text.strip():
                continue
            result.lines += 1
            try:
                row = row_of(text)
            except InputError as exc:
                rejects.add(lineno, str(exc), text)
                continue
            rejects.in_a_row = 0
            if row[0] != second:
                if second is None:
                    first_second = row[0]
                second, seen = row[0], {}
            twins = seen.get(text)
            if twins is None:
                twins = stored(row) if stored is not None and row[0] == first_second else 0
            seen[text] = twins + 1
            if twins:
                row = (*row[:6], key_of_text(f"{text}\x1e{twins}"))
            if row[4] not in FIELDS:
                result.unknown[row[4]] += 1
            rows.append(row)
        consumed += cut
        result.last_line = lineno
        if len(rows) >= BATCH:
            yield rows, consumed
            rows = []
    yield rows, consumed


def _not_a_queue_log(in_a_row: int, line: int, reason: str) -> InputError:
    return InputError(
        f"line {line}: {in_a_row} lines in a row are not queue_log lines: this is not "
        "Asterisk's queue_log"
    )


__all__ = ["QueueImport", "QueueStore", "row_of"]
