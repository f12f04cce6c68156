"""The brief facts of each day's calls, kept between requests: the console's call index.

A filter on what a call's legs add up to (direction, outcome, talk time) needs every call of
the window worked out, which for a month of a busy PBX is seconds of Python however it is done
(:mod:`pbxgate.cdr.facts` is the fastest way the project has). Past days do not change, so the
work is kept: per day, the calls that start on it as :class:`Brief` tuples (about 200 bytes a
call; a month of 150,000 calls is some 30 MB), read exactly as ``pbxgate cdr stats`` reads that
day (its legs and an hour on each side).

A kept day is used while the number of legs on it and on the days beside it (whose legs it
reads) is what it was when the day was worked out: a new call today, a late import into a past
day, changes the count and the day is worked out again. One query counts every day of a window
(a scalar ``COUNT(*)`` per day over the start-time index). Entries also go stale after
``max_age`` seconds, for a row replaced in place (the count stays the same): a stale day is
worked out again by the request that finds it, or, when a keeper thread refreshes the index
(``ahead``, the console's), served as it is while :meth:`CallIndex.refresh_stale` works it out
again behind the readers. At most ``max_days`` days are kept, the least recently used leaving
first.

With a ``store`` (:class:`DayStore`, a SQLite file of pbxgate's own; the console keeps it
beside its database), every day worked out is also written there, and a day not kept in memory
is read back from it when the counts still match: a restarted console has last month's calls
in a fraction of a second instead of working them out again (seconds of a core), and so has a
month somebody looked at before. A day read back keeps the age it had (wall time), so the
``max_age`` rule applies to it as to a day worked out in this process.

A window is a run of whole days: a call is listed under the first day it is found on, so a call
whose legs span midnight by more than an hour is listed once, as the earlier day reads it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import and_, bindparam, column, func, select, table

from pbxgate.cdr import facts as rows_
from pbxgate.cdr.callrules import outcome_alone
from pbxgate.cdr.facts import APP, BILL, CHAN, DCHAN, DCTX, DISP, DST, SRC, T
from pbxgate.cdr.model import ANSWERED
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import CALL_MARGIN, _bound
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window, day_window

log = logging.getLogger(__name__)

MAX_DAYS = 62  # two months of days: last month and this one
STORED_DAYS = 800  # days kept on disk: some two years of months looked at (about 60 KB a day)
MAX_AGE = 600.0  # seconds


class Brief(NamedTuple):
    """What the Calls page's call-level filters and its order need of one call."""

    key: str
    start: datetime
    direction: str
    outcome: str
    talk_seconds: int

    @property
    def answered(self) -> bool:
        return self.outcome == ANSWERED


class _Day(NamedTuple):
    counts: tuple[int, int, int]  # legs on the day before, the day, the day after
    made: float
    briefs: list[Brief]


class DayStore:
    """Worked-out days on disk (SQLite, the owner's alone: 0600), at most ``max_days`` of
    them, the least recently written leaving first; thread-safe. A day is its briefs as
    zlib-compressed JSON, under the source's identity (a hash: no URL or name is written) and
    the date, with the leg counts it was worked out from and when (wall time)."""

    def __init__(self, path: Path, max_days: int = STORED_DAYS) -> None:
        self.path, self.max_days = path, max_days
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS call_days (ident TEXT NOT NULL, day TEXT NOT NULL, "
                "counts TEXT NOT NULL, made REAL NOT NULL, briefs BLOB NOT NULL, "
                "PRIMARY KEY (ident, day))"
            )

    def load(self, ident: str, day: date, counts: tuple[int, int, int]) -> _Day | None:
        """The day if it is stored with these counts; ``made`` is wall time."""
        with self._lock:
            row = self._db.execute(
                "SELECT made, briefs FROM call_days WHERE ident = ? AND day = ? AND counts = ?",
                (ident, day.isoformat(), _counts(counts)),
            ).fetchone()
        if row is None:
            return None
        try:
            items = json.loads(zlib.decompress(row[1]))
            intern = sys.intern
            briefs = [Brief(k, datetime.fromisoformat(t), intern(w), intern(o), s)
                      for k, t, w, o, s in items]  # fmt: skip
        except (ValueError, TypeError, zlib.error):  # a damaged row: worked out again
            return None
        return _Day(counts, float(row[0]), briefs)

    def save(self, ident: str, day: date, counts: tuple[int, int, int], made: float,
             briefs: list[Brief]) -> None:  # fmt: skip
        blob = zlib.compress(
            json.dumps(
                [
                    (b.key, b.start.isoformat(), b.direction, b.outcome, b.talk_seconds)
                    for b in briefs
                ],
                separators=(",", ":"),
            ).encode(),
            1,
        )
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO call_days VALUES (?, ?, ?, ?, ?)",
                (ident, day.isoformat(), _counts(counts), made, blob),
            )
            self._db.execute(
                "DELETE FROM call_days WHERE rowid NOT IN "
                "(SELECT rowid FROM call_days ORDER BY made DESC LIMIT ?)",
                (self.max_days,),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _counts(counts: tuple[int, int, int]) -> str:
    return ",".join(map(str, counts))


class CallIndex:
    """Days of :class:`Brief` facts per source and internal-number rule; thread-safe."""

    def __init__(
        self,
        max_days: int = MAX_DAYS,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
        store: DayStore | None = None,
        wall: Callable[[], float] = time.time,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.max_days = max_days
        self.max_age = max_age
        self.clock = clock
        self.store, self.wall = store, wall
        # today's date where the days are counted (the CDR's zone): today and yesterday are
        # not written to the store
        self.today = today or (lambda: date.fromtimestamp(self.wall()))
        self.loaded = 0  # days read back from the store: for tests and benchmarks
        self._days: OrderedDict[tuple[Any, ...], _Day] = OrderedDict()
        self._lock = threading.Lock()
        self._busy: dict[tuple[Any, ...], threading.Event] = {}  # days being worked out
        self.worked_out = 0  # days computed (not found kept): for tests and benchmarks
        self.ahead = False  # a keeper calls refresh_stale: stale days are served meanwhile

    def briefs(self, source: Source, window: Window, rule: InternalRule) -> list[Brief]:
        """The calls that start in ``window``, in start order (days not kept are worked out)."""
        found = self._briefs(source, window, rule, work=True)
        assert found is not None
        return found

    def kept(self, source: Source, window: Window, rule: InternalRule) -> list[Brief] | None:
        """As :meth:`briefs` if every day of ``window`` is kept and still good, else None."""
        return self._briefs(source, window, rule, work=False)

    def _briefs(
        self, source: Source, window: Window, rule: InternalRule, *, work: bool
    ) -> list[Brief] | None:
        first = window.start.date()
        last = (window.end - timedelta(microseconds=1)).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        counts = day_counts(source, days[0] - timedelta(days=1), len(days) + 2)
        ident = (str(source.spec.url), source.spec.table, rule)
        out: list[Brief] = []
        seen: set[str] = set()
        for i, day in enumerate(days):
            around = (counts[i], counts[i + 1], counts[i + 2])
            briefs = self._day(source, (*ident, day), rule, around, work)
            if briefs is None:
                return None
            for brief in briefs:
                if window.start <= brief.start < window.end and brief.key not in seen:
                    seen.add(brief.key)
                    out.append(brief)
        out.sort(key=_start)
        return out

    def _day(
        self,
        source: Source,
        key: tuple[Any, ...],
        rule: InternalRule,
        counts: tuple[int, int, int],
        work: bool,
    ) -> list[Brief] | None:
        """A day's briefs: kept, or worked out here, or (while another thread works the same
        day out, the start-up warming say) waited for."""
        while True:
            now = self.clock()
            with self._lock:
                kept = self._days.get(key)
                good = kept is not None and kept.counts == counts
                if kept is not None and good and (self.ahead or now - kept.made < self.max_age):
                    self._days.move_to_end(key)
                    return kept.briefs
                if not work and self.store is None:
                    return None
                busy = self._busy.get(key)
                if busy is None:
                    busy = self._busy[key] = threading.Event()
                    break
            if not work:
                return None
            busy.wait()
            if self.max_days <= 0:  # nothing is kept: work it out here too
                break
        try:
            return self._fill(source, key, rule, counts, now, work)
        finally:
            with self._lock:
                if self._busy.get(key) is busy:
                    del self._busy[key]
            busy.set()

    def _fill(
        self,
        source: Source,
        key: tuple[Any, ...],
        rule: InternalRule,
        counts: tuple[int, int, int],
        now: float,
        work: bool,
    ) -> list[Brief] | None:
        """A day the caller has claimed (``_busy``): read back from the store or, if ``work``,
        worked out, and kept."""
        day = self._stored(key, counts, now)
        if day is not None and not self.ahead and now - day.made >= self.max_age:
            day = None  # stale, and no keeper to work it out again behind the readers
        loaded = day is not None
        if day is None:
            if not work:
                return None
            day = _Day(counts, now, work_out(source, day_window(key[-1]), rule))
            self._store(key, day)
        with self._lock:
            self.loaded += loaded
            self.worked_out += not loaded
            if self.max_days > 0:
                self._days[key] = day
                self._days.move_to_end(key)
                while len(self._days) > self.max_days:
                    self._days.popitem(last=False)
        return day.briefs

    def _stored(
        self, key: tuple[Any, ...], counts: tuple[int, int, int], now: float
    ) -> _Day | None:
        """The day from the store, its age carried over from wall time to :attr:`clock`."""
        if self.store is None:
            return None
        try:
            found = self.store.load(_ident(key), key[-1], counts)
        except sqlite3.Error as exc:  # the index works without it: the day is worked out
            log.warning("the call index could not be read from %s: %s", self.store.path, exc)
            return None
        if found is None:
            return None
        return found._replace(made=now - max(0.0, self.wall() - found.made))

    def _store(self, key: tuple[Any, ...], day: _Day) -> None:
        """Write a worked-out day to the store, unless it is today or yesterday (whose counts
        change with every call: it would be written again at once), or it holds a call known by
        no linkedid or uniqueid (its key is made of the start and a channel name, which may
        carry a number: such days stay in memory)."""
        if self.store is None or key[-1] >= self.today() - timedelta(days=1):
            return
        if any("/" in brief.key for brief in day.briefs):
            return
        try:
            made = self.wall() - max(0.0, self.clock() - day.made)
            self.store.save(_ident(key), key[-1], day.counts, made, day.briefs)
        except sqlite3.Error as exc:  # the index works without it
            log.warning("the call index could not be written to %s: %s", self.store.path, exc)

    def refresh_stale(
        self, source: Source, rule: InternalRule, stop: Callable[[], bool] = lambda: False
    ) -> int:
        """Work out again every kept day of ``source`` and ``rule`` that is ``max_age`` old,
        the oldest first, until ``stop()``; returns how many were. The keeper's work."""
        ident = (str(source.spec.url), source.spec.table, rule)
        now = self.clock()
        with self._lock:
            stale = sorted(
                (day.made, key)
                for key, day in self._days.items()
                if key[:-1] == ident and now - day.made >= self.max_age
            )
        done = 0
        for _, key in stale:
            if stop():
                break
            with self._lock:
                kept = self._days.get(key)
                if kept is None or self.clock() - kept.made < self.max_age or key in self._busy:
                    continue
                busy = self._busy[key] = threading.Event()
            try:
                day: date = key[-1]
                started = self.clock()
                counts = tuple(day_counts(source, day - timedelta(days=1), 3))
                briefs = work_out(source, day_window(day), rule)
                fresh = _Day((counts[0], counts[1], counts[2]), started, briefs)
                with self._lock:
                    self.worked_out += 1
                    if key in self._days:  # not pushed out meanwhile
                        self._days[key] = fresh
                self._store(key, fresh)
            finally:
                with self._lock:
                    if self._busy.get(key) is busy:
                        del self._busy[key]
                busy.set()
            done += 1
        return done

    def clear(self) -> None:
        with self._lock:
            self._days.clear()


def _ident(key: tuple[Any, ...]) -> str:
    """A day's source, table and rule as the store names them: a hash, never the URL."""
    return hashlib.sha256(repr(key[:-1]).encode()).hexdigest()[:32]


def _start(brief: Brief) -> datetime:
    return brief.start


def work_out(source: Source, window: Window, rule: InternalRule) -> list[Brief]:
    """The briefs of the calls that start in ``window``, from the rows ``pbxgate cdr stats``
    reads (:func:`pbxgate.cdr.facts.fetch_facts`: the window and an hour on each side).

    A call of several legs goes through :mod:`pbxgate.cdr.facts` as there; a call of one leg,
    three in four, is read off its row (``facts._facts``'s short path without who answered and
    through what, which a brief does not keep), and a call that starts outside the window is
    not worked out at all."""
    lo, hi = window.start, window.end
    groups = rows_.grouped_rows(source, lo - CALL_MARGIN, hi + CALL_MARGIN)
    intern, direction = sys.intern, rule.direction
    out: list[Brief] = []
    for key, legs in groups.items():
        if len(legs) == 1:
            row = legs[0]
            if not lo <= row[T] < hi:
                continue
            outcome = outcome_alone(row[DISP], row[DCHAN], row[APP])
            talk = row[BILL] if outcome == ANSWERED else 0
            way = direction(row[SRC], row[DST], row[CHAN], row[DCTX])
            out.append(Brief(key, row[T], way, intern(outcome), talk))
        elif lo <= min(row[T] for row in legs) < hi:
            f = rows_._facts(key, legs, rule)
            out.append(Brief(key, f.start, f.direction, intern(f.outcome), f.talk_seconds))
    out.sort(key=_start)
    return out


def day_counts(source: Source, first: date, days: int) -> list[int]:
    """The number of legs that start on each of ``days`` days from ``first``, in one query."""
    layout = source.layout

    def build() -> Any:
        tbl = table(layout.table, column(layout.time_column))
        when = tbl.c[layout.time_column]
        counts = [
            select(func.count())
            .where(and_(when >= bindparam(f"a{i}"), when < bindparam(f"b{i}")))
            .scalar_subquery()
            for i in range(days)
        ]
        return select(*counts)

    stmt = source.cached(("callindex-counts", days), build)
    start = datetime(first.year, first.month, first.day)
    params: dict[str, Any] = {}
    for i in range(days):
        params[f"a{i}"] = _bound(source, start + timedelta(days=i))
        params[f"b{i}"] = _bound(source, start + timedelta(days=i + 1))
    row = next(iter(source.stream(stmt, params)))
    return [int(n or 0) for n in row]


__all__ = ["MAX_AGE", "MAX_DAYS", "Brief", "CallIndex", "DayStore", "day_counts", "work_out"]
