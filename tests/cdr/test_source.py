"""Sources are read-only, time-limited, and pick the faster MySQL driver when it is there."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from pbxgate.cdr import source as source_mod
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import open_source, resolve_source
from pbxgate.cdr.store import Store
from pbxgate.errors import QueryTimeout, SourceError
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
