"""The Today page: today so far against yesterday up to the same time of day, and its chart."""

from __future__ import annotations

import asyncio
from datetime import datetime, time
from pathlib import Path
from typing import Any

from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import group_calls
from pbxgate.cdr.store import Store
from pbxgate.config import Settings
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import week_legs
from tests.web.conftest import Clock, client, log_in, run

NOON = datetime(2024, 3, 6, 12, 0)  # a Wednesday of the generated week


def week_console(tmp_path: Path, now: datetime) -> Any:
    db = tmp_path / "week.sqlite3"
    Store.open_sqlite(db).insert(week_legs())
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[cdr]\ndefault_source = "week"\n[cdr.sources.week]\nurl = "sqlite:///{db}"\n'
        f'[report]\nstate = "{tmp_path}/reports.sqlite3"\n'
        f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n',
        encoding="utf-8",
    )
    settings = Settings.load(cfg)
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", "viewer-pass-1", Role.VIEWER)
    return create_app(settings, users=users, now=lambda: now, clock=Clock())


def test_today_is_compared_with_yesterday_up_to_the_same_time(tmp_path: Path) -> None:
    calls = group_calls(week_legs(), InternalRule())
    today = [c for c in calls if NOON.replace(hour=0) <= c.start < datetime(2024, 3, 7)]
    yesterday = [
        c for c in calls if datetime(2024, 3, 5) <= c.start < datetime.combine(NOON.date(), time())
    ]
    yesterday_by_noon = [c for c in yesterday if c.start.time() < NOON.time()]
    assert 0 < len(yesterday_by_noon) < len(yesterday)  # the two comparisons differ

    async def go() -> dict[str, Any]:
        async with client(week_console(tmp_path, NOON)) as http:
            await log_in(http, "vera", "viewer-pass-1")
            answer: dict[str, Any] = (await http.get("/api/today")).json()
            page = await http.get("/today", headers={"accept-language": "en"})
            assert "by 12:00" in page.text
            return answer

    report = run(go())
    kpis = {k["key"]: k for k in report["kpis"]}
    assert kpis["calls"]["value"] == len(today)
    assert kpis["calls"]["previous"] == len(yesterday_by_noon)
    assert report["previous"]["from"] == "2024-03-05 00:00:00"
    assert report["previous"]["to"] == "2024-03-05 12:00:00"


def test_calls_per_hour_chart_matches_the_table(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], str]:
        async with client(week_console(tmp_path, NOON)) as http:
            await log_in(http, "vera", "viewer-pass-1")
            report = (await http.get("/api/today")).json()
            return report, (await http.get("/today", headers={"accept-language": "en"})).text

    report, page = run(go())
    inbound_by_hour = {row["hour"]: row["total"] for row in report["hourly"]}
    assert sum(inbound_by_hour.values()) > 0
    # one bar per hour with calls, its accessible name giving the hour and the count
    for hour, total in inbound_by_hour.items():
        if total:
            assert f"<title>{hour:02d}:00 — {total}" in page
    assert 'role="img"' in page


def test_every_viewer_shares_one_report_per_language_for_a_while(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from pbxgate.web import app as console_app
    from pbxgate.web import data

    made: list[str] = []
    real = data.today

    def counted(settings: Any, now: datetime, language: str) -> dict[str, Any]:
        made.append(language)
        return real(settings, now, language)

    monkeypatch.setattr(data, "today", counted)
    clock = Clock()
    console = week_console(tmp_path, NOON)
    console.state.clock = clock
    console.state.today = data.Shared(console_app.TODAY_SECONDS, clock)

    async def go() -> list[int]:
        async with client(console) as http:
            await log_in(http, "vera", "viewer-pass-1")
            ru = [http.get("/api/today", headers={"accept-language": "ru"}) for _ in range(8)]
            answers = await asyncio.gather(
                *ru, http.get("/today", headers={"accept-language": "en"})
            )
            assert made.count("ru") == 1 and made.count("en") == 1  # eight asked, one computed
            clock.now += console_app.TODAY_SECONDS + 1
            await http.get("/api/today", headers={"accept-language": "ru"})
            return [a.status_code for a in answers]

    assert run(go()) == [200] * 9
    assert made.count("ru") == 2  # computed again once the shared one was too old
