"""Cron expressions and the next time one fires, in a time zone, around midnight and DST.

Five fields, as in crontab(5): minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
jan-dec), day of week (0-7 or sun-sat, 0 and 7 both Sunday); each a ``*``, a number, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of these; and the shorthands ``@hourly``,
``@daily`` (``@midnight``), ``@weekly``, ``@monthly``, ``@yearly`` (``@annually``).
Vixie cron's rule for the two day fields: when both are restricted, a day matching either one
fires (crontab(5): "the command will be run when either field matches").

Wall-clock times are read in the schedule's zone. Daylight saving time, as cronie handles it
(cronie ``cron.c``: jobs skipped by a forward jump run right after it; a backward jump does
not run them twice):

* a time that does not exist (02:30 when clocks jump from 02:00 to 03:00) fires at the
  first instant after the jump;
* a time that happens twice (02:30 when clocks go back from 03:00 to 02:00) fires once, at
  its first occurrence.

Everything is pure: :func:`next_fire` takes ``after`` (an aware datetime) and returns an aware
UTC datetime; no clock is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from pbxgate.errors import ConfigError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_SHORTHANDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# (name, lowest, highest, names for values starting at ``lowest`` or 0)
_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
# How far ahead to look before deciding an expression never fires (e.g. "0 0 30 2 *").
_HORIZON_DAYS = 366 * 5


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the set of values each field allows."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        expr = _SHORTHANDS.get(text.strip().lower(), text)
        parts = expr.split()
        if len(parts) != len(_FIELDS):
            raise ConfigError(
                f"cron expression {text!r} needs 5 fields", hint="minute hour day month weekday"
            )
        sets = [_field(p, *spec, text) for p, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text, sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*"
        )

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_month or in_week
        return in_month and in_week

    def wall_times(self, start: datetime) -> list[datetime]:
        """Matching naive wall-clock minutes of ``start``'s day, from ``start`` on."""
        if not self.matches_day(start.date()):
            return []
        out = []
        for hour in sorted(self.hours):
            for minute in sorted(self.minutes):
                moment = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
                if moment >= start.replace(second=0, microsecond=0):
                    out.append(moment)
        return out


def _field(
    text: str, name: str, lo: int, hi: int, names: tuple[str, ...], whole: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = _number(step_text, name, whole, names, lo) if step_text else 1
        if step < 1:
            raise ConfigError(f"cron expression {whole!r}: step 0 in the {name} field")
        if body == "*":
            first, last = lo, hi
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _number(a, name, whole, names, lo), _number(b, name, whole, names, lo)
        else:
            first = _number(body, name, whole, names, lo)
            last = hi if step_text else first
        if not lo <= first <= last <= hi:
            raise ConfigError(f"cron expression {whole!r}: {item!r} is outside {name} {lo}-{hi}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, name: str, whole: str, names: tuple[str, ...], lo: int) -> int:
    word = text.strip().lower()
    if word in names:
        return names.index(word) + (lo if names is _MONTHS else 0)
    if not word.isdigit():
        raise ConfigError(f"cron expression {whole!r}: {text!r} is not a valid {name}")
    return int(word)


def to_utc(wall: datetime, tz: tzinfo) -> datetime:
    """The instant a naive wall-clock time names in ``tz``: the first of two in a backward
    jump, the end of the jump for a time skipped by a forward one."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # Skipped: fold=1 reads it with the offset after the jump, which puts it before the jump
    # instant; the jump itself is the first instant whose wall-clock time is past ``wall``.
    lo = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    hi = first
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).replace(tzinfo=None) >= wall:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def next_fire(cron: Cron, tz: tzinfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` (aware) at which ``cron`` fires in ``tz``."""
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    local = after.astimezone(tz).replace(tzinfo=None)
    # Start an hour early on the wall clock: after a backward jump the local time repeats, and a
    # skipped time's instant lies after its wall-clock value.
    cursor = local - timedelta(hours=3)
    day = cursor.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(_HORIZON_DAYS):
        start = max(day, cursor)
        for wall in cron.wall_times(start):
            moment = to_utc(wall, tz)
            if moment > after:
                return moment
        day += timedelta(days=1)
    raise ConfigError(f"cron expression {cron.text!r} never fires")


__all__ = ["Cron", "next_fire", "to_utc"]
