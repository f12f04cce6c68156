"""Import Asterisk's Master.csv (cdr_csv, and cdr_custom's default mapping) into the store.

cdr_csv writes no header; its columns depend on cdr.conf flags (reference cdr.md §4):

    1-9    accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata
    10-16  start, answer, end, duration, billsec, disposition, amaflags
    +1     uniqueid                        (loguniqueid=yes)
    +1     userfield                       (loguserfield=yes)
    +3     peeraccount, linkedid, sequence (newcdrcolumns=yes)

so a row has 16 to 21 fields. Strings are quoted with inner quotes doubled
(the clid ``"Oleg Ivanov" <84991111111>`` is written with each ``"`` doubled); the answer
time of an unanswered call is an empty, unquoted field. cdr_custom's sample mapping starts
with clid instead (19 fields, start at field 9). The variant is detected per row from the
field count and where the dates are.

Every row either lands or is rejected with its line number and reason: rejects are written to a
reject file (the raw line, so it can be fixed and re-imported) and counted in the result. Rows are
keyed (:func:`pbxgate.cdr.store.rowkey`), so importing the same file twice adds nothing.
"""

from __future__ import annotations

import csv
import gc
import gzip
import hashlib
import marshal
import multiprocessing
import os
import queue
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from multiprocessing.connection import Connection
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, Protocol, cast

from pbxgate.cdr.model import MAX_NUMBER, Leg
from pbxgate.cdr.store import KEY_FIELDS, KEY_HASH, STORE_COLUMNS, ImportMark, Store, column_list
from pbxgate.cdr.window import Zones
from pbxgate.errors import InputError
from pbxgate.private import private_file

BASE = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
)  # fmt: skip
NEW_COLUMNS = ("peeraccount", "linkedid", "sequence")
CUSTOM = (
    "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata", "start",
    "answer", "end", "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid",
    "userfield", "sequence",
)  # fmt: skip
# Asterisk's uniqueid is epoch.sequence, prefixed with "systemname-" when asterisk.conf sets one.
_UNIQUEID = re.compile(r"^(?:[\w.-]+-)?\d+\.\d+$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_NAME_NUM = re.compile(r'^"?(?P<name>.*?)"?\s*<(?P<num>[^>]*)>$')


def layout_for(fields: list[str]) -> tuple[str, ...]:
    """The column names for a row, by field count and the position of its start time."""
    n = len(fields)
    if n == 19 and _DATE.match(fields[8] or ""):  # cdr_csv has lastdata there, never a date
        return CUSTOM
    if n < 16 or n > 21 or not _DATE.match(fields[9] or ""):
        raise ValueError(f"{n} fields and no start time where cdr_csv puts it (field 10)")
    extra = n - 16
    tail: tuple[str, ...] = ()
    if extra >= 3 and fields[-1].isdigit() and n != 18:
        tail, extra = NEW_COLUMNS, extra - 3
    if extra == 2:
        return (*BASE, "uniqueid", "userfield", *tail)
    if extra == 1:  # loguniqueid or loguserfield: a uniqueid looks like 1458291693.157169
        return (*BASE, "uniqueid" if _UNIQUEID.match(fields[16]) else "userfield", *tail)
    if extra == 0:
        return (*BASE, *tail)
    raise ValueError(f"{n} fields do not match any cdr_csv column set")


def _time(value: str, column: str, zones: Zones) -> str:
    """A validated ``YYYY-MM-DD HH:MM:SS`` in the display zone ("" for an unset time)."""
    if len(value) == 19 and zones.same:  # the usual case, checked by C code only
        try:
            _fromiso(value)
        except ValueError:
            raise ValueError(f"{column} {value!r} is not a date and time") from None
        return value
    if not value:
        if column == "start":
            raise ValueError("start time is empty")
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a date and time") from None
    if zones.same and len(value) == 19:
        return value
    return zones.to_display(moment.replace(microsecond=0)).strftime("%Y-%m-%d %H:%M:%S")


def _int(value: str, column: str) -> int:
    shown = value if len(value) <= 24 else f"{value[:20]}... ({len(value)} characters)"
    try:
        number = int(value or 0)
    except ValueError:
        raise ValueError(f"{column} {shown!r} is not a whole number") from None
    if not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"{column} {shown} is out of range (0 to {MAX_NUMBER})")
    return number


class _Plan:
    """How rows of one column layout become store rows, worked out once per layout.

    The csv reader's list of fields goes to SQLite as it is: the INSERT statement names each
    field by number (``?10`` is the start time, ``NULLIF(?11, '')`` the answer time, the src
    is used twice, for src and cnum; absent columns are constants), and the row only gets the
    caller's name and the row key appended. Only times, numbers and the caller name are looked
    at one by one. (A million-row Master.csv goes through here.)"""

    def __init__(self, names: tuple[str, ...], table: str) -> None:
        pos = {name: i for i, name in enumerate(names)}
        self.names = names
        self.width = n = len(names)  # the caller name and the row key follow at n and n + 1
        self.slots = (
            pos["start"], pos["answer"], pos["end"], pos["duration"], pos["billsec"],
            pos.get("sequence"), pos["clid"], pos["src"],
        )  # fmt: skip
        exprs = []
        for col in STORE_COLUMNS:
            source = {"calldate": "start", "cnum": "src"}.get(col, col)
            if col == "cnam":
                exprs.append(f"?{n + 1}")
            elif col == "rowkey":
                exprs.append(f"?{n + 2}")
            elif source in pos:
                mark = f"?{pos[source] + 1}"
                exprs.append(f"NULLIF({mark}, '')" if col in ("answer", "end") else mark)
            else:
                exprs.append("0" if col == "sequence" else "''")
        cols = column_list("sqlite")
        self.statement = f"INSERT OR IGNORE INTO {table} ({cols}) VALUES ({', '.join(exprs)})"
        # The row key's text (pbxgate.cdr.store.key_of): the start, then KEY_FIELDS, numbers
        # in their canonical form; absent columns read as "" (sequence as 0).
        parts = [f"{{{pos['start']}}}"]
        for name in KEY_FIELDS:
            parts.append(f"{{{pos[name]}}}" if name in pos else "0" if name == "sequence" else "")
        self.key_text = "\x1f".join(parts)
        # The same text, faster, when the layout has every key field: the fields joined.
        self.key_fields: Callable[[list[str]], tuple[str, ...]] | None = None
        if all(name in pos for name in KEY_FIELDS):
            self.key_fields = itemgetter(pos["start"], *(pos[name] for name in KEY_FIELDS))


_TIME_LENGTHS = (0, 19)  # an unset time, or YYYY-MM-DD HH:MM:SS
_KEY_HASH = KEY_HASH  # copied per row: cheaper than a new hash object with parameters

_PLANS: dict[tuple[tuple[str, ...], str], _Plan] = {}
# Field counts whose column layout is the same on every row (16: plain; 18: the sample
# cdr.conf's loguniqueid + loguserfield; 21: everything): looked up without a regex.
_FIXED = {
    16: BASE,
    18: (*BASE, "uniqueid", "userfield"),
    21: (*BASE, "uniqueid", "userfield", *NEW_COLUMNS),
}


def _plan_for(names: tuple[str, ...], table: str) -> _Plan:
    plan = _PLANS.get((names, table))
    if plan is None:
        plan = _PLANS[names, table] = _Plan(names, table)
    return plan


def plan_for_row(fields: list[str], table: str = "cdr") -> _Plan:
    """The plan (INSERT statement, positions) for a row with these fields."""
    return _plan_for(_FIXED.get(len(fields)) or layout_for(fields), table)


def _number(fields: list[str], i: int, column: str) -> int:
    """A whole number field, rewritten in place in its canonical form ("" is 0)."""
    text = fields[i]
    if _canonical(text):
        return int(text)
    value = _int(text, column)
    fields[i] = str(value)
    return value


def _canonical(text: str) -> bool:
    """ASCII digits without a leading zero, at most nine of them (under MAX_NUMBER): the
    number's text as it is stored and keyed. Anything else takes the checked path."""
    return len(text) < 10 and text.isascii() and text.isdigit() and (text[0] != "0" or text == "0")


def _times(fields: list[str], i_start: int, i_answer: int, i_end: int, zones: Zones) -> None:
    """Check the three times, saying what is wrong; convert them from GMT."""
    for i, column in ((i_start, "start"), (i_answer, "answer"), (i_end, "end")):
        fields[i] = _time(fields[i], column, zones)


# The caller names of recent clids: a call's legs (a ring group's four phones, the transfer)
# and a repeated caller carry the same clid, looked up rather than matched again.
_NAMES: dict[str, str] = {}
_NAMES_KEPT = 4096


def _name_in(clid: str) -> str:
    """The caller name of a clid such as ``"Anna Smirnova" <102>`` ("" when there is none)."""
    match = _NAME_NUM.match(clid) if "<" in clid else None
    name = match.group("name") if match else ""
    if len(_NAMES) >= _NAMES_KEPT:
        _NAMES.clear()
    _NAMES[clid] = name
    return name


def complete_row(fields: list[Any], plan: _Plan, zones: Zones) -> list[Any]:
    """Check one Master.csv row of ``plan``'s layout (its fields, strings) and append its
    caller name and row key (an int), ready for ``plan.statement``; raises ValueError with the
    reason when it is broken."""
    i_start, i_answer, i_end, i_dur, i_bill, i_seq, i_clid, i_src = plan.slots
    # The usual row, checked by C code only: three times of 19 characters (or none for answer
    # and end), numbers as they are stored and keyed (str(int(text)) is the text: no sign, no
    # leading zero, no space, only ASCII digits) and in range, billsec within duration. Any
    # other row takes the paths that say what is wrong or make it so.
    start, answer, end = fields[i_start], fields[i_answer], fields[i_end]
    try:
        if not zones.same or len(start) != 19 or len(answer) not in _TIME_LENGTHS:
            raise ValueError
        if len(end) not in _TIME_LENGTHS:
            raise ValueError
        _fromiso(start)
        if answer:
            _fromiso(answer)
        if end:
            _fromiso(end)
    except ValueError:
        _times(fields, i_start, i_answer, i_end, zones)
    duration, billsec = fields[i_dur], fields[i_bill]
    try:
        seconds, talk = int(duration), int(billsec)
        plain = str(seconds) == duration and str(talk) == billsec
    except ValueError:
        plain = False
    if not (plain and 0 <= talk <= seconds <= MAX_NUMBER):
        seconds, talk = _number(fields, i_dur, "duration"), _number(fields, i_bill, "billsec")
        if talk > seconds:
            raise ValueError(f"billsec {talk} exceeds duration {seconds}")
    if i_seq is not None and not _canonical(fields[i_seq]):
        _number(fields, i_seq, "sequence")
    clid = fields[i_clid]
    name = _NAMES.get(clid)
    if name is None:
        name = _name_in(clid)
    fields.append(name if name != fields[i_src] else "")
    digest = _KEY_HASH.copy()
    if plan.key_fields is not None:
        digest.update("\x1f".join(plan.key_fields(fields)).encode())
    else:
        digest.update(plan.key_text.format(*fields).encode())
    fields.append(int.from_bytes(digest.digest(), "big", signed=True))
    return fields


def parse_row(fields: list[str], zones: Zones) -> Leg:
    """One Master.csv row as a leg (the import's own checks: :func:`complete_row`); raises
    ValueError with the reason when it is broken."""
    plan = plan_for_row(fields)
    values = complete_row(list(fields), plan, zones)
    row = dict(zip(plan.names, values, strict=False))  # the caller name and key come after

    def when(text: str) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    start = when(row["start"])
    assert start is not None
    leg = Leg(start=start, answer=when(row["answer"]), end=when(row["end"]))
    for name, value in row.items():
        if name in ("duration", "billsec", "sequence"):
            setattr(leg, name, int(value))
        elif name in Leg.__slots__ and name not in ("start", "answer", "end"):
            setattr(leg, name, value)
    leg.cnum, leg.cnam = row["src"], values[plan.width]
    return leg


@dataclass
class Reject:
    line: int
    reason: str
    raw: str


@dataclass
class ImportResult:
    rows: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    # The first KEEP_REJECTS rejects (all of them are in the reject file): memory stays
    # bounded whatever the file holds.
    rejects: list[Reject] = field(default_factory=list)
    bytes_read: int = 0
    last_line: int = 0  # the number of the last line read
    resumed_after: int = 0  # a resumed import: the lines an earlier import had read
    resumed_from: str = ""  # and the file it had read them from (this one, a copy, a rotation)

    @property
    def refused(self) -> bool:
        """No row of the file is a CDR: every row read was rejected, and none was read before
        (a resumed import's earlier lines were imported, so the file is a Master.csv and
        rejects in what was appended are rejects like any others)."""
        return bool(self.rows) and self.rejected == self.rows and not self.resumed_after


# How much of the input the import holds at once, whatever the file: a record is at most
# MAX_RECORD bytes (cdr_csv drops records over 1 KiB; cdr_custom's are rarely over a few) -
# a longer line is rejected and skipped to the next newline; a stretch of MAX_RUN bytes
# without any newline stops the import (a symlink to /dev/zero, a compressed file of zeros).
MAX_RECORD = 64 * 1024
MAX_RUN = 64 * 1024 * 1024
KEEP_REJECTS = 100
KEEP_RAW = 4096  # of a kept reject's text (the reject file has the record as it was)
# This many rejected records in a row, without one good one, stop the import: the file is
# not what it should be ([cdr] import_max_consecutive_rejects; 0 = never stop).
MAX_CONSECUTIVE_REJECTS = 1000


# Above this much to read (about 30,000 rows of Master.csv), the import is one transaction
# read by a second process (pbxgate.cdr.store.Loader). Below it that gains little (30,000
# rows: 0.57 s against 0.68 s; 5,000 rows: 0.13 s against 0.11 s), and each batch is committed
# as it comes.
BULK_BYTES = 8 * 1024 * 1024
BLOCK = 1 << 20  # bytes read at a time
ROW_BYTES = 300  # a Master.csv row is 200-300 bytes: for guessing how many rows a file holds

_fromiso = datetime.fromisoformat


class _Blocks:
    """The file's lines, read a block at a time: the csv reader takes them through one
    ``chain.from_iterable`` (no Python call per line). Bytes are counted exactly, lines that
    are not UTF-8 are remembered by number, and the lines of the last two blocks are kept, so
    that a rejected record can be written to the reject file as it was.

    With ``complete_only`` a trailing line without its newline is left unread: Asterisk may
    be writing it right now (``--follow``)."""

    def __init__(self, fh: IO[bytes], complete_only: bool, first_line: int = 1) -> None:
        self.fh = fh
        self.complete_only = complete_only
        self.consumed = 0
        self.kept: list[tuple[int, list[str]]] = []  # (number of the first line, lines)
        self.next_line = first_line
        self.bad: set[int] = set()
        self.overlong: dict[int, int] = {}  # line number -> its length, for lines skipped
        self.heads: dict[int, str] = {}  # line number -> the first KEEP_RAW bytes of it

    def __iter__(self) -> Iterator[list[str]]:
        rest = b""
        skipped = 0  # bytes of an overlong line thrown away so far
        while True:
            try:
                chunk = self.fh.read(BLOCK)
            except (OSError, EOFError, zlib.error) as exc:  # a damaged compressed file
                name = getattr(self.fh, "name", "the file")
                raise InputError(
                    f"cannot read {name} after line {self.next_line - 1}: {exc}"
                ) from exc
            if skipped:
                end = chunk.find(b"\n")
                if end < 0 and chunk:
                    skipped += len(chunk)
                    self.consumed += len(chunk)
                    self._check_run(skipped)
                    continue
                skipped += end if chunk else 0  # the line's length, without its newline
                self.consumed += end + 1 if chunk else 0
                line = self.next_line
                self.overlong[line] = skipped
                self.heads[line] = rest.decode("utf-8", "surrogateescape")
                self.kept = [*self.kept[-1:], (line, [_OVERLONG])]
                self.next_line += 1
                skipped, rest = 0, b""
                yield [_OVERLONG]  # stands for the line: _batches rejects it by its number
                chunk = chunk[end + 1 :] if chunk else b""
                if not chunk:
                    continue
            data = rest + chunk if rest else chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if not cut:  # one long line so far
                    rest = data
                    if len(rest) > MAX_RECORD:  # keep its head for the reject file, skip on
                        skipped, rest = len(rest), rest[:KEEP_RAW]
                        self.consumed += skipped
                    continue
            elif not data or self.complete_only:
                return
            else:
                cut = len(data)  # the last line has no newline
            block, rest = data[:cut], data[cut:]
            lines = self._lines(block)
            self.kept = [*self.kept[-1:], (self.next_line, lines)]
            self.next_line += len(lines)
            self.consumed += len(block)
            yield lines

    def _lines(self, block: bytes) -> list[str]:
        try:
            parts = block.decode().split("\n")
        except UnicodeDecodeError:
            parts = []
            for i, raw in enumerate(block.split(b"\n")):
                try:
                    parts.append(raw.decode())
                except UnicodeDecodeError:  # kept byte for byte, for the reject file
                    parts.append(raw.decode("utf-8", "surrogateescape"))
                    self.bad.add(self.next_line + i)
        for i, part in enumerate(parts):
            if len(part) > MAX_RECORD:  # a line over the cap within one block
                self.overlong[self.next_line + i] = len(part)
                self.heads[self.next_line + i] = part[:KEEP_RAW]
                parts[i] = ""
        end = self.next_line + len(parts) - 1  # the number of the last, unterminated part
        last = parts.pop()
        lines = [part + "\n" for part in parts]
        if last or end in self.overlong:  # an overlong last line still stands for itself
            lines.append(last)
        return lines

    def _check_run(self, run: int) -> None:
        if run > MAX_RUN:
            raise InputError(
                f"line {self.next_line} runs over {MAX_RUN // (1024 * 1024)} MiB without a line "
                "break: is this a Master.csv?"
            )

    def raw(self, first: int, last: int) -> str:
        """Lines ``first`` to ``last`` as read (as far as they are still kept)."""
        out = []
        for start, lines in self.kept:
            out += lines[max(first - start, 0) : max(last - start + 1, 0)]
        return "".join(out).rstrip("\r\n")

    def any_bad(self, first: int, last: int) -> bool:
        return any(n in self.bad for n in range(first, last + 1))


_OVERLONG = "\n"  # what the csv reader gets for a skipped line (its number says the rest)

GZIP_MAGIC = b"\x1f\x8b"  # logrotate's compress: Master.csv.1.gz


def open_csv(path: Path, *, follow: bool = False) -> IO[bytes]:
    """``path`` opened for reading as bytes; a gzip-compressed file is read uncompressed."""
    try:
        fh: IO[bytes] = path.open("rb")
        if fh.read(2) != GZIP_MAGIC:
            fh.seek(0)
            return fh
        fh.close()
        if follow:
            raise InputError(f"{path} is compressed: it can be imported, not followed")
        return cast(IO[bytes], gzip.open(path, "rb"))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def data_size(path: Path) -> int:
    """How many bytes of CSV ``path`` holds: its size, or for a gzip file the size that its
    trailer records (modulo 4 GiB, as gzip keeps it)."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if fh.read(2) != GZIP_MAGIC or size < 20:
                return size
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc


def import_csv(
    path: Path,
    store: Store,
    zones: Zones,
    *,
    reject_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
    note: Callable[[str], None] | None = None,
    offset: int = 0,
    complete_only: bool = False,
    batch: int = 20000,
    bulk: bool | None = None,
    max_consecutive_rejects: int = MAX_CONSECUTIVE_REJECTS,
    resume: bool = False,
) -> ImportResult:
    """Import ``path`` (from byte ``offset``) into ``store``; rejects go to ``reject_file``
    (created only when there is one). ``result.bytes_read`` says where to resume.

    ``resume``: when the store remembers importing this very file (its path, size, and the
    digests of its first and last 64 KiB up to that size) and the file has only grown since,
    only what was appended is read (Master.csv is append-only; the row key would drop the old
    rows anyway, this skips reading them). The same holds for a file that starts with the
    bytes of another imported one (a copy; Master.csv.1 after logrotate renamed Master.csv).
    Anything else reads the whole file.

    ``bulk`` (default: when more than :data:`BULK_BYTES` are to be read) loads the file in one
    transaction that builds the indexes at the end (``note`` hears about that phase), and reads
    and checks the rows in a second process, so that the Python work of one and SQLite's work
    in this one run on two cores. A small load reads in a thread instead (no process to start).
    """
    first_line, origin = 1, ""
    if resume and offset == 0:
        found = imported_prefix(store, path)
        if found is not None:
            origin, mark = found
            offset, first_line = mark.size, mark.lines + 1
    fh = open_csv(path, follow=complete_only or offset > 0)
    with fh, no_gc():
        to_read = data_size(path) - offset
        if bulk is None:
            bulk = to_read > BULK_BYTES
        # resumed, the file is Asterisk's live one: a last line without its newline is one it
        # is still writing, left for the next run (as --follow leaves it), not a broken row
        waiting = complete_only or first_line > 1
        job = _Job(fh, zones, offset, waiting, batch, reject_file, store.table.name,
                   max_consecutive_rejects, first_line)  # fmt: skip
        try:
            feed: _ThreadFeed | _ProcessFeed = (
                _ProcessFeed(job) if bulk and _FORK else _ThreadFeed(job)
            )
        except OSError:  # no second process to be had: the same load, read in a thread
            feed = _ThreadFeed(job)
        inserted = written = 0
        try:
            expected = to_read // ROW_BYTES + 1
            with store.loader(bulk=bulk, note=note, expected=expected) as loader:
                for segments, consumed in feed:
                    for plan, rows, count in segments:
                        inserted += loader.write(plan.statement, rows)
                        written += count
                    if progress is not None:
                        progress(consumed)
        finally:
            feed.close()
    result = feed.result()  # what the reading side counted: rows, rejects, bytes
    result.inserted = inserted - loader.late_duplicates
    result.duplicates = written - result.inserted
    result.resumed_after = first_line - 1
    result.resumed_from = origin
    # Remembered when the file shows a CDR: a row of it imported now, or before (resumed).
    # What was appended and rejected is read past, as a rejected row between good ones is.
    if resume and (result.rows > result.rejected or result.resumed_after):
        remember_import(store, path, offset + result.bytes_read, result.last_line)
    return result


MARK_BYTES = 64 * 1024  # how much of a file's head and tail its import mark digests


class MarkBook(Protocol):
    """Where imports record how far each file was read (the store's ``import_marks``)."""

    def import_mark(self, path: Path) -> ImportMark | None: ...

    def import_marks(self) -> list[tuple[str, ImportMark]]: ...

    def set_import_mark(self, path: Path, mark: ImportMark) -> None: ...


def _fingerprint(fh: IO[bytes], size: int) -> tuple[str, str]:
    """SHA-256 of the file's first and last MARK_BYTES up to ``size``."""
    out = []
    for start in (0, max(0, size - MARK_BYTES)):
        fh.seek(start)
        out.append(hashlib.sha256(fh.read(min(MARK_BYTES, size))).hexdigest())
    return out[0], out[1]


def imported_prefix(store: MarkBook, path: Path) -> tuple[str, ImportMark] | None:
    """The longest start of ``path`` that an earlier import read: from this path, or from
    another file with the same bytes (a copy, or the Master.csv that logrotate renamed to
    Master.csv.1), and the path it was read from."""
    own = store.import_mark(path)
    if own is not None and _unchanged_prefix(path, own):
        return str(path.resolve()), own
    try:
        size = path.stat().st_size
    except OSError:
        return None
    for origin, mark in sorted(store.import_marks(), key=lambda m: -m[1].size):
        if mark.size <= size and _unchanged_prefix(path, mark):
            return origin, mark
    return None


def _unchanged_prefix(path: Path, mark: ImportMark) -> bool:
    """Whether ``path`` still begins with what was imported (and has not shrunk)."""
    try:
        if path.stat().st_size < mark.size:
            return False
        with path.open("rb") as fh:
            if fh.read(2) == GZIP_MAGIC:
                return False  # a compressed file is read whole
            return _fingerprint(fh, mark.size) == (mark.head, mark.tail)
    except OSError:
        return False


def remember_import(store: MarkBook, path: Path, size: int, lines: int) -> None:
    """Record how far ``path`` was imported, when it ends with a whole line."""
    try:
        with path.open("rb") as fh:
            if fh.read(2) == GZIP_MAGIC or size == 0:
                return
            fh.seek(size - 1)
            if fh.read(1) != b"\n":
                return  # a record being written: read the file whole next time
            head, tail = _fingerprint(fh, size)
    except OSError:
        return
    store.set_import_mark(path, ImportMark(size, lines, head, tail))


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector off while rows are read: it would walk every batch's
    lists again and again (a third of the import's time) and there are no cycles to find."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


Segment = tuple[_Plan, Any, int]  # a layout's statement, its rows, how many
Batch = tuple[list[Segment], int]  # and the bytes consumed so far


@dataclass
class _Job:
    """What the reading side needs: the open file and how to read it."""

    fh: IO[bytes]
    zones: Zones
    offset: int
    complete_only: bool
    batch: int
    reject_file: Path | None
    table: str
    max_consecutive_rejects: int = MAX_CONSECUTIVE_REJECTS
    first_line: int = 1  # the number of the line at offset (a resumed import)
    result: ImportResult = field(default_factory=ImportResult)


# Records are read this many at a time (and up to the start of a new block, so that the lines
# of all of them are still kept for the reject file), then checked and completed in one loop.
CHUNK = 512


def _batches(
    job: _Job, blocks: _Blocks | None = None
) -> Iterator[tuple[list[tuple[_Plan, list[list[str]]]], int]]:
    """Read, check and complete the rows of the file, ``job.batch`` at a time."""
    sink = Rejects(job.result, job.reject_file, job.max_consecutive_rejects)
    try:
        job.fh.seek(job.offset)
        yield from _Reading(job, blocks or _Blocks(job.fh, job.complete_only, job.first_line), sink)
    finally:
        sink.close()


class _Reading:
    """One pass over the file: records read a chunk at a time, completed, grouped into runs
    of one column layout (one INSERT statement each), rejects to the sink."""

    def __init__(self, job: _Job, blocks: _Blocks, sink: Rejects) -> None:
        self.job, self.blocks, self.sink, self.result = job, blocks, sink, job.result
        self.reader = csv.reader(chain.from_iterable(blocks), strict=True)
        self.fixed = {n: _plan_for(names, job.table) for n, names in _FIXED.items()}
        self.base = job.first_line - 1  # the reader counts lines from the offset
        self.segments: list[tuple[_Plan, list[list[str]]]] = []
        self.plan: _Plan | None = None
        self.rows: list[list[str]] = []
        self.count = 0

    def __iter__(self) -> Iterator[tuple[list[tuple[_Plan, list[list[str]]]], int]]:
        blocks, more = self.blocks, True
        while more:
            last = self.reader.line_num + self.base  # the last line of the records before
            chunk, ends, broken, more = self._chunk(min(CHUNK, self.job.batch - self.count))
            good = self._usual(chunk, ends, last)
            end = ends[good - 1] if good else last
            for i in range(good, len(chunk)):
                first, end = end + 1, ends[i]
                self._one(chunk[i], first, end)
            if broken is not None:
                self._broken(broken, end + 1, self.reader.line_num + self.base)
            if self.count >= self.job.batch:
                yield self.segments, blocks.consumed
                self.segments, self.plan, self.count = [], None, 0
        self.result.bytes_read = blocks.consumed
        self.result.last_line = blocks.next_line - 1
        yield self.segments, blocks.consumed

    def _chunk(self, size: int) -> tuple[list[list[str]], list[int], csv.Error | None, bool]:
        """Up to ``size`` records, and up to the first one read from a new block (so that the
        lines of all of them are still kept for the reject file); the last line of each; the
        error of a malformed record that ended the chunk; whether there may be more."""
        reader, blocks, base = self.reader, self.blocks, self.base
        chunk: list[list[str]] = []
        ends: list[int] = []
        block = blocks.next_line
        try:
            for fields in reader:
                chunk.append(fields)
                ends.append(reader.line_num + base)
                if len(chunk) == size or blocks.next_line != block:
                    return chunk, ends, None, True
        except csv.Error as exc:
            return chunk, ends, exc, True
        return chunk, ends, None, False

    def _usual(self, chunk: list[list[str]], ends: list[int], last: int) -> int:
        """Complete the chunk's records in a tight loop while they are as Asterisk writes
        them: all of one fixed column layout, on lines read as they were. Returns how many
        it completed: the next one, if any, is checked again by :meth:`_one` (what a failed
        check changed in it, a time converted or a number made canonical, is checked alike)."""
        plan = self.fixed.get(len(chunk[0])) if chunk else None
        if (
            plan is None
            or len(set(map(len, chunk))) != 1
            or _flagged(self.blocks, last + 1, ends[-1])
        ):
            return 0
        good, zones = 0, self.job.zones
        try:
            for fields in chunk:
                complete_row(fields, plan, zones)
                good += 1
        except ValueError:
            pass
        if good:
            self.result.rows += good
            self.sink.in_a_row = 0
            self._run(plan).extend(chunk if good == len(chunk) else chunk[:good])
            self.count += good
        return good

    def _broken(self, error: csv.Error, first: int, last: int) -> None:
        """A malformed record on lines ``first`` to ``last``. Asterisk writes a record a line:
        one that runs over several is a line cut short inside a quoted field (a crash, a full
        disk), which took the next lines with it. The first line is the reject; the others are
        read again, each on its own."""
        self.result.rows += 1
        self.sink.add(first, f"malformed CSV: {error}", self.blocks.raw(first, first))
        for line in range(first + 1, last + 1):
            text = self.blocks.raw(line, line)
            try:
                records = list(csv.reader([text], strict=True))
            except csv.Error as exc:
                self.result.rows += 1
                self.sink.add(line, f"malformed CSV: {exc}", text)
                continue
            self._one(records[0] if records else [], line, line)

    def _one(self, fields: list[str], first: int, last: int) -> None:
        """One record on lines ``first`` to ``last``, checked with everything that can be
        wrong with it."""
        blocks = self.blocks
        if (not fields or fields == [""]) and first not in blocks.overlong:
            return  # a blank line
        self.result.rows += 1
        try:
            _check_lines(blocks, first, last)
            plan = self.fixed.get(len(fields)) or _plan_for(layout_for(fields), self.job.table)
            complete_row(fields, plan, self.job.zones)
        except ValueError as exc:
            raw = blocks.heads.pop(first, None)
            self.sink.add(first, str(exc), raw if raw is not None else blocks.raw(first, last))
            return
        self.sink.in_a_row = 0
        self._run(plan).append(fields)
        self.count += 1

    def _run(self, plan: _Plan) -> list[list[str]]:
        """The list that rows of ``plan`` go to: the last run's, or a new run's."""
        if plan is not self.plan:
            self.plan, self.rows = plan, []
            self.segments.append((plan, self.rows))
        return self.rows


def _flagged(blocks: _Blocks, first: int, last: int) -> bool:
    """Whether any of lines ``first`` to ``last`` was skipped as overlong or is not UTF-8."""
    if blocks.overlong and any(first <= n <= last for n in blocks.overlong):
        return True
    return bool(blocks.bad) and blocks.any_bad(first, last)


def _check_lines(blocks: _Blocks, first: int, last: int) -> None:
    """What the record's lines say before its fields do: skipped as overlong (any of its lines,
    a quoted record spans several), not UTF-8."""
    if blocks.overlong:
        sizes = [blocks.overlong.pop(n) for n in range(first, last + 1) if n in blocks.overlong]
        if sizes:
            raise ValueError(
                f"a record of {max(sizes)} bytes, over {MAX_RECORD}: skipped to the next line"
            )
    if blocks.bad and blocks.any_bad(first, last):
        raise ValueError("not valid UTF-8 (convert the file with iconv -f cp1251)")


class _ThreadFeed:
    """Batches read by a thread (SQLite lets go of the GIL while it inserts, so the two
    overlap somewhat), two at most waiting."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        self.queue: queue.Queue[Batch | BaseException | None] = queue.Queue(maxsize=2)
        self.stop = threading.Event()  # the writer failed or finished: the reader stops early
        self.thread = threading.Thread(target=self._run, name="csv-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for segments, consumed in _batches(self.job):
                if self.stop.is_set():
                    return
                self.queue.put(([(p, rows, len(rows)) for p, rows in segments], consumed))
        except BaseException as exc:  # handed to the writing thread, which raises it
            self.queue.put(exc)
        finally:
            self.queue.put(None)

    def __iter__(self) -> Iterator[Batch]:
        while (item := self.queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self.stop.set()
        while self.thread.is_alive():  # take what it still puts, so that it sees `stop`
            with suppress(queue.Empty):
                self.queue.get(timeout=0.05)
        self.thread.join()

    def result(self) -> ImportResult:
        return self.job.result


# Between the processes a batch's rows travel marshalled (the same interpreter on both ends):
# for lists of strings it is about twice as fast as pickle, or as fields joined into one
# string and split again, on either side.
# The reading process is forked (it gets the open file and the settings as they are); where
# there is no fork, a bulk load reads in a thread.
_FORK = "fork" in multiprocessing.get_all_start_methods()


class _ProcessFeed:
    """Batches read by a child process and sent through a pipe. The child has the file
    (forked with it open), writes the reject file, and sends its counts at the end."""

    def __init__(self, job: _Job) -> None:
        self.job = job
        ctx = multiprocessing.get_context("fork")
        self.recv, send = ctx.Pipe(duplex=False)
        self.child = ctx.Process(target=_child, args=(job, send), name="csv-reader", daemon=True)
        try:
            self.child.start()
        except OSError:  # out of processes or memory: the caller reads in a thread instead
            self.recv.close()
            raise
        finally:
            send.close()
        self.done: ImportResult | None = None

    def __iter__(self) -> Iterator[Batch]:
        while True:
            try:
                kind, body = self.recv.recv()
            except (EOFError, OSError):
                raise InputError("the process reading the file stopped unexpectedly") from None
            except Exception as exc:  # a message that does not unpickle here
                raise InputError(f"the process reading the file sent {exc!r}") from exc
            if kind == "batch":
                segments = []
                for names, packed, count in body[0]:
                    rows = marshal.loads(packed)  # noqa: S302 - from the reading process
                    segments.append((_plan_for(names, self.job.table), rows, count))
                yield segments, body[1]
            elif kind == "done":
                self.done = body
                return
            else:
                raise body

    def close(self) -> None:
        if self.child.is_alive() and self.done is None:
            self.child.terminate()
        self.child.join()
        self.recv.close()

    def result(self) -> ImportResult:
        assert self.done is not None
        return self.done


def _child(job: _Job, out: Connection) -> None:
    gc.disable()  # as in import_csv; the process ends with the file
    try:
        blocks = _Blocks(job.fh, job.complete_only, job.first_line)
        for segments, consumed in _batches(job, blocks):
            packed = [(plan.names, marshal.dumps(rows), len(rows)) for plan, rows in segments]
            out.send(("batch", (packed, consumed)))
        out.send(("done", job.result))
    except BaseException as exc:
        try:
            out.send(("error", exc))
        except Exception:  # an exception that does not pickle
            out.send(("error", InputError(f"cannot read the file: {exc}")))
    finally:
        out.close()


class HoldsRejects(Protocol):
    """An import's result: how many records were rejected, and the first few."""

    rejected: int
    rejects: list[Reject]


def _not_a_master_csv(in_a_row: int, line: int, reason: str) -> InputError:
    return InputError(
        f"{in_a_row} records in a row rejected, up to line {line} ({reason}): "
        "is this a Master.csv?",
        hint="[cdr] import_max_consecutive_rejects raises the limit (0: no limit)",
    )


class Rejects:
    """Rejected records: counted in the result (the first ``keep`` kept), appended to the
    reject file (created 0600) as read; ``limit`` of them in a row stop the import with the
    error ``stop`` makes (the file is not what it should be). The reader sets ``in_a_row``
    back to 0 at each good record."""

    def __init__(
        self,
        result: HoldsRejects,
        path: Path | None,
        limit: int,
        *,
        keep: int = KEEP_REJECTS,
        stop: Callable[[int, int, str], InputError] = _not_a_master_csv,
    ) -> None:
        self.result = result
        self.path = path
        self.out: IO[str] | None = None
        self.limit = limit
        self.keep = keep
        self.stop = stop
        self.in_a_row = 0

    def add(self, line: int, reason: str, raw: str) -> None:
        self.result.rejected += 1
        if len(self.result.rejects) < self.keep:
            self.result.rejects.append(Reject(line, reason, raw[:KEEP_RAW]))
        self.in_a_row += 1
        self._write(raw)
        if self.limit and self.in_a_row >= self.limit:
            raise self.stop(self.in_a_row, line, reason)

    def _write(self, raw: str) -> None:
        if self.path is not None:
            if self.out is None:
                private_file(self.path)  # the rejected rows hold callers' numbers and names
                self.out = self.path.open("a", encoding="utf-8", errors="surrogateescape")
            self.out.write(raw + "\n")

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


def follow_csv(
    path: Path,
    store: Store,
    zones: Zones,
    *,
    offset: int,
    wait: Callable[[], bool],
    on_batch: Callable[[ImportResult], None],
    reject_file: Path | None = None,
) -> int:
    """Keep importing what Asterisk appends to ``path`` (cdr_csv opens, appends and closes
    the file per record). ``wait()`` sleeps between polls and returns False to stop; a file
    that shrank was rotated or truncated and is read again from the top. Only complete lines
    are read, so a record being written is picked up on the next poll. Returns the offset."""
    while wait():
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # rotated away; the new file appears on a later poll
            continue
        if size < offset:
            offset = 0
        if size == offset:
            continue
        more = import_csv(
            path, store, zones, reject_file=reject_file, offset=offset, complete_only=True
        )
        offset += more.bytes_read
        if more.rows:
            on_batch(more)
    return offset


__all__ = [
    "ImportResult",
    "Reject",
    "complete_row",
    "data_size",
    "follow_csv",
    "import_csv",
    "layout_for",
    "open_csv",
    "parse_row",
    "plan_for_row",
]
