"""Time windows and time zones.

``calldate`` is the PBX's local wall-clock time unless ``usegmtime=yes`` (reference cdr.md §2,
§5.2). A window the user asks for (``--today``, ``--from``) is read in the configured zone, and is
half-open, ``[start, end)``, so that a query is the index-friendly
``calldate >= ? AND calldate < ?``. All datetimes here are naive wall-clock values in a named zone;
:class:`Zones` converts between the zone the source stores and the zone the user reads.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pbxgate.errors import ConfigError, InputError


def zone(name: str) -> tzinfo | None:
    """The named zone; ``""`` means this host's zone (returned as None: naive local time)."""
    if not name:
        return None
    if name.upper() in ("UTC", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe", a folder
        raise ConfigError(
            f"unknown time zone {name!r}", hint="use an IANA name like Europe/Moscow"
        ) from exc


def host_zone() -> tzinfo:
    """This host's zone with its rules (a fixed offset taken at start would be an hour off
    after the next change of summer time): ``$TZ``, else what ``/etc/localtime`` is, else the
    offset of now."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = os.readlink("/etc/localtime")
        candidates.append(target.partition("zoneinfo/")[2])
    for name in candidates:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
            if name:
                return ZoneInfo(name)
    with contextlib.suppress(OSError, ValueError), open("/etc/localtime", "rb") as fh:
        return ZoneInfo.from_file(fh, key="localtime")
    return datetime.now().astimezone().tzinfo or UTC


def now_in(tz: tzinfo | None) -> datetime:
    """Current wall-clock time in ``tz`` (naive)."""
    return datetime.now(tz).replace(tzinfo=None) if tz else datetime.now()


@dataclass(frozen=True)
class Zones:
    """The zone values are stored in (``source``) and the zone they are shown in (``display``)."""

    source: tzinfo | None
    display: tzinfo | None
    same: bool = field(init=False)  # computed once: asked for every row of an import

    def __post_init__(self) -> None:
        same = self.source is self.display or self.source == self.display
        object.__setattr__(self, "same", same)

    def to_source(self, value: datetime) -> datetime:
        return value if self.same else _convert(value, self.display, self.source)

    def to_display(self, value: datetime) -> datetime:
        return value if self.same else _convert(value, self.source, self.display)


def _convert(value: datetime, src: tzinfo | None, dst: tzinfo | None) -> datetime:
    aware = value.replace(tzinfo=src) if src else value.astimezone()
    return (
        aware.astimezone(dst).replace(tzinfo=None)
        if dst
        else aware.astimezone().replace(tzinfo=None)
    )


@dataclass(frozen=True)
class Window:
    """A half-open interval of wall-clock time in the display zone."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InputError(f"the window ends ({self.end}) before it starts ({self.start})")

    def __contains__(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def previous(self) -> Window:
        """The window of the same length just before this one (for period-over-period)."""
        return Window(self.start - (self.end - self.start), self.start)

    def describe(self, between: str = " .. ") -> str:
        """As people say the window, and as ``--from/--to`` take it: whole days with the last
        one included (``2016-03-18``, ``2016-03-01 .. 2016-03-31``; ``between`` the two days),
        else with times, the end not included (``2016-03-18 00:00 .. 2016-03-18 12:00``)."""
        days = whole_days(self.start, self.end)
        if days is not None:
            first, last = days
            return f"{first}" if first == last else f"{first}{between}{last}"
        return f"{self.start:%Y-%m-%d %H:%M} .. {self.end:%Y-%m-%d %H:%M}"


def whole_days(start: datetime, end: datetime) -> tuple[date, date] | None:
    """The first and the last day of ``[start, end)`` when it is whole days (both ends at
    midnight), else None: how a window is said (:meth:`Window.describe`) and named."""
    if start.time() == end.time() == time(0):
        return start.date(), max(start, end - timedelta(days=1)).date()
    return None


def file_stem(start: datetime, end: datetime) -> str:
    """The name of a file of the calls in ``[start, end)``, as people say the window: the last
    day included (``calls-2016-03-18``, ``calls-2016-03-01..2016-03-31``), with times when the
    window is not whole days (``calls-2016-03-18_1200..2016-03-18_1210``, the end exclusive as
    ``--to`` is). The Calls page's exports and the report's files (download, mail) use it."""
    days = whole_days(start, end)
    if days is not None:
        first, last = days
        return f"calls-{first}" if first == last else f"calls-{first}..{last}"
    return f"calls-{start:%Y-%m-%d_%H%M}..{end:%Y-%m-%d_%H%M}"


# The moments a window may name. Nothing in a CDR is older than Asterisk (1999) or centuries
# ahead, and the margin keeps every later step inside datetime's years 1..9999: the previous
# period (a window's length back), the call-back horizon, a query's margins. Without it
# ``--to 9999-12-31`` is an OverflowError deep in a query instead of one line here.
EARLIEST = datetime(1900, 1, 1)
LATEST = datetime(3000, 1, 1)

# Relative days in the words admins type them, English and Russian.
_DAYS = {"today": 0, "сегодня": 0, "yesterday": 1, "вчера": 1, "позавчера": 2}
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def parse_moment(text: str, *, end: bool = False, today: date | None = None) -> datetime:
    """``2016-03-18``, ``2016-03-18 12:00``, ``2016-03-18T12:00:36``, as Russian admins write
    them ``18.03.2016`` and ``18.03.2016 12:00``, and ``today``/``сегодня``,
    ``yesterday``/``вчера``. A bare day as ``--to`` means the end of that day (so
    ``--from 2016-03-18 --to 2016-03-18`` is one whole day)."""
    raw = text.strip()
    word = raw.lower()
    if word in _DAYS and today is not None:
        day = today - timedelta(days=_DAYS[word])
        return _day(day, end)
    try:
        dotted = _DOTTED.fullmatch(raw)
        if dotted:
            d, m, y, hh, mm, ss = dotted.groups()
            if hh is None:
                return _day(date(int(y), int(m), int(d)), end)
            return datetime(int(y), int(m), int(d), int(hh), int(mm), int(ss or 0))
        if len(raw) == 10:
            return _day(date.fromisoformat(raw), end)
        return datetime.fromisoformat(raw.replace("/", "-")).replace(tzinfo=None)
    except OverflowError:  # the day after 9999-12-31
        raise _out_of_range(text) from None
    except ValueError:
        raise InputError(
            f"cannot read {text!r} as a date or time",
            hint="use YYYY-MM-DD, DD.MM.YYYY, either with HH:MM, or today / yesterday / вчера",
        ) from None


def _out_of_range(text: str) -> InputError:
    return InputError(
        f"{text.strip()!r} is out of range: use a moment from {EARLIEST:%Y-%m-%d} "
        f"to {LATEST - timedelta(days=1):%Y-%m-%d}"
    )


def _day(day: date, end: bool) -> datetime:
    moment = datetime(day.year, day.month, day.day)
    return moment + timedelta(days=1) if end else moment


def day_window(day: date) -> Window:
    start = datetime(day.year, day.month, day.day)
    return Window(start, start + timedelta(days=1))


def resolve_window(
    *,
    start: str | None = None,
    end: str | None = None,
    period: str | None = None,
    days: int | None = None,
    now: datetime,
) -> Window:
    """The window the options describe; ``period`` is today, yesterday, week or month;
    ``days``, the last that many days, today included (as ``cdr generate --days``)."""
    today = now.date()
    if days is not None:
        if days < 1:
            raise InputError(f"--days {days}: a window of at least one day")
        first = today - timedelta(days=days - 1)
        return Window(datetime(first.year, first.month, first.day), day_window(today).end)
    if period == "today":
        return day_window(today)
    if period == "yesterday":
        return day_window(today - timedelta(days=1))
    if period == "week":  # the last seven whole days, ending with yesterday
        stop = datetime(today.year, today.month, today.day)
        return Window(stop - timedelta(days=7), stop)
    if period == "month":  # the previous calendar month
        first = today.replace(day=1)
        prev = (first - timedelta(days=1)).replace(day=1)
        return Window(datetime(prev.year, prev.month, 1), datetime(first.year, first.month, 1))
    if start is None and end is None:
        return day_window(today)
    return _between(start, end, now)


def _between(start: str | None, end: str | None, now: datetime) -> Window:
    """``--from``/``--to``: from the start of today and up to ``now`` by default."""
    today = now.date()
    lo = parse_moment(start, today=today) if start else datetime(today.year, today.month, today.day)
    hi = parse_moment(end, end=True, today=today) if end else now
    for text, moment in ((start, lo), (end, hi)):
        if not EARLIEST <= moment <= LATEST:
            raise _out_of_range(text or f"{moment:%Y-%m-%d %H:%M}")
    if lo == hi:
        raise InputError(
            f"--from and --to are the same moment ({lo:%Y-%m-%d %H:%M}): the window is empty",
            hint="give a later --to, or a day without a time for the whole day",
        )
    return Window(lo, hi)


def limit_days(window: Window, days: int) -> Window:
    """``window``, unless it is longer than ``days`` days (a year of per-day charts and rows
    is plenty for a page: more only ties a worker up)."""
    if window.end - window.start > timedelta(days=days):
        raise InputError(
            f"the window {window.describe()} is longer than {days} days "
            "(a year is plenty): narrow from/to"
        )
    return window


__all__ = [
    "EARLIEST",
    "LATEST",
    "Window",
    "Zones",
    "day_window",
    "file_stem",
    "limit_days",
    "now_in",
    "parse_moment",
    "resolve_window",
    "whole_days",
    "zone",
]
