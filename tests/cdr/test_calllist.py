"""Pages of calls (pbxgate.cdr.calllist) against the slow path, on every backend.

The slow path builds every call and filters it as ``pbxgate cdr calls`` does; the fast paths
(SQL grouping, per-day call facts) must give the same calls in the same order, page after page:
on the hand-checked fixture day with a few extra calls (the same second, linkedids a collation
would order otherwise, accountcodes, a Queue() leg), and on generated traffic.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from pbxgate.cdr import calllist
from pbxgate.cdr.api import call_row
from pbxgate.cdr.callindex import CallIndex, DayStore
from pbxgate.cdr.calllist import all_calls, find_page, slow_calls
from pbxgate.cdr.callquery import CallQuery
from pbxgate.cdr.generate import generate
from pbxgate.cdr.model import Leg
from pbxgate.cdr.query import Filters, NumberFilter
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import Source, open_source
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import Window
from pbxgate.errors import InputError
from tests.cdr.fixture_calls import DAY, LEGS
from tests.conftest import require_dsn

WHOLE_DAY = Window(DAY, DAY + timedelta(days=1))
TIE = DAY + timedelta(hours=15)


def _extra() -> list[Leg]:
    """Five calls starting in the same second, linkedids that sort differently as bytes and in
    a case-insensitive or natural collation; accountcodes; a queue leg whose dst a transfer
    rewrote (the queue only in lastdata)."""
    legs = []
    for i, link in enumerate(("b-1", "A.2", "a.1", "10", "9")):
        leg = Leg(start=TIE, src="84990000000", dst="400", duration=30,
                  billsec=20 if i % 2 else 0, disposition="ANSWERED" if i % 2 else "NO ANSWER",
                  dcontext="from-trunk", channel=f"SIP/trunk-{link}",
                  dstchannel=f"Local/10{i}@from-queue-0000000{i};1", lastapp="Queue",
                  lastdata="400,t,,,300", uniqueid=f"u{link}", linkedid=link,
                  accountcode="sales" if i < 2 else "", did="4996491913",
                  end=TIE + timedelta(seconds=30))  # fmt: skip
        legs.append(leg)
    moved = dataclasses.replace(legs[0], dst="106", start=TIE + timedelta(seconds=40),
                                sequence=1, accountcode="")  # fmt: skip
    return [*legs, moved]


QUERIES = [
    CallQuery(),
    CallQuery(filters=Filters(direction="inbound")),
    CallQuery(filters=Filters(direction="outbound")),
    CallQuery(filters=Filters(numbers=(NumberFilter("src", "8499*"),))),
    CallQuery(filters=Filters(numbers=(NumberFilter("dst", "*5"), NumberFilter("did", "4996*")))),
    CallQuery(filters=Filters(dispositions=("NO ANSWER", "BUSY"))),
    CallQuery(filters=Filters(min_billsec=60)),
    CallQuery(filters=Filters(accountcode="sales")),
    CallQuery(outcome="answered"),
    CallQuery(outcome="missed"),
    CallQuery(outcome="unanswered", extension="105"),
    CallQuery(extension="104"),
    CallQuery(queue="400"),
    CallQuery(queue="110", filters=Filters(direction="inbound")),
]


def _store(url: str, legs: list[Leg]) -> tuple[str, str]:
    name = f"cdr_pages_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    store = Store(engine, name)
    store.ensure_schema()
    store.insert(legs)
    engine.dispose()
    return url, name


def _open(url: str, name: str) -> Source:
    settings = CdrSettings(
        timezone="Europe/Moscow",
        sources={"t": SourceSettings(url=url, table=name, timezone="Europe/Moscow")},
    )
    return open_source(settings, "t")


@pytest.fixture(autouse=True, params=["by the database", "by pbxgate", "by pbxgate, many"])
def grouping(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Legs are grouped into calls in SQL, or here (as for MariaDB), and leg filters leave
    few calls (looked up by linkedid) or many (FEW = 0): every way, on every backend."""
    every = frozenset({"sqlite", "postgresql", "mysql", "mariadb"})
    chosen = frozenset() if request.param == "by the database" else every
    monkeypatch.setattr(calllist, "PYTHON_GROUPING", chosen)
    if request.param.endswith("many"):
        monkeypatch.setattr(calllist, "FEW", 0)
    return str(request.param)


@pytest.fixture(scope="module", params=["sqlite", "mariadb", "postgresql"])
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'cdr.db'}"
    else:
        url = require_dsn(f"PBXGATE_TEST_{backend.upper()}_DSN")
    url, name = _store(url, [*LEGS, *_extra()])
    src = _open(url, name)
    try:
        yield src
    finally:
        src.close()
        if backend != "sqlite":
            engine = create_engine(url)
            with engine.begin() as conn:
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            engine.dispose()


def _paged(src: Source, window: Window, query: CallQuery, per_page: int,
           index: CallIndex | None = None) -> tuple[list[str], set[str]]:  # fmt: skip
    keys: list[str] = []
    paths = set()
    page = find_page(src, window, query, 1, per_page, index)
    for number in range(1, page.pages + 1):
        page = find_page(src, window, query, number, per_page, index)
        assert page.page == number and page.total >= len(page.calls)
        keys += [call.key for call in page.calls]
        paths.add(page.path)
    return keys, paths


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: repr(q)[:60])
def test_pages_are_the_slow_path_cut_into_pages(source: Source, query: CallQuery) -> None:
    slow = slow_calls(source, WHOLE_DAY, query)
    keys, paths = _paged(source, WHOLE_DAY, query, 3, CallIndex())
    assert keys == [call.key for call in slow]
    assert paths == {"facts" if query.call_level else "sql"}
    first = find_page(source, WHOLE_DAY, query, 1, 4, CallIndex())
    assert [call_row(c) for c in first.calls] == [call_row(c) for c in slow[:4]]
    assert first.total == len(slow)
    total, rows = all_calls(source, WHOLE_DAY, query, CallIndex())
    assert total == len(slow) and [c.key for c in rows] == [c.key for c in slow]


def test_ties_in_one_second_are_ordered_by_linkedid_as_python_orders_them(
    source: Source,
) -> None:
    window = Window(TIE, TIE + timedelta(minutes=1))
    keys, paths = _paged(source, window, CallQuery(), 2)
    assert keys == ["b-1", "a.1", "A.2", "9", "10"] and paths == {"sql"}


def test_extension_and_queue_read_what_asterisk_writes(source: Source) -> None:
    ext = find_page(source, WHOLE_DAY, CallQuery(extension="104"), 1, 50)
    assert [c.key for c in ext.calls] == ["9", "link-H", "link-G", "link-B"]  # Local/104@...
    queued = find_page(source, WHOLE_DAY, CallQuery(queue="400"), 1, 50)
    assert {c.key for c in queued.calls} == {"b-1", "A.2", "a.1", "10", "9"}
    sales = find_page(source, WHOLE_DAY, CallQuery(filters=Filters(accountcode="sales")), 1, 9)
    assert [c.key for c in sales.calls] == ["b-1", "A.2"]


def test_a_page_past_the_last_is_the_last(source: Source) -> None:
    page = find_page(source, WHOLE_DAY, CallQuery(), 99, 4)
    assert (page.page, page.pages, page.total) == (4, 4, 15)
    assert [c.key for c in page.calls] == ["link-C", "link-B", "link-A"]


def test_generated_traffic_agrees_across_paths(tmp_path: Path) -> None:
    db = tmp_path / "week.sqlite3"
    Store.open_sqlite(db).insert(generate(date(2024, 3, 4), date(2024, 3, 10), seed=7))
    src = _open(f"sqlite:///{db}", "cdr")
    week = Window(datetime(2024, 3, 4), datetime(2024, 3, 11))
    index = CallIndex()
    try:
        for query in [*QUERIES, CallQuery(outcome="missed", queue="600")]:
            slow = slow_calls(src, week, query)
            page = find_page(src, week, query, 2, 25, index)
            shown = slow[(page.page - 1) * 25 : page.page * 25]
            assert [call_row(c) for c in page.calls] == [call_row(c) for c in shown]
            assert page.total == len(slow) and page.page == (2 if len(slow) > 25 else 1)
        assert len(slow_calls(src, week, CallQuery())) > 900
        worked = index.worked_out
        assert worked == 7  # each day of the week worked out once, then kept
    finally:
        src.close()


def test_a_table_without_linkedids_takes_the_slow_path(tmp_path: Path) -> None:
    """Master.csv carries no linkedid: calls are joined by channel names, in Python."""
    db = tmp_path / "master.sqlite3"
    Store.open_sqlite(db).insert(dataclasses.replace(leg, linkedid="") for leg in LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    try:
        for query in (CallQuery(), CallQuery(outcome="missed"), CallQuery(extension="105")):
            page = find_page(src, WHOLE_DAY, query, 1, 50, CallIndex())
            assert page.path == "slow"
            assert [c.key for c in page.calls] == [c.key for c in slow_calls(src, WHOLE_DAY, query)]
        assert find_page(src, WHOLE_DAY, CallQuery(), 1, 50).total == 10
    finally:
        src.close()


def test_a_kept_day_is_worked_out_again_when_its_legs_change(tmp_path: Path) -> None:
    db = tmp_path / "live.sqlite3"
    store = Store.open_sqlite(db)
    store.insert(LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    clock = [0.0]
    index = CallIndex(max_age=600, clock=lambda: clock[0])
    inbound = CallQuery(filters=Filters(direction="inbound"))
    try:
        assert find_page(src, WHOLE_DAY, inbound, 1, 50, index).total == 8
        assert find_page(src, WHOLE_DAY, inbound, 1, 50, index).total == 8
        assert index.worked_out == 1
        late = dataclasses.replace(LEGS[0], start=DAY + timedelta(hours=20), uniqueid="late.1",
                                   linkedid="late.1", end=None, answer=None)  # fmt: skip
        store.insert([late])
        assert find_page(src, WHOLE_DAY, inbound, 1, 50, index).total == 9
        assert index.worked_out == 2
        clock[0] += 601  # kept too long: worked out again though nothing was counted new
        find_page(src, WHOLE_DAY, inbound, 1, 50, index)
        assert index.worked_out == 3
    finally:
        src.close()


def test_with_a_keeper_a_stale_day_is_served_and_worked_out_again_behind(tmp_path: Path) -> None:
    """The console's keeper refreshes stale days (a row replaced in place keeps the count), so a
    reader never waits for them; the next reader sees what the keeper found."""
    db = tmp_path / "live.sqlite3"
    store = Store.open_sqlite(db)
    store.insert(LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    clock = [0.0]
    index = CallIndex(max_age=600, clock=lambda: clock[0])
    index.ahead = True
    answered = CallQuery(outcome="answered")
    rule = answered.rule
    try:
        before = find_page(src, WHOLE_DAY, answered, 1, 50, index).total
        assert index.refresh_stale(src, rule) == 0  # nothing stale yet
        with store.engine.begin() as db_:  # a row replaced in place: the count stays the same
            db_.exec_driver_sql(
                "UPDATE cdr SET disposition = 'NO ANSWER', billsec = 0 "
                "WHERE disposition = 'ANSWERED'"
            )
        clock[0] += 601
        assert find_page(src, WHOLE_DAY, answered, 1, 50, index).total == before  # served kept
        assert index.worked_out == 1
        assert index.refresh_stale(src, rule, stop=lambda: True) == 0  # stopped before a day
        assert index.refresh_stale(src, rule) == 1
        assert find_page(src, WHOLE_DAY, answered, 1, 50, index).total == 0 < before
        assert index.worked_out == 2
        assert index.refresh_stale(src, rule) == 0  # fresh again
    finally:
        src.close()


def _stored_days(path: Path) -> int:
    with sqlite3.connect(path) as store:
        return int(store.execute("SELECT COUNT(*) FROM call_days").fetchone()[0])


def test_days_worked_out_are_read_back_from_the_store_by_a_new_index(tmp_path: Path) -> None:
    """A restarted console reads last month's calls back instead of working them out again;
    the store names no source, holds nothing of a day whose legs changed, and is the owner's."""
    db = tmp_path / "week.sqlite3"
    cdr = Store.open_sqlite(db)
    cdr.insert(generate(date(2024, 3, 4), date(2024, 3, 10), seed=7))
    src = _open(f"sqlite:///{db}", "cdr")
    week = Window(datetime(2024, 3, 4), datetime(2024, 3, 11))
    path = tmp_path / "web" / "callindex.sqlite3"
    missed = CallQuery(outcome="missed")
    try:
        first = CallIndex(store=DayStore(path))
        expected = find_page(src, week, missed, 1, 50, first)
        assert (first.worked_out, first.loaded) == (7, 0)
        assert path.stat().st_mode & 0o777 == 0o600
        assert b"week.sqlite3" not in path.read_bytes() and str(tmp_path).encode() not in (
            path.read_bytes()
        )
        again = CallIndex(store=DayStore(path))
        found = find_page(src, week, missed, 1, 50, again)
        assert (again.worked_out, again.loaded) == (0, 7)
        assert [call_row(c) for c in found.calls] == [call_row(c) for c in expected.calls]
        assert found.total == expected.total
        # a late call on Wednesday: that day and the two beside it (whose legs it reads) are
        # worked out again, the other four read back
        late = dataclasses.replace(LEGS[0], start=datetime(2024, 3, 6, 20), uniqueid="late.1",
                                   linkedid="late.1", end=None, answer=None)  # fmt: skip
        cdr.insert([late])
        third = CallIndex(store=DayStore(path))
        find_page(src, week, missed, 1, 50, third)
        assert (third.worked_out, third.loaded) == (3, 4)
    finally:
        src.close()


def test_a_day_read_back_keeps_its_age_and_today_is_not_stored(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"
    Store.open_sqlite(db).insert(LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    path = tmp_path / "callindex.sqlite3"
    wall = [DAY.timestamp() + 3 * 86400]  # three days later
    inbound = CallQuery(filters=Filters(direction="inbound"))
    try:
        index = CallIndex(max_age=600, store=DayStore(path), wall=lambda: wall[0])
        find_page(src, WHOLE_DAY, inbound, 1, 50, index)
        wall[0] += 100  # a restart 100 s later: read back
        soon = CallIndex(max_age=600, store=DayStore(path), wall=lambda: wall[0])
        find_page(src, WHOLE_DAY, inbound, 1, 50, soon)
        assert (soon.loaded, soon.worked_out) == (1, 0)
        wall[0] += 600  # 700 s after it was worked out: older than max_age, so worked out again
        later = CallIndex(max_age=600, store=DayStore(path), wall=lambda: wall[0])
        find_page(src, WHOLE_DAY, inbound, 1, 50, later)
        assert (later.loaded, later.worked_out) == (0, 1)
        wall[0] += 3600  # an hour later, with a keeper (the console's): served, redone behind
        kept = CallIndex(max_age=600, store=DayStore(path), wall=lambda: wall[0])
        kept.ahead = True
        assert find_page(src, WHOLE_DAY, inbound, 1, 50, kept).total == 8
        assert (kept.loaded, kept.worked_out) == (1, 0)
        assert kept.refresh_stale(src, inbound.rule) == 1
        with sqlite3.connect(path) as store:
            store.execute("UPDATE call_days SET briefs = x'00'")  # damaged
        damaged = CallIndex(max_age=600, store=DayStore(path), wall=lambda: wall[0])
        assert find_page(src, WHOLE_DAY, inbound, 1, 50, damaged).total == 8
        assert (damaged.loaded, damaged.worked_out) == (0, 1)
        # on the day itself (and the day after) nothing is written: its counts change all day
        path.unlink()
        wall[0] = DAY.timestamp() + 3600
        CallIndex(store=DayStore(path), wall=lambda: wall[0]).briefs(src, WHOLE_DAY, inbound.rule)
        assert _stored_days(path) == 0
        # "today" is where the days are counted, whatever the server's own zone says
        index = CallIndex(store=DayStore(path), today=lambda: DAY.date() + timedelta(days=1))
        index.briefs(src, WHOLE_DAY, inbound.rule)
        assert _stored_days(path) == 0
        CallIndex(store=DayStore(path), today=lambda: DAY.date() + timedelta(days=2)).briefs(
            src, WHOLE_DAY, inbound.rule
        )
        assert _stored_days(path) == 1
    finally:
        src.close()


def test_a_day_of_calls_without_linkedids_stays_off_the_disk(tmp_path: Path) -> None:
    """Such calls are keyed by their start and a channel name, which may carry a number."""
    db = tmp_path / "master.sqlite3"
    Store.open_sqlite(db).insert(dataclasses.replace(leg, linkedid="", uniqueid="") for leg in LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    path = tmp_path / "callindex.sqlite3"
    try:
        briefs = CallIndex(store=DayStore(path)).briefs(src, WHOLE_DAY, CallQuery().rule)
        assert briefs and all("/" in b.key for b in briefs)
        assert _stored_days(path) == 0
    finally:
        src.close()


def test_the_index_keeps_at_most_max_days(tmp_path: Path) -> None:
    db = tmp_path / "cdr.sqlite3"
    Store.open_sqlite(db).insert(LEGS)
    src = _open(f"sqlite:///{db}", "cdr")
    index = CallIndex(max_days=2)
    three = Window(DAY - timedelta(days=1), DAY + timedelta(days=2))
    try:
        find_page(src, three, CallQuery(outcome="missed"), 1, 50, index)
        find_page(src, three, CallQuery(outcome="missed"), 1, 50, index)
        assert index.worked_out == 6  # three days, never all three kept
    finally:
        src.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"outcome": "ANSWERED"}, "unknown outcome 'ANSWERED'"),
        ({"extension": "10%"}, "not an extension's number"),
        ({"queue": "4 00"}, "not a queue's"),
        ({"queue": "support"}, "not a queue's"),
    ],
)
def test_bad_filters_are_one_line(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        CallQuery(**kwargs)  # type: ignore[arg-type]
