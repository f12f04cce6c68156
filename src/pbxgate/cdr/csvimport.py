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
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from pbxgate.cdr.model import Leg
from pbxgate.cdr.store import InsertResult, Store
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
_UNIQUEID = re.compile(r"^\d+\.\d+$")
_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_NAME_NUM = re.compile(r'^"?(?P<name>.*?)"?\s*<(?P<num>[^>]*)>$')
MAX_RECORD = 64 * 1024  # cdr_csv drops records over 1 KiB; anything this long is not a CDR


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


def _time(value: str, column: str) -> datetime | None:
    if not value:
        if column == "start":
            raise ValueError("start time is empty")
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a date and time") from None


def _int(value: str, column: str) -> int:
    try:
        return int(value or 0)
    except ValueError:
        raise ValueError(f"{column} {value!r} is not a whole number") from None


def parse_row(fields: list[str], zones: Zones) -> Leg:
    """One Master.csv row as a leg; raises ValueError with the reason when it is broken."""
    names = layout_for(fields)
    row = dict(zip(names, fields, strict=True))
    start = _time(row["start"], "start")
    answer = _time(row["answer"], "answer")
    end = _time(row["end"], "end")
    duration = _int(row["duration"], "duration")
    billsec = _int(row["billsec"], "billsec")
    if duration < 0 or billsec < 0:
        raise ValueError("negative duration or billsec")
    if billsec > duration:
        raise ValueError(f"billsec {billsec} exceeds duration {duration}")
    assert start is not None
    conv = zones.to_display
    match = _NAME_NUM.match(row["clid"])
    cnam = match.group("name").replace('""', '"') if match else ""
    return Leg(
        start=conv(start),
        answer=conv(answer) if answer else None,
        end=conv(end) if end else None,
        src=row["src"],
        dst=row["dst"],
        duration=duration,
        billsec=billsec,
        disposition=row["disposition"],
        clid=row["clid"],
        dcontext=row["dcontext"],
        channel=row["channel"],
        dstchannel=row["dstchannel"],
        lastapp=row["lastapp"],
        lastdata=row["lastdata"],
        amaflags=row["amaflags"],
        accountcode=row["accountcode"],
        uniqueid=row.get("uniqueid", ""),
        userfield=row.get("userfield", ""),
        cnum=row["src"],
        cnam=cnam if cnam != row["src"] else "",
        linkedid=row.get("linkedid", ""),
        peeraccount=row.get("peeraccount", ""),
        sequence=_int(row.get("sequence", "0"), "sequence"),
    )


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


def read_rows(
    stream: IO[str], zones: Zones, first_line: int = 1
) -> Iterator[tuple[int, Leg | Reject, int]]:
    """``(line number, leg or reject, bytes consumed)`` for each physical record in ``stream``.

    A record is read line by line so that a quoted field with a newline inside stays one
    record; its reason for rejection names the first line it started on."""
    lineno = first_line
    while True:
        raw = stream.readline()
        if not raw:
            return
        start_line = lineno
        lineno += 1
        while raw.count('"') % 2 and len(raw) < MAX_RECORD:
            more = stream.readline()
            if not more:
                break
            raw += more
            lineno += 1
        used = len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogateescape"))
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        yield start_line, _parse_record(text, start_line, zones), used


def _parse_record(text: str, line: int, zones: Zones) -> Leg | Reject:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return Reject(line, "not valid UTF-8 (convert the file with iconv)", text)
    if text.count('"') % 2:
        return Reject(line, "unbalanced quotes", text)
    try:
        fields = next(csv.reader(io.StringIO(text), strict=True))
        return parse_row(fields, zones)
    except (csv.Error, ValueError) as exc:
        return Reject(line, str(exc), text)


def import_csv(
    path: Path,
    store: Store,
    zones: Zones,
    *,
    reject_file: Path | None = None,
    progress: Callable[[int], None] | None = None,
    offset: int = 0,
    batch: int = 5000,
) -> ImportResult:
    """Import ``path`` into ``store``; rejects go to ``reject_file`` (created only if needed)."""
    result = ImportResult()
    try:
        fh = path.open("r", encoding="utf-8", errors="surrogateescape", newline="")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    rejects_out: IO[str] | None = None
    try:
        if offset:
            fh.seek(offset)
        pending: list[Leg] = []
        for _line, item, used in read_rows(fh, zones):
            result.rows += 1
            result.bytes_read += used
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
                _flush(store, pending, result, progress)
        _flush(store, pending, result, progress)
    finally:
        fh.close()
        if rejects_out is not None:
            rejects_out.close()
    return result


def _flush(
    store: Store, pending: list[Leg], result: ImportResult, progress: Callable[[int], None] | None
) -> None:
    if pending:
        outcome: InsertResult = store.insert(pending, batch=len(pending))
        result.inserted += outcome.inserted
        result.duplicates += outcome.duplicates
        pending.clear()
    if progress is not None:
        progress(result.bytes_read)


__all__ = ["ImportResult", "Reject", "import_csv", "layout_for", "parse_row", "read_rows"]
