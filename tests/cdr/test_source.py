"""Sources are read-only, time-limited, and pick the faster MySQL driver when it is there."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pbxgate.cdr import api
from pbxgate.cdr import source as source_mod
from pbxgate.cdr.query import Filters
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import open_source, resolve_source
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import Window
from pbxgate.errors import ConfigError, QueryTimeout, SourceError
from tests.cdr.fixture_calls import LEGS
from tests.conftest import require_dsn

HEAVY = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
    "SELECT COUNT(*) FROM n"
)


def settings_for(url: str, timeout: float = 30.0) -> CdrSettings:
    return CdrSettings(query_timeout=timeout, sources={"s": SourceSettings(url=url)})


def test_driverless_mysql_url_gets_an_installed_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_mod.importlib.util, "find_spec", lambda name: None)
    spec = resolve_source(settings_for("mysql://ro@pbx/asteriskcdrdb"), "s")
    assert spec.url.drivername == "mysql+pymysql"
    monkeypatch.setattr(source_mod.importlib.util, "find_spec", lambda name: object())
    spec = resolve_source(settings_for("mariadb://ro@pbx/asteriskcdrdb"), "s")
    assert spec.url.drivername == "mariadb+mysqldb"
    spec = resolve_source(settings_for("mysql+pymysql://ro@pbx/asteriskcdrdb"), "s")
    assert spec.url.drivername == "mysql+pymysql"


def test_password_on_the_command_line_is_refused() -> None:
    with pytest.raises(ConfigError, match="would show in `ps`") as info:
        resolve_source(CdrSettings(), "mysql+pymysql://ro:hunter2@pbx/asteriskcdrdb")
    assert "hunter2" not in str(info.value)


def test_password_in_url_is_moved_out_of_it() -> None:
    spec = resolve_source(settings_for("postgresql+psycopg://u:hunter2@db/cdr"), "s")
    assert spec.url.password is None and spec.password is not None
    assert "hunter2" not in spec.label


def test_sqlite_source_is_opened_read_only(tmp_path: Path) -> None:
    db = tmp_path / "master.db"
    Store.open_sqlite(db).insert(LEGS)
    src = open_source(settings_for(f"sqlite:///{db}"), "s")
    assert src.layout.kind == "freepbx"
    with pytest.raises(Exception, match="readonly"), src.engine.connect() as conn:
        conn.execute(text("DELETE FROM cdr"))
    src.close()


def test_sqlite_query_time_limit(tmp_path: Path) -> None:
    db = tmp_path / "master.db"
    Store.open_sqlite(db).insert(LEGS)
    src = open_source(settings_for(f"sqlite:///{db}", timeout=0.2), "s")
    with pytest.raises(QueryTimeout, match=r"ran past 0\.2 s"):
        list(src.stream(text(HEAVY)))
    src.close()


def test_missing_sqlite_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(settings_for(f"sqlite:///{tmp_path / 'nope.db'}"), "s")


def test_mariadb_session_is_read_only_and_time_limited() -> None:
    dsn = require_dsn("PBXGATE_TEST_MARIADB_DSN")
    writer = create_engine(dsn)
    with writer.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS pbxgate_ro_probe (i INT)"))
    src = open_source(settings_for(dsn, timeout=0.3), "s")
    try:
        with pytest.raises(SourceError, match=r"\(1792\) Cannot execute statement in a READ ONLY"):
            list(src.stream(text("INSERT INTO pbxgate_ro_probe VALUES (1)")))
        with pytest.raises(QueryTimeout, match=r"ran past 0\.3 s"):
            list(src.stream(text("SELECT SLEEP(3)")))
    finally:
        src.close()
        with writer.begin() as conn:
            conn.execute(text("DROP TABLE pbxgate_ro_probe"))
        writer.dispose()


def test_postgresql_session_is_read_only_and_time_limited() -> None:
    dsn = require_dsn("PBXGATE_TEST_POSTGRESQL_DSN")
    src = open_source(settings_for(dsn, timeout=0.3), "s")
    with pytest.raises(SourceError, match="read-only transaction"):
        list(src.stream(text("CREATE TABLE t_ro (i int)")))
    with pytest.raises(QueryTimeout, match=r"ran past 0\.3 s"):
        list(src.stream(text("SELECT pg_sleep(3)")))
    src.close()
    assert make_url(dsn).get_backend_name() == "postgresql"


def _fixture_table(fixtures: Path, section: str) -> tuple[list[str], list[list[str]]]:
    lines = (fixtures / "cdr_samples.txt").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"## {section}"))
    block = []
    for line in lines[start + 1 :]:
        if line.startswith("## ") or not line.strip():
            break
        block.append(line)
    sep = "|" if "|" in block[0] else "\t"
    return block[0].split(sep), [row.split(sep) for row in block[1:]]


def test_cdr_sqlite3_custom_master_db(asterisk_fixtures: Path, tmp_path: Path) -> None:
    """The master.db Asterisk 22's cdr_sqlite3_custom wrote, read as a source file."""
    import sqlite3

    header, rows = _fixture_table(asterisk_fixtures, "cdr_sqlite3_custom")
    db = tmp_path / "master.db"
    con = sqlite3.connect(db)
    cols = ", ".join(f"{c} TEXT" if c != "AcctId" else "AcctId INTEGER PRIMARY KEY" for c in header)
    con.execute(f"CREATE TABLE cdr ({cols})")
    con.executemany(f"INSERT INTO cdr VALUES ({', '.join('?' * len(header))})", rows)
    con.commit()
    con.close()
    src = open_source(CdrSettings(), str(db))
    assert src.layout.kind == "freepbx" and src.layout.group_column == "linkedid"
    window = Window(datetime(2026, 11, 26), datetime(2026, 11, 27))
    (call,) = api.list_calls(src, window, Filters())
    assert (call.src, call.caller_name, call.did, call.outcome) == (
        "84991111111", "Oleg Ivanov", "100", "ANSWERED",
    )  # fmt: skip
    assert (call.key, call.talk_seconds, call.first.amaflags) == (
        "1795696949.0",
        2,
        "DOCUMENTATION",
    )
    src.close()


def test_times_kept_as_unix_seconds(asterisk_fixtures: Path, tmp_path: Path) -> None:
    """The same row with `calldate(int64)` in a `fields=` mapping: Unix seconds, in columns
    that SQLite leaves without a type, read in the PBX's zone."""
    import sqlite3
    from zoneinfo import ZoneInfo

    from pbxgate.cdr.doctor import diagnose

    header, rows = _fixture_table(asterisk_fixtures, "cdr_sqlite3_custom")
    at = header.index("calldate")
    local = datetime.fromisoformat(rows[0][at])
    stored: list[object] = list(rows[0])
    stored[at] = int(local.replace(tzinfo=ZoneInfo("Europe/Moscow")).timestamp())
    db = tmp_path / "master.db"
    con = sqlite3.connect(db)
    con.execute(f"CREATE TABLE cdr ({', '.join(header)})")
    con.execute(f"INSERT INTO cdr VALUES ({', '.join('?' * len(header))})", stored)
    con.commit()
    con.close()
    src = open_source(CdrSettings(timezone="Europe/Moscow"), str(db))
    assert src.layout.epoch_times
    (call,) = api.list_calls(src, Window(local, local + timedelta(seconds=1)), Filters())
    assert call.start == local and call.src == "84991111111"
    assert (
        api.list_calls(src, Window(local + timedelta(seconds=1), local.replace(hour=23)), Filters())
        == []
    )
    assert any("time in calldate (Unix seconds)" in c.detail for c in diagnose(src))
    src.close()


def test_freepbx_row_written_by_adaptive_odbc(asterisk_fixtures: Path) -> None:
    """The row cdr_adaptive_odbc wrote into FreePBX's MariaDB table (amaflags as a number)."""
    dsn = require_dsn("PBXGATE_TEST_MARIADB_DSN")
    header, rows = _fixture_table(asterisk_fixtures, "cdr_adaptive_odbc")
    ints = {"duration", "billsec", "amaflags", "sequence"}
    cols = ", ".join(
        f"{c} DATETIME" if c == "calldate" else f"{c} INT" if c in ints else f"{c} VARCHAR(80)"
        for c in header
    )
    writer = create_engine(dsn)
    with writer.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS cdr_odbc_fixture")
        conn.exec_driver_sql(f"CREATE TABLE cdr_odbc_fixture ({cols})")
        marks = ", ".join(["%s"] * len(header))
        conn.exec_driver_sql(f"INSERT INTO cdr_odbc_fixture VALUES ({marks})", tuple(rows[0]))
    settings = CdrSettings(sources={"f": SourceSettings(url=dsn, table="cdr_odbc_fixture")})
    src = open_source(settings, "f")
    try:
        assert src.layout.amaflags_numeric
        legs = api.list_legs(src, Window(datetime(2026, 11, 26), datetime(2026, 11, 27)), Filters())
        assert [(leg.src, leg.dst, leg.amaflags, leg.linkedid) for leg in legs] == [
            ("84991111111", "100", "DOCUMENTATION", "1795696949.0")
        ]
    finally:
        src.close()
        with writer.begin() as conn:
            conn.exec_driver_sql("DROP TABLE cdr_odbc_fixture")
        writer.dispose()


@pytest.mark.parametrize(
    "table", ['cdr"; DROP TABLE cdr; --', "cdr cdr", "1cdr", "a.b.c", "", "cdr`", "x" * 65]
)
def test_a_table_name_that_is_not_plain_is_refused(table: str) -> None:
    settings = CdrSettings(sources={"s": SourceSettings(url="sqlite:////tmp/x.db", table=table)})
    with pytest.raises(ConfigError, match="is not a plain name"):
        resolve_source(settings, "s")


@pytest.mark.parametrize("table", ["cdr", "asteriskcdrdb.cdr", "e2e_cdr_1a2b", "CDR_2026"])
def test_plain_table_names_are_taken(table: str) -> None:
    settings = CdrSettings(sources={"s": SourceSettings(url="sqlite:////tmp/x.db", table=table)})
    assert resolve_source(settings, "s").table == table


QUIRK_DAY = Window(datetime(2026, 11, 26), datetime(2026, 11, 27))


def _quirk_table(dsn: str, ddl: str, rows: list[str], setup: str = "") -> None:
    writer = create_engine(dsn)
    with writer.begin() as conn:
        if setup:
            conn.exec_driver_sql(setup)
        conn.exec_driver_sql("DROP TABLE IF EXISTS cdr_quirks")
        conn.exec_driver_sql(f"CREATE TABLE cdr_quirks ({ddl})")
        for row in rows:
            conn.exec_driver_sql(f"INSERT INTO cdr_quirks VALUES ({row})")
    writer.dispose()


def _drop_quirks(dsn: str) -> None:
    writer = create_engine(dsn)
    with writer.begin() as conn:
        conn.exec_driver_sql("DROP TABLE cdr_quirks")
    writer.dispose()


def test_float_seconds_and_zero_dates_of_an_older_mariadb_table() -> None:
    """cdr_adaptive_odbc writes fractional seconds into FLOAT columns, and an old NOT NULL
    schema holds a zero date as an unanswered call's answer: stats read the seconds (they read
    0 through PyMySQL) and the zero date as none (it failed the read)."""
    dsn = require_dsn("PBXGATE_TEST_MARIADB_DSN")
    text_cols = "src, dst, dcontext, channel, dstchannel, lastapp, disposition, uniqueid, linkedid"
    ddl = ("`start` DATETIME NOT NULL, `answer` DATETIME NOT NULL, `end` DATETIME NOT NULL, "
           + ", ".join(f"{c} VARCHAR(80)" for c in text_cols.split(", "))
           + ", duration FLOAT, billsec FLOAT")  # fmt: skip
    rows = [
        "'2026-11-26 12:00:00', '2026-11-26 12:00:06', '2026-11-26 12:01:03', '84991111111',"
        " '101', 'from-trunk', 'PJSIP/trunk-1', 'PJSIP/101-2', 'Dial', 'ANSWERED', '1.1',"
        " '1.1', 63.42, 57.1",
        "'2026-11-26 12:10:00', '0000-00-00 00:00:00', '2026-11-26 12:10:20', '84992222222',"
        " '101', 'from-trunk', 'PJSIP/trunk-3', 'PJSIP/101-4', 'Dial', 'NO ANSWER', '2.1',"
        " '2.1', 20.0, 0",
    ]
    _quirk_table(dsn, ddl, rows, setup="SET SESSION sql_mode = ''")
    settings = CdrSettings(sources={"q": SourceSettings(url=dsn, table="cdr_quirks")})
    src = open_source(settings, "q")
    try:
        kpis = api.stats(src, QUIRK_DAY, Filters()).kpis
        assert (kpis.calls, kpis.answered, kpis.talk_seconds) == (2, 1, 57)
        (missed,) = api.missed(src, QUIRK_DAY, Filters()).rows
        assert missed["src"] == "84992222222"
    finally:
        src.close()
        _drop_quirks(dsn)


def test_timestamp_with_time_zone_is_read_in_the_cdr_zone() -> None:
    """Asterisk's cdr_pgsql schema keeps calldate as timestamp with time zone, which psycopg
    hands over zone-aware in the session's zone: read in the CDR's zone, whatever the
    session's (the fast path failed comparing it; the careful one shifted it by the offset)."""
    dsn = require_dsn("PBXGATE_TEST_POSTGRESQL_DSN")
    # the sessions in UTC, whatever the server's own zone: the difference shows plainly
    dsn += ("&" if "?" in dsn else "?") + "options=-c%20TimeZone%3DUTC"
    ddl = ("calldate TIMESTAMP WITH TIME ZONE NOT NULL, src VARCHAR(80), dst VARCHAR(80),"
           " dcontext VARCHAR(80), channel VARCHAR(80), dstchannel VARCHAR(80),"
           " lastapp VARCHAR(80), duration INTEGER, billsec INTEGER, disposition VARCHAR(45),"
           " uniqueid VARCHAR(150), linkedid VARCHAR(150)")  # fmt: skip
    rows = [  # 12:00 and 00:30 in Moscow, written as UTC (the second the day before, in UTC)
        "'2026-11-26 09:00:00+00', '84991111111', '101', 'from-trunk', 'PJSIP/trunk-1',"
        " 'PJSIP/101-2', 'Dial', 63, 57, 'ANSWERED', '1.1', '1.1'",
        "'2026-11-25 21:30:00+00', '84992222222', '101', 'from-trunk', 'PJSIP/trunk-3',"
        " 'PJSIP/101-4', 'Dial', 20, 0, 'NO ANSWER', '2.1', '2.1'",
    ]
    _quirk_table(dsn, ddl, rows)
    settings = CdrSettings(
        timezone="Europe/Moscow", sources={"q": SourceSettings(url=dsn, table="cdr_quirks")}
    )
    src = open_source(settings, "q")
    try:
        kpis = api.stats(src, QUIRK_DAY, Filters()).kpis
        assert (kpis.calls, kpis.answered, kpis.talk_seconds) == (2, 1, 57)
        calls = api.list_calls(src, QUIRK_DAY, Filters())
        # the bounds say their zone too: a naive one was read in the session's (UTC here), and
        # the night's calls fell out of the day
        assert [c.start for c in calls] == [
            datetime(2026, 11, 26, 0, 30),
            datetime(2026, 11, 26, 12),
        ]
    finally:
        src.close()
        _drop_quirks(dsn)
