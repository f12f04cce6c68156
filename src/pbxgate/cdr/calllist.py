"""Pages of calls: filter, count and page the calls of a window without building them all.

``pbxgate cdr calls`` builds every :class:`~pbxgate.cdr.model.Call` of its window; a console page
shows fifty of them, and a month of a busy PBX is 150,000 calls of 210,000 legs. So a page is
found in one of three ways, and only the calls it shows are built:

* **sql**, when no filter needs what a call's legs add up to (the window, number patterns,
  accountcode, extension, queue): the database groups the window's legs by linkedid, keeps a
  group whose first leg starts in the window and, for each leg filter, has a leg that matches it
  (``MAX(CASE WHEN ... THEN 1 ELSE 0 END) = 1``), counts the groups, orders them newest first
  and cuts the page with LIMIT/OFFSET. On MariaDB, whose ``GROUP BY`` on a VARCHAR(255) is
  slow, pbxgate groups (linkedid, start) pairs itself (:func:`_python_groups`).
* **facts**, when one does (direction, outcome, disposition, talk time): the calls' brief facts
  are filtered in Python: kept per day (:mod:`pbxgate.cdr.callindex`, the rules of
  :mod:`pbxgate.cdr.facts`), or, when the leg filters leave at most :data:`FEW` calls (one
  ``SELECT linkedid ... WHERE <filter>`` a filter), those calls alone, built.
* **slow**, for a table without linkedid or a window with legs that have none (an imported
  Master.csv): those legs are joined into calls by channel names in Python
  (:func:`~pbxgate.cdr.callrules.link_by_channels`), so every call is built (:func:`slow_calls`).

All three give the calls, and the order, of :func:`slow_calls` (the tests compare them): newest
first, ties by linkedid, so a page holds the same calls however often it is asked for.

What a caller asks for, and the leg filters the SQL and the Python both apply, are in
:mod:`pbxgate.cdr.callquery`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    LargeBinary,
    String,
    and_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    literal_column,
    select,
    table,
)

from pbxgate.cdr.callquery import (
    OUTCOMES,
    AccountTest,
    CallQuery,
    ExtensionTest,
    LegTest,
    NumberTest,
    QueueTest,
    check,
)
from pbxgate.cdr.model import Call
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import (
    CALL_MARGIN,
    Filters,
    _bound,
    _row_converter,
    fetch_calls,
    group_calls,
    leg_select,
    selected_columns,
)
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window

if TYPE_CHECKING:
    from pbxgate.cdr.callindex import Brief, CallIndex

CHUNK = 500  # calls built at a time for an export; linkedids a query names at most
# Calls the leg filters may leave for their facts to be worked out from them alone.
FEW = 5000
# Dialects whose legs are grouped into calls here rather than by the database (_python_groups).
PYTHON_GROUPING = frozenset({"mysql", "mariadb"})


# -- the answer ----------------------------------------------------------------------------


@dataclass
class CallPage:
    total: int
    page: int
    pages: int
    per_page: int
    calls: list[Call]
    path: str  # sql, facts or slow: how the page was found


def find_page(
    source: Source,
    window: Window,
    query: CallQuery,
    page: int = 1,
    per_page: int = 50,
    index: CallIndex | None = None,
) -> CallPage:
    """Page ``page`` (from 1; past the last page: the last) of the calls that start in
    ``window`` and pass ``query``, newest first, and how many there are in all."""
    check(source, query)
    path = _path(source, window, query)
    if path == "sql":
        total, keys = _sql_page(source, window, query, page, per_page)
        pages, page = _pages(total, page, per_page)
        calls = build_calls(source, window, keys, query.rule)
    elif path == "facts":
        chosen = _fact_keys(source, window, query, index)
        total = len(chosen)
        pages, page = _pages(total, page, per_page)
        shown = chosen[(page - 1) * per_page : page * per_page]
        calls = build_calls(source, window, shown, query.rule)
    else:
        found = slow_calls(source, window, query)
        total = len(found)
        pages, page = _pages(total, page, per_page)
        calls = found[(page - 1) * per_page : page * per_page]
    return CallPage(total, page, pages, per_page, calls, path)


def all_calls(
    source: Source, window: Window, query: CallQuery, index: CallIndex | None = None
) -> tuple[int, Iterator[Call]]:
    """Every call of the window that passes ``query``, in page order, built :data:`CHUNK` at
    a time as the iterator is read (an export), and how many there are."""
    check(source, query)
    path = _path(source, window, query)
    if path == "slow":
        found = slow_calls(source, window, query)
        return len(found), iter(found)
    if path == "sql":
        keys = _sql_keys(source, window, query)
    else:
        keys = _fact_keys(source, window, query, index)

    def chunks() -> Iterator[Call]:
        for at in range(0, len(keys), CHUNK):
            yield from build_calls(source, window, keys[at : at + CHUNK], query.rule)

    return len(keys), chunks()


def slow_calls(source: Source, window: Window, query: CallQuery) -> list[Call]:
    """Every call built, then filtered (what ``pbxgate cdr calls`` does), in page order."""
    check(source, query)
    found = fetch_calls(source, window, Filters(rule=query.rule), also=query.columns())
    chosen = [call for call in found if query.accepts_call(call)]
    chosen.sort(key=_call_order, reverse=True)
    return chosen


def _call_order(call: Call) -> tuple[Any, str]:
    return (call.start, call.key)


def _pages(total: int, page: int, per_page: int) -> tuple[int, int]:
    pages = max(1, -(-total // per_page))
    return pages, min(max(page, 1), pages)


def _path(source: Source, window: Window, query: CallQuery) -> str:
    if not _linked(source, _wide(source, window)):
        return "slow"
    return "facts" if query.call_level else "sql"


def _wide(source: Source, window: Window) -> tuple[Any, Any]:
    """The bounds legs are read within: the window and an hour on each side (as the slow path
    reads them, :data:`~pbxgate.cdr.query.CALL_MARGIN`)."""
    return (_bound(source, window.start - CALL_MARGIN), _bound(source, window.end + CALL_MARGIN))


def _linked(source: Source, wide: tuple[Any, Any]) -> bool:
    """Whether every leg read has a linkedid: two index look-ups (``linkedid = ''`` and
    ``IS NULL`` within the range), not a scan of the window."""
    layout = source.layout
    if not layout.has("linkedid"):
        return False

    def build() -> Any:
        tbl = table(layout.table, column(layout.time_column), column("linkedid"))
        when, link = tbl.c[layout.time_column], tbl.c.linkedid
        span = and_(when >= bindparam("lo"), when < bindparam("hi"))
        return select(
            exists().where(and_(link == "", span)), exists().where(and_(link.is_(None), span))
        )

    stmt = source.cached(("calllist-unlinked",), build)
    row = next(iter(source.stream(stmt, {"lo": wide[0], "hi": wide[1]})))
    return not any(row)


# -- sql -----------------------------------------------------------------------------------


def _grouped(source: Source, tests: Sequence[LegTest]) -> Any:
    """``SELECT linkedid, MIN(t) ... GROUP BY linkedid HAVING <first leg in the window> AND
    <a leg matches each leg filter>`` over the wide window."""
    layout = source.layout
    names = {layout.time_column, "linkedid", *(c for test in tests for c in test.columns)}
    tbl = table(layout.table, *(column(n) for n in sorted(names)))
    when = tbl.c[layout.time_column]
    first = func.min(when)
    having: list[ColumnElement[bool]] = [first >= bindparam("start"), first < bindparam("end")]
    for i, test in enumerate(tests):
        hit = case((test.clause(f"leg{i}", layout.columns), 1), else_=0)
        having.append(func.max(hit) == 1)
    stmt = select(tbl.c.linkedid.label("k"), first.label("s"))
    stmt = stmt.where(when >= bindparam("lo"), when < bindparam("hi")).group_by(tbl.c.linkedid)
    return stmt.having(and_(*having))


def _params(source: Source, window: Window, tests: Sequence[LegTest]) -> dict[str, Any]:
    lo, hi = _wide(source, window)
    params = {"lo": lo, "hi": hi}
    params["start"], params["end"] = _bound(source, window.start), _bound(source, window.end)
    for i, test in enumerate(tests):
        params.update(test.params(f"leg{i}"))
    return params


def _shape(query: CallQuery) -> tuple[Any, ...]:
    """What decides a statement's text (not its values): the key of the compiled cache."""
    return tuple(test.shape for test in query.leg_tests())


def _sql_page(
    source: Source, window: Window, query: CallQuery, page: int, per_page: int
) -> tuple[int, list[str]]:
    """How many calls there are and the linkedids of page ``page`` (the last page if there
    are fewer). Where the database has window functions, the count comes with the page
    (``COUNT(*) OVER ()``): the window's legs are grouped once, not twice."""
    if source.dialect in PYTHON_GROUPING:
        found = _python_groups(source, window, query)
        _, page = _pages(len(found), page, per_page)
        return len(found), [key for _, key in found[(page - 1) * per_page : page * per_page]]
    if _window_functions(source):
        rows = _sql_rows(source, window, query, per_page, (max(page, 1) - 1) * per_page)
        if rows:
            return int(rows[0][2]), [_text(row[0]) for row in rows]
    total = _sql_count(source, window, query)
    _, page = _pages(total, page, per_page)
    rows = _sql_rows(source, window, query, per_page, (page - 1) * per_page)
    return total, [_text(row[0]) for row in rows]


def _window_functions(source: Source) -> bool:
    """SQLite 3.25, MariaDB 10.2, MySQL 8.0 and every PostgreSQL pbxgate runs on have them."""
    dialect = source.engine.dialect
    if source.dialect == "sqlite":
        import sqlite3  # noqa: PLC0415

        return sqlite3.sqlite_version_info >= (3, 25)
    if source.dialect in ("mysql", "mariadb"):
        version = tuple(dialect.server_version_info or ())
        return version >= ((10, 2) if getattr(dialect, "is_mariadb", False) else (8, 0))
    return source.dialect == "postgresql"


def _sql_count(source: Source, window: Window, query: CallQuery) -> int:
    tests = query.leg_tests()

    def build() -> Any:
        return select(func.count()).select_from(_grouped(source, tests).subquery())

    stmt = source.cached(("calllist-count", _shape(query)), build)
    return int(next(iter(source.stream(stmt, _params(source, window, tests))))[0])


def _sql_keys(source: Source, window: Window, query: CallQuery) -> list[str]:
    """The linkedids of all the calls, in page order."""
    if source.dialect in PYTHON_GROUPING:
        return [key for _, key in _python_groups(source, window, query)]
    return [_text(row[0]) for row in _sql_rows(source, window, query, None, 0)]


def _sql_rows(
    source: Source, window: Window, query: CallQuery, limit: int | None, offset: int
) -> list[Any]:
    """``(linkedid, start[, count])`` rows newest first, ties by linkedid compared as bytes
    (the order of Python's ``str``; a collation could put ``.`` and digits otherwise)."""
    tests = query.leg_tests()
    counted = limit is not None and _window_functions(source)

    def build() -> Any:
        stmt = _grouped(source, tests)
        if counted:
            stmt = stmt.add_columns(func.count().over().label("n_calls"))
        key: Any = column("linkedid")
        if source.dialect == "postgresql":
            key = key.collate("C")
        elif source.dialect in ("mysql", "mariadb"):
            key = cast(key, LargeBinary)
        stmt = stmt.order_by(literal_column("s").desc(), key.desc())
        if limit is not None:
            stmt = stmt.limit(bindparam("n", type_=Integer)).offset(bindparam("off", type_=Integer))
        return stmt

    stmt = source.cached(("calllist-keys", _shape(query), limit is not None, counted), build)
    params = _params(source, window, tests)
    if limit is not None:
        params.update(n=limit, off=offset)
    return list(source.stream(stmt, params))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _matching_keys(source: Source, window: Window, query: CallQuery) -> set[str]:
    """The linkedids with a leg in the wide window matching each leg filter (no window test:
    the facts say): ``SELECT linkedid ... WHERE <filter>`` a filter, intersected."""
    layout = source.layout
    keys: set[str] | None = None
    lo, hi = _wide(source, window)
    for test in query.leg_tests():

        def build(test: LegTest = test) -> Any:
            when: Any = column(layout.time_column)
            span = and_(when >= bindparam("lo"), when < bindparam("hi"))
            hit = test.clause("leg", layout.columns)
            # Not DISTINCT: MariaDB would walk the whole linkedid index for it, not the range.
            return select(column("linkedid")).select_from(table(layout.table)).where(span, hit)

        stmt = source.cached(("calllist-match", test.shape), build)
        found = {_text(row[0]) for row in source.stream(stmt, {"lo": lo, "hi": hi,
                                                                **test.params("leg")})}  # fmt: skip
        keys = found if keys is None else keys & found
        if not keys:
            break
    return keys or set()


def _starts(source: Source, window: Window, keys: Sequence[str]) -> list[tuple[Any, str]]:
    """``(start, linkedid)`` of the calls ``keys`` names that start in the window, newest
    first: their legs' first start, looked up by linkedid a chunk at a time."""
    layout = source.layout
    lo, hi = _wide(source, window)
    start, end = _bound(source, window.start), _bound(source, window.end)
    found = []
    for at in range(0, len(keys), CHUNK):
        chunk = keys[at : at + CHUNK]
        size = 1 << (len(chunk) - 1).bit_length()

        def build(size: int = size) -> Any:
            when: Any = column(layout.time_column)
            wanted = column("linkedid").in_([bindparam(f"k{i}") for i in range(size)])
            stmt: Any = select(column("linkedid"), func.min(when))
            stmt = stmt.select_from(table(layout.table))
            stmt = stmt.where(when >= bindparam("lo"), when < bindparam("hi"), wanted)
            return stmt.group_by(column("linkedid"))

        stmt = source.cached(("calllist-starts", size), build)
        params: dict[str, Any] = {"lo": lo, "hi": hi}
        params.update({f"k{i}": chunk[min(i, len(chunk) - 1)] for i in range(size)})
        for key, when in source.stream(stmt, params):
            if when is not None and start <= when < end:
                found.append((when, _text(key)))
    found.sort(reverse=True)
    return found


def _python_groups(source: Source, window: Window, query: CallQuery) -> list[tuple[Any, str]]:
    """``(start, linkedid)`` of the calls, newest first, grouped here rather than by the
    database: each leg of the wide window as (linkedid, start as stored).

    MariaDB groups 200,000 legs by a VARCHAR(255) linkedid in a temporary table on disk
    (a MEMORY table keeps each key at its full 1,020 bytes): 2-3 s for a month, where reading
    the two columns and grouping them in a dict takes 0.8 s. Times come as text (MySQL's
    drivers turn DATETIME into datetime in Python, slowly); text in ``%Y-%m-%d %H:%M:%S`` sorts
    as the times do. Leg filters are the linkedids :func:`_matching_keys` finds; when they
    are at most :data:`FEW`, only those calls' starts are read (:func:`_starts`)."""
    wanted = _matching_keys(source, window, query) if query.leg_tests() else None
    if wanted is not None and len(wanted) <= FEW:
        return _starts(source, window, sorted(wanted))
    layout = source.layout
    as_text = not layout.epoch_times and source.dialect != "sqlite"

    def build() -> Any:
        when: Any = column(layout.time_column)
        shown = cast(when, String) if as_text else when
        stmt = select(column("linkedid"), shown).select_from(table(layout.table))
        return stmt.where(when >= bindparam("lo"), when < bindparam("hi"))

    stmt = source.cached(("calllist-rows", as_text), build)
    lo, hi = _wide(source, window)
    first: dict[str, Any] = {}
    for key, when in source.stream(stmt, {"lo": lo, "hi": hi}):
        if when is None:
            continue
        known = first.get(key)
        if known is None or when < known:
            first[key] = when
    start, end = (_stored(source, m, as_text) for m in (window.start, window.end))
    found = [
        (when, _text(key))
        for key, when in first.items()
        if start <= when < end and (wanted is None or _text(key) in wanted)
    ]
    found.sort(reverse=True)
    return found


def _stored(source: Source, moment: Any, as_text: bool) -> Any:
    value = _bound(source, moment)
    return value.strftime("%Y-%m-%d %H:%M:%S") if as_text and isinstance(value, datetime) else value


# -- facts ---------------------------------------------------------------------------------


def _fact_keys(
    source: Source, window: Window, query: CallQuery, index: CallIndex | None
) -> list[str]:
    """The calls' linkedids in page order, filtered on their brief facts: kept ones, or, when
    the leg filters leave few calls (an extension's missed calls), just those calls built,
    or else every day of the window worked out (and kept)."""
    from pbxgate.cdr.callindex import CallIndex  # noqa: PLC0415

    index = index or CallIndex(max_days=0)
    wanted = _matching_keys(source, window, query) if query.leg_tests() else None
    briefs = index.kept(source, window, query.rule) if index.max_days > 0 else None
    if briefs is None and wanted is not None and len(wanted) <= FEW:
        briefs = _briefs_of(source, window, sorted(wanted), query.rule)
    if briefs is None:
        briefs = index.briefs(source, window, query.rule)
    chosen = [
        (b.start, b.key)
        for b in briefs
        if (wanted is None or b.key in wanted) and query.accepts_facts(b)
    ]
    chosen.sort(reverse=True)
    return [key for _, key in chosen]


def _briefs_of(
    source: Source, window: Window, keys: Sequence[str], rule: InternalRule
) -> list[Brief]:
    """The briefs of the calls ``keys`` names that start in ``window``, from the calls built."""
    from pbxgate.cdr.callindex import Brief  # noqa: PLC0415

    out = []
    for at in range(0, len(keys), CHUNK):
        for call in build_calls(source, window, keys[at : at + CHUNK], rule):
            if window.start <= call.start < window.end:
                out.append(Brief(call.key, call.start, call.direction, call.outcome,
                                 call.talk_seconds))  # fmt: skip
    return out


# -- building the calls of a page ----------------------------------------------------------


def build_calls(
    source: Source, window: Window, keys: Sequence[str], rule: InternalRule
) -> list[Call]:
    """The calls ``keys`` names (linkedids), in that order, with all their legs in the wide
    window, as the slow path builds them."""
    if not keys:
        return []
    layout = source.layout
    names = selected_columns(layout)
    fields = ["start" if n == layout.time_column else n for n in names]
    size = 1 << (len(keys) - 1).bit_length()  # a few statement shapes, not one per count

    def build() -> Any:
        wanted = column("linkedid").in_([bindparam(f"k{i}") for i in range(size)])
        # No ORDER BY: with one, SQLite walks the start-time index over the whole window
        # instead of looking the linkedids up (70 ms a chunk instead of 2); group_calls orders.
        return leg_select(layout, None, names).where(wanted).order_by(None)

    stmt = source.cached(("calllist-legs", tuple(names), size), build)
    convert = source.remember(("convert", *fields), lambda: _row_converter(fields, layout, source))
    lo, hi = _wide(source, window)
    params: dict[str, Any] = {"lo": lo, "hi": hi}
    params.update({f"k{i}": keys[min(i, len(keys) - 1)] for i in range(size)})
    legs = [convert(row) for row in source.stream(stmt, params)]
    found = {call.key: call for call in group_calls(legs, rule)}
    return [found[key] for key in keys if key in found]


__all__ = [
    "CHUNK",
    "OUTCOMES",
    "AccountTest",
    "CallPage",
    "CallQuery",
    "ExtensionTest",
    "NumberTest",
    "QueueTest",
    "all_calls",
    "build_calls",
    "check",
    "find_page",
    "slow_calls",
]
