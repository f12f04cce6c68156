"""Select legs and calls: filters, index-friendly SQL, grouping legs into calls.

The window is always the bound range ``time_column >= :lo AND time_column < :hi`` so that the
``calldate`` index does the narrowing (reference cdr.md §7). In leg view every filter is pushed
into SQL; the article's direction test becomes ``LENGTH(src) > 3``. In call view the legs of the
window are fetched (with a margin on both sides, so that a call's later legs are not cut off),
grouped by ``linkedid`` and filtered as calls: one call is one row.
"""

from __future__ import annotations

import calendar
import dataclasses
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.sql import Select

from pbxgate.cdr.callrules import link_by_channels
from pbxgate.cdr.model import (
    INBOUND,
    INTERNAL,
    MAX_NUMBER,
    OUTBOUND,
    Call,
    Leg,
    whole_number,
)
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.schema import AMAFLAGS, LEG_COLUMNS, Layout
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window, host_zone
from pbxgate.errors import InputError

NUMBER_COLUMNS = ("src", "dst", "did", "cnum")
DIRECTIONS = (INBOUND, OUTBOUND, INTERNAL)
# How far before and after the window legs are read to complete the calls inside it.
CALL_MARGIN = timedelta(hours=1)

_LEG_FIELDS = frozenset(Leg.__slots__)
_INT_FIELDS = frozenset({"duration", "billsec", "sequence"})


@dataclass(frozen=True)
class NumberFilter:
    """``113`` exact, ``8499*`` prefix, ``*1111`` suffix, ``*111*`` contains."""

    column: str
    pattern: str

    def __post_init__(self) -> None:
        if self.column not in NUMBER_COLUMNS:
            raise InputError(f"cannot filter on {self.column!r}; use one of {NUMBER_COLUMNS}")
        if not self.value:
            raise InputError(f"the {self.column} filter {self.pattern!r} has no digits")

    @property
    def mode(self) -> str:
        lead, trail = self.pattern.startswith("*"), self.pattern.endswith("*")
        if lead and trail and len(self.pattern) > 1:
            return "contains"
        return "suffix" if lead else "prefix" if trail else "exact"

    @property
    def value(self) -> str:
        return self.pattern.strip("*")

    def matches(self, number: str) -> bool:
        mode, value = self.mode, self.value
        if mode == "exact":
            return number == value
        if mode == "prefix":
            return number.startswith(value)
        if mode == "suffix":
            return number.endswith(value)
        return value in number

    def sql_value(self) -> str:
        """What the SQL compares with: the number itself, or a LIKE pattern."""
        mode, value = self.mode, _escape_like(self.value)
        if mode == "exact":
            return self.value
        return {"prefix": f"{value}%", "suffix": f"%{value}", "contains": f"%{value}%"}[mode]

    def clause(self, col: Any, name: str) -> ColumnElement[bool]:
        param: Any = bindparam(name)
        if self.mode == "exact":
            return col == param  # type: ignore[no-any-return]
        return col.like(param, escape="\\")  # type: ignore[no-any-return]


def _escape_like(text: str) -> str:
    return re.sub(r"([%_\\])", r"\\\1", text)


@dataclass(frozen=True)
class Filters:
    direction: str | None = None
    numbers: tuple[NumberFilter, ...] = ()
    dispositions: tuple[str, ...] = ()
    min_billsec: int | None = None
    accountcode: str | None = None
    rule: InternalRule = field(default_factory=InternalRule)

    def __post_init__(self) -> None:
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise InputError(f"unknown direction {self.direction!r}")

    def leg_direction(self, leg: Leg) -> str:
        return direction_of(leg.src, leg.dst, self.rule, leg.channel, leg.dcontext)

    def accepts_leg(self, leg: Leg) -> bool:
        if self.direction and self.leg_direction(leg) != self.direction:
            return False
        if self.dispositions and leg.disposition not in self.dispositions:
            return False
        if self.min_billsec is not None and leg.billsec < self.min_billsec:
            return False
        if self.accountcode is not None and leg.accountcode != self.accountcode:
            return False
        return all(f.matches(getattr(leg, f.column)) for f in self.numbers)

    def columns(self) -> frozenset[str]:
        """The leg columns these filters read."""
        cols = {nf.column for nf in self.numbers}
        if self.direction:
            cols |= {"src", "dst"}
        if self.dispositions:
            cols.add("disposition")
        if self.min_billsec is not None:
            cols.add("billsec")
        if self.accountcode is not None:
            cols.add("accountcode")
        return frozenset(cols)

    @property
    def empty(self) -> bool:
        return not (
            self.direction or self.numbers or self.dispositions or self.accountcode is not None
        ) and (self.min_billsec is None)

    @property
    def call_level(self) -> bool:
        """Whether every filter can be decided from call facts (no per-leg number tests)."""
        return not self.numbers and self.accountcode is None

    def accepts_facts(self, call: Any) -> bool:
        """For filters where :attr:`call_level` holds, on a Call or CallFacts."""
        if self.direction and call.direction != self.direction:
            return False
        if self.dispositions and call.outcome not in self.dispositions:
            return False
        return self.min_billsec is None or call.talk_seconds >= self.min_billsec

    def accepts_call(self, call: Call) -> bool:
        if self.direction and call.direction != self.direction:
            return False
        if self.dispositions and call.outcome not in self.dispositions:
            return False
        if self.min_billsec is not None and call.talk_seconds < self.min_billsec:
            return False
        if self.accountcode is not None and all(
            leg.accountcode != self.accountcode for leg in call.legs
        ):
            return False
        return all(
            any(f.matches(getattr(leg, f.column)) for leg in call.legs) for f in self.numbers
        )


def check_columns(layout: Layout, filters: Filters) -> None:
    """Refuse a filter on a column the table does not have (it would match nothing)."""
    for col in sorted(filters.columns()):
        if not layout.has(col):
            raise InputError(f"this CDR table has no {col} column to filter on")


def direction_of(
    src: str, dst: str, rule: InternalRule, channel: str = "", context: str = ""
) -> str:
    """Inbound when the caller is external (the article's test), outbound when the dialled
    number is external, internal otherwise; a caller with no number is placed by the channel
    and context (:meth:`InternalRule.direction`)."""
    return rule.direction(src, dst, channel, context)


# What call-level KPIs need: fewer columns cross the wire for a month of stats.
LEAN_COLUMNS = frozenset(
    {
        "src",
        "dst",
        "duration",
        "billsec",
        "disposition",
        "did",
        "uniqueid",
        "linkedid",
        "sequence",
        "cnam",
        "channel",
        "dstchannel",
        "dcontext",
        "lastapp",
    }
)  # fmt: skip  (channel: the call key when a Master.csv had no uniqueid, see Leg.call_key;
#  dstchannel and dcontext: who answered, and a withheld caller's direction, callrules.py;
#  lastapp: a caller who waited in a queue for nobody, callrules.outcome_alone)


def selected_columns(
    layout: Layout, *, lean: bool = False, also: frozenset[str] = frozenset()
) -> list[str]:
    """The leg columns this table has, start time first (only :data:`LEAN_COLUMNS` and
    ``also`` if lean)."""
    keep = LEAN_COLUMNS | also
    names = [layout.time_column]
    names += [
        c for c in LEG_COLUMNS if c != "calldate" and layout.has(c) and (not lean or c in keep)
    ]
    if layout.time_column == "start":
        names += [c for c in ("answer", "end") if layout.has(c)]
    elif layout.has("answer") and layout.has("end"):
        names += ["answer", "end"]
    return names


def leg_select(
    layout: Layout, filters: Filters | None = None, columns: list[str] | None = None
) -> Select[Any]:
    """``SELECT <columns> FROM cdr WHERE t >= :lo AND t < :hi [AND filters] ORDER BY t``.

    Every value is a named bind parameter (:func:`leg_params` gives them), so one statement
    serves every window and every number of the same shape, compiled once per source."""
    names = columns or selected_columns(layout)
    tbl = table(layout.table, *(column(n) for n in set(names) | {layout.time_column}))
    when = tbl.c[layout.time_column]
    clauses: list[ColumnElement[bool]] = [when >= bindparam("lo"), when < bindparam("hi")]
    if filters is not None:
        clauses += _pushdown(filters, layout)
    return select(*(tbl.c[n] for n in names)).where(and_(*clauses)).order_by(when)


def leg_params(
    lo: datetime | str | int, hi: datetime | str | int, filters: Filters | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"lo": lo, "hi": hi}
    if filters is not None:
        params.update({f"disp{i}": d for i, d in enumerate(filters.dispositions)})
        params.update({f"num{i}": nf.sql_value() for i, nf in enumerate(filters.numbers)})
        if filters.min_billsec is not None:
            params["min_billsec"] = filters.min_billsec
        if filters.accountcode is not None:
            params["accountcode"] = filters.accountcode
    return params


def shape_of(filters: Filters | None) -> tuple[Any, ...]:
    """What decides the statement's text (not its values): the key of the compiled cache."""
    if filters is None:
        return ()
    return (
        filters.direction if filters.rule.sql_pushdown else None,
        filters.rule.max_digits,
        len(filters.dispositions),
        filters.min_billsec is not None,
        filters.accountcode is not None,
        tuple((nf.column, nf.mode) for nf in filters.numbers),
    )


def _pushdown(filters: Filters, layout: Layout) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    col = column
    if filters.direction and filters.rule.sql_pushdown:
        n = filters.rule.max_digits
        src_ext = func.length(col("src")) > literal_column(str(int(n)))
        dst_ext = func.length(col("dst")) > literal_column(str(int(n)))
        if filters.direction == INBOUND:
            out.append(src_ext)
        elif filters.direction == OUTBOUND:
            out.append(and_(~src_ext, dst_ext))
        else:
            out.append(and_(~src_ext, ~dst_ext))
    if filters.dispositions:
        out.append(
            or_(
                *(
                    col("disposition") == bindparam(f"disp{i}")
                    for i in range(len(filters.dispositions))
                )
            )
        )
    if filters.min_billsec is not None:
        out.append(col("billsec") >= bindparam("min_billsec"))
    if filters.accountcode is not None:
        out.append(col("accountcode") == bindparam("accountcode"))
    check_columns(layout, filters)
    for i, nf in enumerate(filters.numbers):
        out.append(nf.clause(col(nf.column), f"num{i}"))
    return out


def _bound(source: Source, moment: datetime) -> datetime | str | int:
    value = source.zones.to_source(moment)
    if source.layout.epoch_times:  # Unix seconds; the source zone is then UTC
        return calendar.timegm(value.timetuple())
    if source.layout.aware_times:  # a zone-aware column: the bound says its zone (a naive
        # one would be read in the database session's zone)
        return value.replace(tzinfo=source.zones.source or host_zone())
    # SQLite keeps DATETIME as text; compare text with text so the calldate index is used.
    return value.strftime("%Y-%m-%d %H:%M:%S") if source.dialect == "sqlite" else value


def fetch_legs(
    source: Source,
    window: Window,
    filters: Filters | None = None,
    *,
    margin: timedelta = timedelta(),
    lean: bool = False,
    columns: list[str] | None = None,
    also: frozenset[str] = frozenset(),
) -> Iterator[Leg]:
    """The legs that start in ``window`` (widened by ``margin``), in start order; with
    ``columns`` only those (and the start time) are read, the rest stay empty. ``also`` adds
    columns to a lean read (those that call filters look at)."""
    layout = source.layout
    names = selected_columns(layout, lean=lean, also=also)
    if columns is not None:
        wanted = {layout.time_column if c == "calldate" else c for c in columns}
        if filters is not None and not filters.rule.sql_pushdown:  # checked here, not in SQL
            wanted |= filters.columns()
        names = [n for n in names if n in wanted or n == layout.time_column]
    fields = ["start" if n == layout.time_column else n for n in names]
    lo, hi = _bound(source, window.start - margin), _bound(source, window.end + margin)
    key = ("legs", tuple(names), shape_of(filters))
    stmt = source.cached(key, lambda: leg_select(layout, filters, names))
    convert = source.remember(("convert", *fields), lambda: _row_converter(fields, layout, source))
    for row in source.stream(stmt, leg_params(lo, hi, filters)):
        leg = convert(row)
        if filters is None or filters.rule.sql_pushdown or filters.accepts_leg(leg):
            yield leg


# MySQL's zero dates (an unanswered call's answer in an old NOT NULL schema), and
# cdr_adaptive_odbc's stand-in for none
ZERO_DATES = ("0000-00-00", "1000-01-01")


def _row_converter(fields: list[str], layout: Layout, source: Source) -> Any:
    """A function from a result row to a :class:`Leg`, specialised once per query: each
    column gets its own small converter, so the per-row loop does no name tests."""
    zones = source.zones

    def when(value: Any) -> datetime | None:
        moment = _as_datetime(value, zones.source)
        return moment if moment is None or zones.same else zones.to_display(moment)

    def text(value: Any) -> str:
        return value if type(value) is str else "" if value is None else str(value)

    def number(value: Any) -> int:
        return value if type(value) is int and 0 <= value <= MAX_NUMBER else whole_number(value)

    def ama(value: Any) -> str:
        return AMAFLAGS.get(int(value or 0), str(value))

    plan: list[tuple[int, str, Any]] = []
    for i, name in enumerate(fields):
        if name not in _LEG_FIELDS:
            continue
        if name in ("start", "answer", "end"):
            plan.append((i, name, when))
        elif name in _INT_FIELDS:
            plan.append((i, name, number))
        elif name == "amaflags" and layout.amaflags_numeric:
            plan.append((i, name, ama))
        else:
            plan.append((i, name, text))

    defaults = {f.name: f.default for f in dataclasses.fields(Leg)}
    slots = [next(((i, conv) for i, n, conv in plan if n == name), None) for name in defaults]
    fixed: list[Any] = [defaults[name] for name in defaults]
    where = [(k, i, conv) for k, got in enumerate(slots) if got is not None for i, conv in [got]]

    def convert(row: Any) -> Leg:
        values = fixed.copy()
        for k, i, conv in where:
            values[k] = conv(row[i])
        return Leg(*values)

    # Fast path: MariaDB and PostgreSQL already hand back str, int and datetime. One C-level
    # itemgetter puts a row in Leg's field order; only a row holding a NULL (Asterisk's own
    # schema allows them) takes the careful path above.
    fast = (
        source.dialect != "sqlite"
        and zones.same
        and not layout.aware_times
        and not (layout.amaflags_numeric and "amaflags" in fields)
    )
    if not fast:
        return convert
    width = len(fields)
    pad = tuple(fixed)
    pick = itemgetter(*(got[0] if got else width + k for k, got in enumerate(slots)))

    def quick(row: Any) -> Leg:
        if None in row:
            return convert(row)
        return Leg(*pick(tuple(row) + pad))

    return quick


def _as_datetime(value: Any, zone: tzinfo | None = None) -> datetime | None:
    """A stored time as a naive datetime in the CDR's zone: a zone-aware one (PostgreSQL's
    ``timestamp with time zone``, as Asterisk's cdr_pgsql schema has it, comes in the
    session's zone) is converted to ``zone`` (the machine's when None) first; MySQL's zero
    dates are None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None and not value.microsecond:
            return value
        local: datetime = value if value.tzinfo is None else value.astimezone(zone)
        return local.replace(tzinfo=None, microsecond=0)
    text = str(value)
    if text.startswith(ZERO_DATES):
        return None
    if text.isdigit():  # cdr_sqlite3_custom start(int64): Unix seconds, read as UTC
        return datetime.fromtimestamp(int(text), UTC).replace(tzinfo=None)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:  # "... +03:00": the text of an aware time
        moment = moment.astimezone(zone)
    return moment.replace(tzinfo=None, microsecond=0)


def group_calls(legs: Iterable[Leg], rule: InternalRule) -> list[Call]:
    """Group legs into calls by linkedid (uniqueid on old tables), in order of first leg."""
    calls: dict[str, Call] = {}
    for leg in legs:
        key = leg.call_key
        call = calls.get(key)
        if call is None:
            calls[key] = Call(key, [leg])
        else:
            call.legs.append(leg)
    if any(not leg.linkedid for call in calls.values() for leg in call.legs):
        groups = link_by_channels(
            {k: c.legs for k, c in calls.items()}, _channel, _dstchannel, _span, _linked
        )
        calls = {k: calls[k] if len(legs) == len(calls[k].legs) else Call(k, legs)
                 for k, legs in groups.items()}  # fmt: skip
    result = list(calls.values())
    for call in result:
        if len(call.legs) > 1:
            call.legs.sort(key=_leg_order)
        call.rule = rule
        first = call.first
        call.direction = direction_of(first.src, first.dst, rule, first.channel, first.dcontext)
    result.sort(key=_call_order)  # nearly free: legs come from the query in start order
    return result


def _channel(leg: Leg) -> str:
    return leg.channel


def _dstchannel(leg: Leg) -> str:
    return leg.dstchannel


def _span(leg: Leg) -> tuple[datetime, datetime]:
    return (leg.start, leg.finish)


def _linked(leg: Leg) -> bool:
    return bool(leg.linkedid)


def _call_order(call: Call) -> datetime:
    return call.start


def _leg_order(leg: Leg) -> tuple[datetime, int]:
    return (leg.start, leg.sequence)


def fetch_calls(
    source: Source,
    window: Window,
    filters: Filters | None = None,
    *,
    margin: timedelta = CALL_MARGIN,
    lean: bool = False,
    also: frozenset[str] = frozenset(),
) -> list[Call]:
    """Calls whose first leg starts in ``window``, with all their legs, filtered as calls."""
    rule = filters.rule if filters else InternalRule()
    if filters is not None:
        also = also | filters.columns()
        check_columns(source.layout, filters)
    legs = fetch_legs(source, window, None, margin=margin, lean=lean, also=also)
    calls = group_calls(legs, rule)
    lo, hi = window.start, window.end
    if filters is None or filters.empty:
        return [c for c in calls if lo <= c.start < hi]
    return [c for c in calls if lo <= c.start < hi and filters.accepts_call(c)]


__all__ = [
    "CALL_MARGIN",
    "DIRECTIONS",
    "NUMBER_COLUMNS",
    "Filters",
    "NumberFilter",
    "direction_of",
    "fetch_calls",
    "fetch_legs",
    "group_calls",
    "leg_params",
    "leg_select",
    "selected_columns",
]
