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
import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from pbxgate.cdr.model import Leg
from pbxgate.cdr.schema import LEG_COLUMNS
from pbxgate.cdr.store import KEY_FIELDS, InsertResult, Store, key_of
from pbxgate.cdr.window import Zones
from pbxgate.errors import InputError

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
    try:
        return int(value or 0)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a whole number") from None


def _checked(fields: list[str], zones: Zones) -> dict[str, Any]:
    """The row's fields by name, times validated and converted, numbers parsed."""
    row: dict[str, Any] = dict(zip(layout_for(fields), fields, strict=True))
    for col in ("start", "answer", "end"):
        row[col] = _time(row[col], col, zones)
    duration = row["duration"] = _int(row["duration"], "duration")
    billsec = row["billsec"] = _int(row["billsec"], "billsec")
    row["sequence"] = _int(row.get("sequence", ""), "sequence")
    if duration < 0 or billsec < 0:
        raise ValueError("negative duration or billsec")
    if billsec > duration:
        raise ValueError(f"billsec {billsec} exceeds duration {duration}")
    match = _NAME_NUM.match(row["clid"])
    cnam = match.group("name") if match else ""
    row["cnam"] = cnam if cnam != row["src"] else ""
    return row


class _Plan:
    """How one column layout turns into a store row, worked out once per layout: the plain
    text columns are copied by one ``itemgetter`` call; only times, numbers and the caller
    name are looked at one by one. (A million-row Master.csv goes through here.)"""

    def __init__(self, names: tuple[str, ...]) -> None:
        pos = {name: i for i, name in enumerate(names)}
        absent = len(names)  # index of the "" appended to every row
        source = ["start" if c == "calldate" else "src" if c == "cnum" else c for c in LEG_COLUMNS]
        self.copy = itemgetter(*(pos.get(c, absent) for c in source))
        self.i_start, self.i_answer, self.i_end = pos["start"], pos["answer"], pos["end"]
        self.i_dur, self.i_bill, self.i_clid = pos["duration"], pos["billsec"], pos["clid"]
        self.i_seq, self.i_src = pos.get("sequence", absent), pos["src"]
        out = {c: i for i, c in enumerate(LEG_COLUMNS)}
        self.o_start, self.o_dur, self.o_bill = out["calldate"], out["duration"], out["billsec"]
        self.o_seq, self.o_cnam = out["sequence"], out["cnam"]
        self.key = itemgetter(*(out[f] for f in KEY_FIELDS))


_PLANS: dict[tuple[str, ...], _Plan] = {}
# Field counts whose column layout is the same on every row (16: plain; 18: the sample
# cdr.conf's loguniqueid + loguserfield; 21: everything): looked up without a regex.
_FIXED = {
    16: BASE,
    18: (*BASE, "uniqueid", "userfield"),
    21: (*BASE, "uniqueid", "userfield", *NEW_COLUMNS),
}


def store_row(fields: list[str], zones: Zones) -> tuple[Any, ...]:
    """One Master.csv row as a store row (:data:`pbxgate.cdr.store.STORE_COLUMNS` order)."""
    names = _FIXED.get(len(fields)) or layout_for(fields)
    plan = _PLANS.get(names) or _PLANS.setdefault(names, _Plan(names))
    fields.append("")  # what an absent column reads as
    start = _time(fields[plan.i_start], "start", zones)
    answer = _time(fields[plan.i_answer], "answer", zones)
    end = _time(fields[plan.i_end], "end", zones)
    duration = _int(fields[plan.i_dur], "duration")
    billsec = _int(fields[plan.i_bill], "billsec")
    if duration < 0 or billsec < 0:
        raise ValueError("negative duration or billsec")
    if billsec > duration:
        raise ValueError(f"billsec {billsec} exceeds duration {duration}")
    clid = fields[plan.i_clid]
    cnam = ""
    if "<" in clid:
        match = _NAME_NUM.match(clid)
        cnam = match.group("name") if match else ""
    values = list(plan.copy(fields))
    values[plan.o_start] = start
    values[plan.o_dur] = duration
    values[plan.o_bill] = billsec
    values[plan.o_seq] = _int(fields[plan.i_seq], "sequence")
    values[plan.o_cnam] = cnam if cnam != fields[plan.i_src] else ""
    key = key_of([start, *map(str, plan.key(values))])
    return (*values, answer or None, end or None, key)


def parse_row(fields: list[str], zones: Zones) -> Leg:
    """One Master.csv row as a leg; raises ValueError with the reason when it is broken."""
    row = _checked(fields, zones)

    def when(text: str) -> datetime | None:
        return datetime.fromisoformat(text) if text else None

    start = when(row["start"])
    assert start is not None
    names = [f for f in row if f in Leg.__slots__ and f not in ("start", "answer", "end")]
    leg = Leg(start=start, answer=when(row["answer"]), end=when(row["end"]))
    for name in names:
        setattr(leg, name, row[name])
    leg.cnum = row["src"]
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
    rejects: list[Reject] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def rejected(self) -> int:
        return len(self.rejects)


# Above this much to read, indexes are built once at the end instead of row by row
# (about 250,000 rows of Master.csv).
BULK_BYTES = 64 * 1024 * 1024


_fromiso = datetime.fromisoformat


class _Lines:
    """Feeds the csv reader line by line from a binary file, counting bytes exactly and
    keeping the raw lines of the record being read (for the reject file).

    With ``complete_only`` a trailing line without its newline is left unread: Asterisk may
    be writing it right now (``--follow``)."""

    def __init__(self, fh: IO[bytes], complete_only: bool) -> None:
        self.fh = fh
        self.complete_only = complete_only
        self.consumed = 0
        self.lines = 0
        self.current: list[str] = []
        self.bad_utf8 = False  # a line of the current record is not UTF-8

    def next_record(self) -> None:
        self.current.clear()
        self.bad_utf8 = False

    def __iter__(self) -> Iterator[str]:
        for raw in self.fh:
            if self.complete_only and not raw.endswith(b"\n"):
                return
            self.consumed += len(raw)
            self.lines += 1
            try:
                text = raw.decode()
            except UnicodeDecodeError:  # kept byte for byte, so the reject file has it as is
                text = raw.decode("utf-8", "surrogateescape")
                self.bad_utf8 = True
            self.current.append(text)
            yield text


def read_rows(
    fh: IO[bytes], zones: Zones, *, complete_only: bool = False
) -> Iterator[tuple[int, tuple[Any, ...] | Reject, int]]:
    """``(first line, store row or reject, bytes consumed so far)`` per record of ``fh``.

    One csv reader runs over the whole file (a quoted field may hold a newline); a record that
    the reader or the row checks refuse becomes a :class:`Reject` with its raw lines."""
    lines = _Lines(fh, complete_only)
    reader = csv.reader(lines, strict=True)
    while True:
        first = lines.lines + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield first, _reject(lines, first, f"malformed CSV: {exc}"), lines.consumed
            continue
        if not fields or fields == [""]:
            lines.next_record()
            continue
        try:
            if lines.bad_utf8:
                raise ValueError("not valid UTF-8 (convert the file with iconv -f cp1251)")
            item: tuple[Any, ...] | Reject = store_row(fields, zones)
        except ValueError as exc:
            item = _reject(lines, first, str(exc))
        lines.next_record()
        yield first, item, lines.consumed


def _reject(lines: _Lines, first: int, reason: str) -> Reject:
    raw = "".join(lines.current).rstrip("\r\n")
    lines.next_record()
    return Reject(first, reason, raw)


def import_csv(
    path: Path,
    store: Store,
    zones: Zones,
    *,
    reject_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
    offset: int = 0,
    complete_only: bool = False,
    batch: int = 20000,
    bulk: bool | None = None,
) -> ImportResult:
    """Import ``path`` (from byte ``offset``) into ``store``; rejects go to ``reject_file``
    (created only when there is one). ``result.bytes_read`` says where to resume. ``bulk``
    (default: when more than :data:`BULK_BYTES` are to be read) rebuilds the indexes at the end.

    Reading and checking rows runs in a second thread while this one writes the previous batch:
    SQLite lets go of the GIL while it inserts, so the two overlap on a two-core machine."""
    result = ImportResult()
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    batches: queue.Queue[tuple[list[tuple[Any, ...]], int] | BaseException | None]
    batches = queue.Queue(maxsize=2)
    stop = threading.Event()  # the writer failed or finished: the reader stops early
    reader = threading.Thread(
        target=_produce,
        args=(fh, zones, offset, complete_only, batch, reject_file, result, batches, stop),
        name="csv-reader",
        daemon=True,
    )
    if bulk is None:
        bulk = path.stat().st_size - offset > BULK_BYTES
    reader.start()
    try:
        with store.bulk() if bulk else nullcontext():
            while (item := batches.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                rows, consumed = item
                _flush(store, rows, result, progress, consumed)
    finally:
        stop.set()
        while reader.is_alive():  # take what it still puts, so that it can see `stop` and end
            with suppress(queue.Empty):
                batches.get(timeout=0.05)
        reader.join()
        fh.close()
    return result


def _produce(
    fh: IO[bytes],
    zones: Zones,
    offset: int,
    complete_only: bool,
    batch: int,
    reject_file: Path | None,
    result: ImportResult,
    batches: queue.Queue[tuple[list[tuple[Any, ...]], int] | BaseException | None],
    stop: threading.Event,
) -> None:
    rejects_out: IO[str] | None = None
    try:
        fh.seek(offset)
        pending: list[tuple[Any, ...]] = []
        for _line, item, consumed in read_rows(fh, zones, complete_only=complete_only):
            if stop.is_set():
                return
            result.rows += 1
            result.bytes_read = consumed
            if isinstance(item, Reject):
                result.rejects.append(item)
                if reject_file is not None:
                    rejects_out = rejects_out or reject_file.open(
                        "a", encoding="utf-8", errors="surrogateescape"
                    )
                    rejects_out.write(item.raw + "\n")
            else:
                pending.append(item)
                if len(pending) >= batch:
                    batches.put((pending, consumed))
                    pending = []
        batches.put((pending, result.bytes_read))
    except BaseException as exc:  # handed to the writing thread, which raises it
        batches.put(exc)
    finally:
        if rejects_out is not None:
            rejects_out.close()
        batches.put(None)


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


def _flush(
    store: Store,
    pending: list[tuple[Any, ...]],
    result: ImportResult,
    progress: Callable[[int], None] | None,
    consumed: int,
) -> None:
    if pending:
        outcome: InsertResult = store.insert_rows(pending)
        result.inserted += outcome.inserted
        result.duplicates += outcome.duplicates
    if progress is not None:
        progress(consumed)


__all__ = [
    "ImportResult",
    "Reject",
    "follow_csv",
    "import_csv",
    "layout_for",
    "parse_row",
    "read_rows",
    "store_row",
]
