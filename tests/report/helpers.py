"""Fixed inputs for the report tests: the hand-checked day of tests/cdr and a generated week."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

from pbxgate.cdr.generate import generate
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import group_calls
from pbxgate.cdr.report.build import ReportOptions, assemble
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import Window, day_window
from tests.cdr.fixture_calls import LEGS

DAY = day_window(date(2016, 3, 18))
NOW = datetime(2016, 3, 19, 8, 0)
# A generated week, Monday 2024-03-04 .. Sunday 2024-03-10, and the week before it.
WEEK = Window(datetime(2024, 3, 4), datetime(2024, 3, 11))
WEEK_NOW = datetime(2024, 3, 11, 7, 0)


def day_report(language: str = "ru", **extra: Any) -> dict[str, Any]:
    calls = group_calls(LEGS, InternalRule())
    opts = ReportOptions(period="", language=language, source="fx", **extra)
    return assemble(calls, DAY, opts, NOW)


def week_legs() -> list[Any]:
    return list(generate(date(2024, 2, 26), date(2024, 3, 11), seed=7, calls_per_day=60))


def week_report(language: str = "en") -> dict[str, Any]:
    calls = group_calls(week_legs(), InternalRule())
    opts = ReportOptions(period="week", language=language, source="demo", top=5)
    return assemble(calls, WEEK, opts, WEEK_NOW)


def write_config(tmp: Path, *, smtp: str = "", extra: str = "") -> Path:
    """A config with the fixture day in SQLite as the default source."""
    db = tmp / "fixture.sqlite3"
    if not db.exists():
        Store.open_sqlite(db).insert(LEGS)
    cfg = tmp / "config.toml"
    cfg.write_text(
        f'[cdr]\ntimezone = "Europe/Moscow"\ndefault_source = "fx"\n'
        f'monitor_dir = "{tmp}/mon"\n'
        f'[cdr.sources.fx]\nurl = "sqlite:///{db}"\n'
        f'[report]\nstate = "{tmp}/reports.sqlite3"\n{smtp}\n{extra}',
        encoding="utf-8",
    )
    return cfg
