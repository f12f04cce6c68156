"""One contract, every backend and layout: SQLite always; MariaDB and PostgreSQL with their DSN.

The same small day of calls (tests/cdr/fixture_calls.py, KPIs computed by hand) is loaded into
FreePBX's layout, Asterisk's own (start/answer/end), an old install without linkedid, and
pbxgate's store, and every question must get the same answer from each.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine

from pbxgate.cdr import api
from pbxgate.cdr.model import ANSWERED
from pbxgate.cdr.query import Filters, NumberFilter
from pbxgate.cdr.schema import LEG_COLUMNS
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import Source, open_source
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import Window
from pbxgate.errors import InputError
from tests.cdr.fixture_calls import DAY, EXPECTED, LEGS, REC_A
from tests.conftest import require_dsn

ASTERISK_COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "userfield", "uniqueid", "linkedid", "peeraccount", "sequence",
)  # fmt: skip
CLASSIC_COLUMNS = LEG_COLUMNS[:20]  # the article's table: no linkedid
INT_COLUMNS = {"duration", "billsec", "sequence"}
WHOLE_DAY = Window(DAY, DAY + timedelta(days=1))


def _table(meta: MetaData, name: str, layout: str) -> Table:
    names = {
        "freepbx": LEG_COLUMNS,
        "asterisk": ASTERISK_COLUMNS,
        "classic": CLASSIC_COLUMNS,
        "epoch": ASTERISK_COLUMNS,
    }
    cols: list[Column[Any]] = []
    for col in names[layout]:
        if layout == "epoch" and col in ("start", "answer", "end"):  # start(int64) and so on
            cols.append(Column(col, Integer, nullable=col != "start"))
        elif col in ("calldate", "start", "answer", "end"):
            cols.append(Column(col, DateTime, nullable=col in ("answer", "end")))
        elif col in INT_COLUMNS or (col == "amaflags" and layout in ("freepbx", "classic")):
            cols.append(Column(col, Integer, nullable=False))
        else:
            cols.append(Column(col, String(255), nullable=False))
    return Table(name, meta, *cols)


def _row(leg: Any, layout: str, table: Table) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for col in table.c.keys():  # noqa: SIM118  (a Table.c is not a dict)
        if col in ("calldate", "start"):
            row[col] = leg.start
        elif col in ("answer", "end"):
            row[col] = leg.answered_at if col == "answer" else leg.finish
        elif col == "amaflags":
            row[col] = 3 if layout in ("freepbx", "classic") else "DOCUMENTATION"
        else:
            row[col] = getattr(leg, col, "")
    if layout == "epoch":  # Unix seconds of the PBX's local times
        for col in ("start", "answer", "end"):
            if row[col] is not None:
                row[col] = int(row[col].replace(tzinfo=ZoneInfo("Europe/Moscow")).timestamp())
    return row


def _load(url: str, layout: str) -> tuple[str, str]:
    name = f"cdr_{layout}_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    if layout == "pbxgate":
        store = Store(engine, name)
        store.ensure_schema()
        store.insert(LEGS)
    else:
        meta = MetaData()
        table = _table(meta, name, layout)
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [_row(leg, layout, table) for leg in LEGS])
    engine.dispose()
    return url, name


def _drop(url: str, name: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


BACKENDS = ["sqlite", "mariadb", "postgresql"]
LAYOUTS = ["freepbx", "asterisk", "classic", "pbxgate"]
# cdr_sqlite3_custom with `start(int64)`: Asterisk's columns, times as Unix seconds.
EPOCH = [("sqlite", "epoch")]


@pytest.fixture(
    scope="module",
    params=[(b, lay) for b in BACKENDS for lay in LAYOUTS] + EPOCH,
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    backend, layout = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('contract') / 'cdr.db'}"
    else:
        url = require_dsn(f"PBXGATE_TEST_{backend.upper()}_DSN")
    url, name = _load(url, layout)
    settings = CdrSettings(
        timezone="Europe/Moscow",
        sources={"t": SourceSettings(url=url, table=name, timezone="Europe/Moscow")},
    )
    src = open_source(settings, "t")
    try:
        yield src
    finally:
        src.close()
        if backend != "sqlite":
            _drop(url, name)


def test_stats_match_hand_computed_kpis(source: Source) -> None:
    result = api.stats(source, WHOLE_DAY, Filters())
    assert result.kpis.as_dict() == EXPECTED


def test_one_call_is_one_row(source: Source) -> None:
    calls = api.list_calls(source, WHOLE_DAY, Filters())
    assert len(calls) == 10
    by_src = {c.start.strftime("%H:%M"): c for c in calls}
    group = by_src["12:01"]
    assert (len(group.legs), group.answered_by, group.outcome) == (2, "104", ANSWERED)
    assert group.ring_seconds == 14 and group.talk_seconds == 67
    transfer = by_src["13:30"]
    # talk: from the first answer (13:30:10) to the end (13:32:20), the transfer included
    assert (len(transfer.legs), transfer.talk_seconds, transfer.duration) == (2, 130, 140)
    assert (transfer.answered_by, transfer.talked) == ("104", ("104", "105"))
    assert by_src["12:05"].outcome == "NO ANSWER"
    if source.layout.has("recordingfile"):
        assert by_src["12:00"].recordings == [REC_A]


def test_the_articles_query_in_leg_view(source: Source) -> None:
    window = Window(datetime(2016, 3, 18, 12, 0), datetime(2016, 3, 18, 12, 10))
    legs = api.list_legs(source, window, Filters(direction="inbound"))
    assert [(leg.dst, leg.src) for leg in legs] == [
        ("113", "84991111111"),
        ("104", "89162222222"),
        ("105", "89162222222"),
        ("110", "84993333333"),
        ("111", "84993333333"),
    ]


@pytest.mark.parametrize(
    ("filters", "starts"),
    [
        (
            Filters(numbers=(NumberFilter("src", "8499*"),)),
            ["12:00", "12:05", "13:10", "13:30", "14:00", "14:10"],
        ),
        (Filters(numbers=(NumberFilter("dst", "104"),)), ["12:01", "13:10", "13:30"]),
        (Filters(numbers=(NumberFilter("src", "*2222*"),)), ["12:01"]),
        (Filters(numbers=(NumberFilter("src", "*8888"),)), ["14:00", "14:10"]),
        (Filters(dispositions=("BUSY",)), ["13:00"]),
        (Filters(min_billsec=100), ["12:00", "13:30"]),
        (Filters(direction="outbound"), ["12:20"]),
        (Filters(direction="internal"), ["12:30"]),
    ],
    ids=[
        "prefix",
        "exact-any-leg",
        "contains",
        "suffix",
        "outcome",
        "billsec",
        "outbound",
        "internal",
    ],
)
def test_call_filters(source: Source, filters: Filters, starts: list[str]) -> None:
    calls = api.list_calls(source, WHOLE_DAY, filters)
    assert [c.start.strftime("%H:%M") for c in calls] == starts


def test_missed_calls_and_what_followed(source: Source) -> None:
    result = api.missed(source, WHOLE_DAY, Filters())
    got = [
        (r["start"].strftime("%H:%M"), r["resolution"], r["after_seconds"], r["by"])
        for r in result.rows
    ]
    assert got == [
        ("12:05", "called back", 884, "113"),
        ("13:00", "not yet", None, ""),
        ("13:10", "not yet", None, ""),
        ("14:00", "got through", 580, "114"),
    ]


def test_breakdown_by_hour(source: Source) -> None:
    result = api.stats(source, WHOLE_DAY, Filters(), by="hour")
    assert [(k, v.calls, v.answered) for k, v in result.groups] == [
        ("12:00", 5, 4),
        ("13:00", 3, 1),
        ("14:00", 2, 1),
    ]


def test_inbound_only_stats(source: Source) -> None:
    kpis = api.stats(source, WHOLE_DAY, Filters(direction="inbound")).kpis
    assert (kpis.calls, kpis.answered, kpis.missed) == (8, 4, 4)
    assert kpis.asr == 50.0


def test_stats_with_leg_level_filters(source: Source) -> None:
    kpis = api.stats(source, WHOLE_DAY, Filters(numbers=(NumberFilter("src", "8499*"),))).kpis
    assert (kpis.calls, kpis.answered, kpis.missed) == (6, 3, 3)


def test_call_facts_and_calls_agree_on_generated_traffic(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from pbxgate.cdr.facts import fetch_facts, in_window
    from pbxgate.cdr.generate import generate
    from pbxgate.cdr.kpi import breakdown, compute
    from pbxgate.cdr.numbers import InternalRule
    from pbxgate.cdr.query import fetch_calls

    db = tmp_path_factory.mktemp("agree") / "gen.sqlite3"
    Store.open_sqlite(db).insert(generate(DAY.date(), (DAY + timedelta(days=2)).date(), seed=9))
    src = open_source(CdrSettings(sources={"g": SourceSettings(url=f"sqlite:///{db}")}), "g")
    window = Window(DAY, DAY + timedelta(days=3))
    calls = fetch_calls(src, window, Filters())
    facts = in_window(fetch_facts(src, window, InternalRule(), margin=timedelta(hours=1)), window)
    assert len(calls) == len(facts) > 150
    assert compute(calls, window) == compute(facts, window)
    for by in ("did", "extension", "disposition", "direction"):
        assert breakdown(calls, by) == breakdown(facts, by)
    src.close()


def test_call_filters_on_columns_a_lean_read_skips(source: Source) -> None:
    """cnum and accountcode are not among the columns KPIs read: asking for them adds them."""
    by_cnum = Filters(numbers=(NumberFilter("cnum", "8499*"),))
    if not source.layout.has("cnum"):
        with pytest.raises(InputError, match="no cnum column"):
            api.stats(source, WHOLE_DAY, by_cnum)
        return
    assert api.stats(source, WHOLE_DAY, by_cnum).kpis.calls == 6
    assert api.stats(source, WHOLE_DAY, Filters(accountcode="")).kpis.calls == 10
    assert api.stats(source, WHOLE_DAY, Filters(accountcode="acme")).kpis.calls == 0
    assert len(api.missed(source, WHOLE_DAY, by_cnum).rows) == 3


def test_peak_counts_a_long_call_that_began_hours_before_the_window(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from pbxgate.cdr.model import Leg

    start = datetime(2016, 3, 18, 7, 30)
    legs = [
        Leg(start=start, src="84991111111", dst="113", duration=3 * 3600, billsec=3 * 3600 - 5,
            disposition="ANSWERED", uniqueid="1.1", linkedid="1.1"),
        Leg(start=datetime(2016, 3, 18, 10, 0), src="84992222222", dst="114", duration=600,
            billsec=590, disposition="ANSWERED", uniqueid="2.1", linkedid="2.1"),
        # begun 1.5 h before the window: between the calls stats keeps and the long ones
        Leg(start=datetime(2016, 3, 18, 8, 30), src="84993333333", dst="115", duration=7200,
            billsec=7190, disposition="ANSWERED", uniqueid="3.1", linkedid="3.1"),
    ]  # fmt: skip
    db = tmp_path_factory.mktemp("long") / "long.sqlite3"
    Store.open_sqlite(db).insert(legs)
    src = open_source(CdrSettings(sources={"l": SourceSettings(url=f"sqlite:///{db}")}), "l")
    kpis = api.stats(
        src, Window(datetime(2016, 3, 18, 10), datetime(2016, 3, 18, 11)), Filters()
    ).kpis
    assert (kpis.calls, kpis.peak_concurrent) == (1, 3)
    src.close()
