"""What the console's pages show, as plain dicts: each page's HTML and its ``/api/`` twin are
rendered from the same dict (datasette's habit). Nothing here knows about HTTP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl

from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import Window, now_in, resolve_window, zone
from pbxgate.config import Settings
from pbxgate.errors import InputError

if TYPE_CHECKING:
    from pbxgate.cdr.callindex import CallIndex
    from pbxgate.cdr.callquery import CallQuery

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_DAYS = 366  # the longest window the Calls page lists
PERIODS = ("today", "yesterday", "week", "month")
DIRECTIONS = ("inbound", "outbound", "internal")
NUMBER_FIELDS = ("src", "dst", "did", "cnum")
# What Asterisk writes as a disposition (ast_cdr_disp2str), as `pbxgate cdr calls --disposition`.
DISPOSITIONS = ("ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL")
# The query-string keys of the Calls page: the filter is the URL, so a view can be shared.
CALL_FILTERS = ("period", "from", "to", "direction", *NUMBER_FIELDS, "extension", "queue",
                "outcome", "disposition", "min_billsec", "accountcode")  # fmt: skip
CALL_QUERY = (*CALL_FILTERS, "page", "per_page")
# The columns of a Calls export: `pbxgate cdr calls --columns all` without the recording paths.
EXPORT_COLUMNS = ("start", "direction", "src", "caller", "did", "dst", "answered_by", "outcome",
                  "ring", "talk", "legs", "recording", "answered_via", "talked", "answered_at",
                  "linkedid")  # fmt: skip


def local_now(settings: Settings) -> datetime:
    return now_in(zone(settings.get(CdrSettings).timezone))


class Kept:
    """Values worked out ahead of their readers: Today's report, which costs a second of a core
    over a large table, is never computed while a viewer waits for it, except the first time.

    ``get`` answers from what is kept while it was confirmed current within ``fresh`` seconds;
    up to ``limit`` seconds it still answers at once and has the value brought up to date behind
    it (one thread per key); older than that, or never computed, the reader computes it, and
    every other reader of the key waits for that one result (single flight), never computing it
    again. :meth:`refresh` is what the console's keeper thread calls every ``fresh`` seconds for
    each key read lately (:meth:`keys`): it asks ``version(key)``, a cheap look at the data
    (today's date and the number of its CDR rows), and computes again only when that changed
    or the value is ``max_age`` seconds old (Today's comparison with yesterday moves with
    the clock). At most ``max_keys`` values are kept. With ``limit`` equal to ``fresh`` and no
    keeper it is a plain shared answer: everyone asking within ``fresh`` gets one computation.
    ``clock`` is monotonic seconds (a seam for tests)."""

    def __init__(
        self,
        compute: Callable[[Hashable], Any],
        version: Callable[[Hashable], Hashable] | None = None,
        *,
        fresh: float,
        limit: float,
        max_age: float,
        clock: Callable[[], float],
        max_keys: int = 64,
    ) -> None:
        self.compute, self.version = compute, version
        self.fresh, self.limit, self.max_age, self.clock = fresh, limit, max_age, clock
        self.max_keys = max_keys
        self._guard = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._kept: dict[Hashable, _Entry] = {}
        self._behind: dict[Hashable, threading.Thread] = {}
        self._read: dict[Hashable, float] = {}  # when each key was last read
        self.computed = 0  # how many values were worked out: for tests and benchmarks

    def keys(self, read_within: float) -> list[Hashable]:
        """The keys someone read within the last ``read_within`` seconds."""
        now = self.clock()
        with self._guard:
            return [key for key, at in self._read.items() if now - at < read_within]

    def get(self, key: Hashable) -> Any:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
            kept = self._kept.get(key)
            self._read[key] = self.clock()
        if kept is not None:
            age = self.clock() - kept.checked
            if age < self.fresh:
                return kept.value
            if age < self.limit:
                self._behind_readers(key)
                return kept.value
        seen = kept
        with lock:  # single flight: whoever got here first computes, the others wait for it
            kept = self._kept.get(key)
            if kept is not None and (kept is not seen or self.clock() - kept.checked < self.fresh):
                return kept.value  # computed while this reader waited, however long it took
            try:
                return self._work_out(key).value
            except BaseException:
                with self._guard:  # nothing kept for a key that failed: nothing left of it
                    if key not in self._kept:
                        self._read.pop(key, None)
                        if self._locks.get(key) is lock:
                            del self._locks[key]
                raise

    def refresh(self, key: Hashable) -> bool:
        """Bring ``key`` up to date if its data changed or it is ``max_age`` old; True when it
        was computed again. Errors are the caller's (the keeper logs them)."""
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            kept = self._kept.get(key)
            now = self.clock()
            if kept is not None and self.version is not None and now - kept.made < self.max_age:
                version = self.version(key)
                if version == kept.version:
                    with self._guard:
                        self._kept[key] = kept._replace(checked=self.clock())
                    return False
            self._work_out(key)
            return True

    def wait(self) -> None:
        """Until every refresh started behind the readers has ended (tests)."""
        while True:
            with self._guard:
                running = list(self._behind.values())
            if not running:
                return
            for thread in running:
                thread.join()

    def _work_out(self, key: Hashable) -> _Entry:
        """Compute ``key`` (its lock held); the version is read first, so a change that lands
        while the value is computed makes the next refresh compute it again."""
        started = self.clock()
        version = self.version(key) if self.version is not None else None
        value = self.compute(key)
        # current as of its version, read at the start; answered as fresh from its end
        entry = _Entry(value, version, started, self.clock())
        with self._guard:
            self._kept[key] = entry
            self.computed += 1
            self._forget()
        return entry

    def _forget(self) -> None:
        """Drop the values past ``limit`` (no reader would take them), then, over
        ``max_keys``, the least recently read (the guard held)."""
        now = self.clock()
        for key in [k for k, e in self._kept.items() if now - e.checked >= self.limit]:
            if key not in self._behind:  # a refresh of it is running: it will be current
                self._drop(key)
        by_reading = sorted(self._kept, key=lambda k: self._read.get(k, 0.0))
        for key in by_reading[: max(0, len(self._kept) - self.max_keys)]:
            self._drop(key)

    def _drop(self, key: Hashable) -> None:
        del self._kept[key]
        self._read.pop(key, None)
        lock = self._locks.get(key)
        if lock is not None and not lock.locked():
            del self._locks[key]

    def _behind_readers(self, key: Hashable) -> None:
        with self._guard:
            if key in self._behind:
                return
            thread = threading.Thread(target=self._refresh_quietly, args=(key,), daemon=True)
            self._behind[key] = thread
        thread.start()

    def _refresh_quietly(self, key: Hashable) -> None:
        try:
            self.refresh(key)
        except Exception as exc:  # the next reader past `limit` computes it and sees the error
            log.warning("console: %s was not brought up to date: %s", key, exc)
        finally:
            with self._guard:
                self._behind.pop(key, None)


class _Entry(NamedTuple):
    value: Any
    version: Hashable
    made: float  # when its computation started (max_age counts from here)
    checked: float  # when it was computed or last found current (fresh and limit count here)


def today(settings: Settings, now: datetime, language: str) -> dict[str, Any]:
    """Today so far against yesterday up to the same time of day: the report's KPIs, calls
    per hour by outcome, the busy hour, peak concurrency and the missed calls with their
    call-back state."""
    from pbxgate.cdr.report.service import make_report, options  # noqa: PLC0415

    window = resolve_window(period="today", now=now)
    yesterday = window.start - timedelta(days=1)
    so_far = Window(yesterday, max(yesterday, min(now, window.end) - timedelta(days=1)))
    opts = options(settings, period="today", language=language, queues=False)
    # No recording files are looked up: the page shows none, and each is a disk access.
    opts = replace(opts, compare=so_far, monitor_dir=None)
    return make_report(settings, window, opts, now)


def today_version(settings: Settings, now: datetime) -> tuple[Any, ...]:
    """What Today's report depends on that a cheap query can see: the date and the number of
    CDR rows that start on it (one ``COUNT(*)`` over the start-time index)."""
    from pbxgate.cdr.callindex import day_counts  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    day = now.date()
    source = open_source(settings.get(CdrSettings))
    try:
        return (day, *day_counts(source, day, 1))
    finally:
        source.close()


@dataclass(frozen=True)
class CallsAsked:
    """The Calls page's query string, read and checked."""

    window: Window
    query: CallQuery
    page: int
    per_page: int
    filters: dict[str, str | list[str]]  # as given, without the page: for links and exports


def read_calls_query(
    settings: Settings, pairs: Iterable[tuple[str, str]], now: datetime
) -> CallsAsked:
    """The filters of the Calls page's query string; a bad value is one clear line."""
    from pbxgate.cdr.callquery import CallQuery  # noqa: PLC0415
    from pbxgate.cdr.numbers import InternalRule  # noqa: PLC0415
    from pbxgate.cdr.query import Filters, NumberFilter  # noqa: PLC0415

    given: dict[str, list[str]] = {}
    for key, value in pairs:
        if key in CALL_QUERY and value.strip():
            given.setdefault(key, []).append(value.strip())

    def one(key: str) -> str | None:
        return given[key][-1] if key in given else None

    window = _calls_window(one("period"), one("from"), one("to"), now)
    direction = one("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise InputError(f"unknown direction {direction!r}: use {', '.join(DIRECTIONS)}")
    dispositions = tuple(
        dict.fromkeys(_disposition(d) for v in given.get("disposition", []) for d in v.split(","))
    )
    filters = Filters(
        direction=direction,
        numbers=tuple(NumberFilter(f, _short(f, v) or "") for f in NUMBER_FIELDS if (v := one(f))),
        dispositions=dispositions,
        min_billsec=_seconds(one("min_billsec")),
        accountcode=_short("accountcode", one("accountcode")),
        rule=InternalRule.from_settings(settings.get(CdrSettings)),
    )
    query = CallQuery(filters, one("outcome"), one("extension"), one("queue"))
    per_page = _number(one("per_page"), PER_PAGE, 1, MAX_PER_PAGE, "per_page")
    page = _number(one("page"), 1, 1, 10**9, "page")
    echo: dict[str, str | list[str]] = {k: given[k][-1] for k in CALL_FILTERS if k in given}
    if dispositions:
        echo["disposition"] = list(dispositions)
    return CallsAsked(window, query, page, per_page, echo)


def _calls_window(period: str | None, start: str | None, end: str | None, now: datetime) -> Window:
    """``from``/``to`` when given (they win over ``period``), else ``period``, else today."""
    if period is not None and period not in PERIODS:
        raise InputError(f"unknown period {period!r}: use {', '.join(PERIODS)}")
    window = resolve_window(start=start, end=end, period=None if start or end else period, now=now)
    if window.end - window.start > timedelta(days=MAX_DAYS):
        raise InputError(
            f"the window {window.describe()} is longer than {MAX_DAYS} days: narrow from/to"
        )
    return window


def _disposition(text: str) -> str:
    """A status as Asterisk writes it; ``no-answer`` and ``NO_ANSWER`` mean ``NO ANSWER``."""
    value = " ".join(text.upper().replace("_", " ").replace("-", " ").split())
    if value not in DISPOSITIONS:
        raise InputError(f"unknown disposition {text!r}: use {', '.join(DISPOSITIONS)}")
    return value


def _seconds(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InputError(f"min_billsec must be a whole number of seconds, not {text!r}")
    return int(text)


def _short(name: str, text: str | None) -> str | None:
    if text is not None and len(text) > 80:
        raise InputError(f"the {name} filter is longer than 80 characters")
    return text


def calls(
    settings: Settings,
    query: str | Mapping[str, str] | Iterable[tuple[str, str]],
    now: datetime,
    *,
    index: CallIndex | None = None,
) -> dict[str, Any]:
    """One page of calls for the filters in ``query`` (the Calls page's query string, as text,
    pairs or a mapping), newest first with a stable order, and how many there are in all. Only the
    page's calls are built (:mod:`pbxgate.cdr.calllist`); ``index`` keeps call facts between
    requests."""
    from pbxgate.cdr.api import call_row  # noqa: PLC0415
    from pbxgate.cdr.calllist import find_page  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    asked = read_calls_query(settings, _pairs(query), now)
    source = open_source(settings.get(CdrSettings))
    try:
        found = find_page(source, asked.window, asked.query, asked.page, asked.per_page, index)
    finally:
        source.close()
    return {
        "window": _window(asked.window),
        "filters": asked.filters,
        "total": found.total,
        "page": found.page,
        "pages": found.pages,
        "per_page": found.per_page,
        "rows": [_jsonable(call_row(call)) for call in found.calls],
    }


def export_calls(
    settings: Settings,
    query: str | Mapping[str, str] | Iterable[tuple[str, str]],
    now: datetime,
    *,
    index: CallIndex | None = None,
) -> tuple[CallsAsked, int, Iterator[dict[str, Any]]]:
    """Every call the filters in ``query`` pass (all pages), as rows of
    :data:`EXPORT_COLUMNS` built a chunk at a time while the iterator is read, and how many
    there are. The source closes when the iterator ends."""
    from pbxgate.cdr.api import call_row  # noqa: PLC0415
    from pbxgate.cdr.calllist import all_calls  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    asked = read_calls_query(settings, _pairs(query), now)
    source = open_source(settings.get(CdrSettings))
    try:
        total, found = all_calls(source, asked.window, asked.query, index)
    except BaseException:
        source.close()
        raise

    def rows() -> Iterator[dict[str, Any]]:
        try:
            for call in found:
                yield call_row(call)
        finally:
            source.close()

    return asked, total, rows()


def call_detail(settings: Settings, linkedid: str) -> dict[str, Any] | None:
    """One call with its legs (raw CDR rows, in order) and its timeline; None if unknown."""
    from pbxgate.cdr.api import call_row, leg_row  # noqa: PLC0415
    from pbxgate.cdr.timeline import timeline  # noqa: PLC0415
    from pbxgate.web.lookup import find_call  # noqa: PLC0415

    call = find_call(settings, linkedid)
    if call is None:
        return None
    legs = sorted(call.legs, key=lambda leg: (leg.start, leg.sequence))
    return {
        "call": _jsonable(call_row(call)),
        "legs": [_jsonable(leg_row(leg)) for leg in legs],
        "timeline": timeline(call),
    }


def _pairs(query: str | Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(query, str):
        return parse_qsl(query.removeprefix("?"))
    return list(query.items()) if isinstance(query, Mapping) else list(query)


def _window(window: Window) -> dict[str, str]:
    return {"from": _iso(window.start), "to": _iso(window.end), "label": window.describe()}


def _number(text: str | None, default: int, low: int, high: int, name: str) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{name} must be a number, not {text!r}") from None
    return min(max(value, low), high)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


__all__ = [
    "CALL_FILTERS",
    "CALL_QUERY",
    "EXPORT_COLUMNS",
    "CallsAsked",
    "Kept",
    "call_detail",
    "calls",
    "export_calls",
    "local_now",
    "read_calls_query",
    "today",
    "today_version",
]
