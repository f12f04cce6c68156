"""Where queue_log lines are read from: a file, pbxgate's store, or Asterisk's realtime table.

* A **file** (``/var/log/asterisk/queue_log``, a rotated or gzip-compressed one): read whole.
* pbxgate's **store** (``local``): the lines ``pbxgate queue import`` put there, read by time
  through an index.
* Asterisk's **realtime table** (extconfig.conf ``queue_log => odbc,...``; the table Asterisk's
  alembic scripts create: ``time``, ``callid``, ``queuename``, ``agent``, ``event`` and
  ``data1``..``data5``, or one ``data`` column on older setups), in MariaDB/MySQL, PostgreSQL
  or SQLite, through a ``[cdr.sources.NAME]`` or a URL: read-only and time-limited like CDR
  sources. Asterisk writes the table's ``time`` as local time with microseconds
  (``%F %T.%6q``), or UTC with ``queue_log_realtime_use_gmt``; the five data columns split the
  data at ``|`` with the rest in ``data5`` (main/logger.c ``ast_queue_log``), so joining them
  back gives the file's line.
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import inspect, text

from pbxgate.cdr.settings import LOCAL_SOURCE, CdrSettings
from pbxgate.cdr.window import Window, zone
from pbxgate.errors import InputError, SourceError
from pbxgate.queue.log import QueueLogLine, read_lines
from pbxgate.queue.settings import QueueSettings
from pbxgate.queue.store import QueueStore

BASE_COLUMNS = ("time", "callid", "queuename", "agent", "event")
DATA_COLUMNS = ("data1", "data2", "data3", "data4", "data5")


class QueueSource(Protocol):
    name: str

    def lines(self, start: int | None, end: int | None) -> Iterator[QueueLogLine]:
        """Lines with ``start <= time < end`` (Unix seconds; None: no bound), in time order."""
        ...

    def close(self) -> None: ...


class FileSource:
    """A queue_log file, read whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def lines(self, start: int | None, end: int | None) -> Iterator[QueueLogLine]:
        from pbxgate.cdr.csvimport import open_csv  # noqa: PLC0415

        with open_csv(self.path) as fh:
            text = (raw.decode("utf-8", "replace") for raw in fh)
            try:
                for line in read_lines(text):
                    if (start is None or line.time >= start) and (end is None or line.time < end):
                        yield line
            except InputError as exc:
                raise InputError(f"{self.path}: {exc}") from exc
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise InputError(f"{self.path}: a damaged compressed file ({exc})") from exc
            except OSError as exc:
                raise InputError(f"cannot read {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        return None


class StoreSource:
    """The lines imported into pbxgate's store."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise SourceError(
                f"pbxgate's store {path} does not exist yet",
                hint="fill it with `pbxgate queue import /var/log/asterisk/queue_log`",
            )
        self.store = QueueStore(path)
        self.name = f"{LOCAL_SOURCE} ({path})"
        if not self.store.count():
            self.store.close()
            raise SourceError(
                f"no queue_log lines in {path} yet",
                hint="import them with `pbxgate queue import /var/log/asterisk/queue_log`",
            )

    def lines(self, start: int | None, end: int | None) -> Iterator[QueueLogLine]:
        return self.store.lines(start, end)

    def close(self) -> None:
        self.store.close()


class TableSource:
    """Asterisk's realtime queue_log table, through a CDR source's connection settings."""

    def __init__(self, settings: CdrSettings, queue: QueueSettings, name: str) -> None:
        from pbxgate.cdr.source import Source, resolve_source  # noqa: PLC0415

        spec = dataclasses.replace(resolve_source(settings, name), table=queue.table)
        self.source = Source(spec, settings)
        self.name = f"{spec.name}, table {queue.table}"
        self.stored: tzinfo | None = UTC if queue.realtime_use_gmt else zone(spec.timezone)
        self.order = "time"
        self.columns = self._columns()

    def _columns(self) -> tuple[str, ...]:
        table = self.source.spec.table
        with self.source.errors("read the table layout"):
            insp = inspect(self.source.engine)
            if not insp.has_table(table):
                raise SourceError(
                    f"{self.source.where()} has no table {table!r}",
                    hint="set [queue] table to the name extconfig.conf gives queue_log",
                )
            found = {c["name"].lower() for c in insp.get_columns(table)}
        missing = [c for c in BASE_COLUMNS if c not in found]
        if missing:
            raise SourceError(
                f"table {table!r} on {self.source.where()} is not a queue_log table: "
                f"no column {missing[0]!r}"
            )
        if "id" in found:  # the order Asterisk wrote them in (local times repeat an hour)
            self.order = "id"
        if all(c in found for c in DATA_COLUMNS):
            return BASE_COLUMNS + DATA_COLUMNS
        if "data" in found:
            return (*BASE_COLUMNS, "data")
        raise SourceError(f"table {table!r} has neither data1..data5 nor data columns")

    def _bound(self, epoch: int) -> Any:
        """Unix seconds as the table keeps them: a wall-clock time of its zone."""
        naive = datetime.fromtimestamp(epoch, self.stored).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S") if self.source.dialect == "sqlite" else naive

    def lines(self, start: int | None, end: int | None) -> Iterator[QueueLogLine]:
        quote = self.source.engine.dialect.identifier_preparer.quote_identifier
        quoted = ", ".join(quote(c) for c in self.columns)

        table = self.source.spec.table
        where, params = [], {}
        if start is not None:
            where.append(f"{quote('time')} >= :lo")
            params["lo"] = self._bound(start)
        if end is not None:
            where.append(f"{quote('time')} < :hi")
            params["hi"] = self._bound(end)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        statement = text(f"SELECT {quoted} FROM {table}{clause} ORDER BY {quote(self.order)}")
        for row in self.source.stream(statement, params):
            yield self._line(row)

    def _line(self, row: Any) -> QueueLogLine:
        when, callid, queue, agent, event, *data = row
        if isinstance(when, str):
            when = datetime.fromisoformat(when)
        if not isinstance(when, datetime):
            raise SourceError(f"queue_log time {str(when)[:30]!r} is not a date and time")
        aware = when.replace(tzinfo=self.stored) if self.stored else when.astimezone()
        if len(data) == 1:  # one data column: the file's fields, joined
            fields = tuple((data[0] or "").split("|")) if data[0] else ()
        else:  # data1..data5, the last holding the rest
            joined = "|".join(d or "" for d in data).rstrip("|")
            fields = tuple(joined.split("|")) if joined else ()
        return QueueLogLine(int(aware.timestamp()), callid or "", queue or "", agent or "",
                            event or "", fields)  # fmt: skip

    def close(self) -> None:
        self.source.close()


def open_queue_source(
    settings: CdrSettings,
    queue: QueueSettings,
    *,
    file: Path | None = None,
    name: str | None = None,
) -> QueueSource:
    """The file when one is given, else ``name`` (or ``[queue] source``): ``local`` for the
    store, a ``[cdr.sources.NAME]``, a URL or an SQLite file holding Asterisk's table."""
    if file is not None:
        return FileSource(file)
    chosen = name or queue.source
    if chosen == LOCAL_SOURCE:
        return StoreSource(settings.store_path())
    return TableSource(settings, queue, chosen)


def epoch_of(moment: datetime, display: tzinfo | None) -> int:
    """A wall-clock moment of the display zone (a window's bound) as Unix seconds."""
    return int(moment.replace(tzinfo=display).timestamp() if display else moment.timestamp())


def window_bounds(window: Window, display: tzinfo | None) -> tuple[int, int]:
    return epoch_of(window.start, display), epoch_of(window.end, display)


__all__ = [
    "FileSource",
    "QueueSource",
    "StoreSource",
    "TableSource",
    "epoch_of",
    "open_queue_source",
    "window_bounds",
]
