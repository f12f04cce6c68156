"""The Today page: today so far against yesterday up to the same time of day, and its chart."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path
from typing import Any

import pytest

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


def _counted(monkeypatch: Any) -> list[str]:
    from pbxgate.web import data

    made: list[str] = []
    real = data.today

    def counted(settings: Any, now: datetime, language: str) -> dict[str, Any]:
        made.append(language)
        return real(settings, now, language)

    monkeypatch.setattr(data, "today", counted)
    return made


def test_every_viewer_shares_one_report_kept_up_to_date_behind_them(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from pbxgate.web import app as console_app

    made = _counted(monkeypatch)
    console = week_console(tmp_path, NOON)
    clock: Clock = console.state.clock
    kept = console.state.today

    async def go() -> None:
        async with client(console) as http:
            await log_in(http, "vera", "viewer-pass-1")

            async def calls(lang: str = "ru") -> int:  # today's calls, as the page says
                answer = await http.get("/api/today", headers={"accept-language": lang})
                assert answer.status_code == 200 and answer.json()["kpis"][0]["key"] == "calls"
                return int(answer.json()["kpis"][0]["value"])

            ru = [calls("ru") for _ in range(8)]
            answers = await asyncio.gather(*ru, calls("en"))
            assert made.count("ru") == 1 and made.count("en") == 1  # nine asked, two computed
            assert len(set(answers)) == 1
            # Past TODAY_SECONDS the kept report is answered at once and checked behind the
            # reader: no new call, so nothing is computed again.
            clock.now += console_app.TODAY_SECONDS + 1
            assert await calls() == answers[0]
            kept.wait()
            assert made.count("ru") == 1
            # A call lands: the next check computes the report again, still behind the reader.
            late = replace(week_legs()[0], start=NOON.replace(hour=11), answer=None, end=None,
                           uniqueid="late.1", linkedid="late.1")  # fmt: skip
            Store.open_sqlite(tmp_path / "week.sqlite3").insert([late])
            clock.now += console_app.TODAY_SECONDS + 1
            assert await calls() == answers[0]  # the kept one, at once
            kept.wait()
            assert made.count("ru") == 2
            assert await calls() == answers[0] + 1
            # Too old for a reader (the keeper stopped, say): the reader computes it again.
            clock.now += console_app.TODAY_LIMIT + 1
            assert await calls() == answers[0] + 1
            assert made.count("ru") == 3

    run(go())


def test_the_keeper_has_today_ready_before_anyone_asks(tmp_path: Path, monkeypatch: Any) -> None:
    from pbxgate.web import app as console_app

    made = _counted(monkeypatch)
    console = week_console(tmp_path, NOON)

    async def started() -> list[bool]:
        ready = []
        async with client(console) as http, console.router.lifespan_context(console):
            for _ in range(1000):
                ready.append((await http.get("/health")).json()["ready"])
                if ready[-1]:
                    break
                await asyncio.sleep(0.01)
            await log_in(http, "vera", "viewer-pass-1")
            assert (await http.get("/today")).status_code == 200
        return ready

    ready = run(started())
    assert ready[-1] is True  # ready once Today and the index are
    assert made == ["ru"]  # the keeper's, before the viewer came; the viewer got it kept
    assert console_app.TODAY_MAX_AGE > console_app.TODAY_LIMIT > console_app.TODAY_SECONDS


def test_the_keeper_says_once_that_it_cannot_keep_today_and_once_that_it_can_again(
    tmp_path: Path, monkeypatch: Any, caplog: Any
) -> None:
    import threading

    from pbxgate.web import app as console_app

    monkeypatch.setattr(console_app, "TODAY_SECONDS", 0.01)
    console = week_console(tmp_path, NOON)
    kept = console.state.today
    db, away = tmp_path / "week.sqlite3", tmp_path / "away.sqlite3"
    kept.get("ru")  # read: the keeper keeps it
    db.rename(away)  # the database is gone
    tries: list[int] = []
    real = kept.refresh

    def counted(key: Any) -> bool:
        tries.append(1)
        if len(tries) == 4:
            away.rename(db)  # and back
        if len(tries) >= 6:
            stop.set()
        return bool(real(key))

    kept.refresh = counted
    stop = threading.Event()
    with caplog.at_level("INFO", logger="pbxgate.web.app"):
        console_app.keep_today(console, stop)
    said = [r.getMessage() for r in caplog.records]
    assert len(tries) == 6
    assert said == [
        f"console: Today's report is not kept up to date: SQLite file {db} does not exist",
        "console: Today's report is kept up to date again",
    ]


def test_a_report_nobody_reads_is_no_longer_kept_up_to_date() -> None:
    from pbxgate.web.data import Kept

    clock = Clock()
    made: list[str] = []

    def compute(key: Any) -> int:
        made.append(str(key))
        return len(made)

    kept = Kept(compute, lambda key: 1, fresh=20, limit=120, max_age=300, clock=clock)
    assert kept.get("ru") == 1 and kept.get("en") == 2
    clock.now += 100
    assert kept.keys(3600) == ["ru", "en"]
    clock.now += 1700
    assert kept.get("en") == 3  # past the limit: computed for its reader
    assert kept.keys(3600) == ["en"]  # "ru", past the limit and not read, has left
    assert kept.refresh("en") is False  # nothing changed and younger than max_age
    clock.now += 300
    assert kept.refresh("en") is True and made == ["ru", "en", "en", "en"]
    clock.now += 3600
    assert kept.keys(3600) == []  # "en" was read an hour ago: the keeper leaves it


def test_at_most_max_keys_are_kept_the_unread_ones_leave_first() -> None:
    from pbxgate.web.data import Kept

    clock = Clock()
    made: list[int] = []

    def compute(key: Any) -> int:
        made.append(int(key))
        return int(key) * 10

    kept = Kept(compute, fresh=5, limit=5, max_age=5, clock=clock, max_keys=3)
    for key in (1, 2, 3):
        assert kept.get(key) == key * 10
        clock.now += 1
    assert kept.get(1) == 10 and made == [1, 2, 3]  # kept: 1 is read again, 2 is the oldest read
    assert kept.get(4) == 40 and kept.keys(100) == [1, 3, 4]
    assert kept.get(2) == 20 and made == [1, 2, 3, 4, 2]  # 2 had left, so it was computed again
    clock.now += 5
    assert kept.get(5) == 50 and kept.keys(100) == [5]  # the rest were past the limit


def test_the_page_is_rendered_once_per_report_and_language(tmp_path: Path) -> None:
    """Every viewer of one kept report gets the content the first one's request rendered; a
    new report (a call landed) is rendered anew; the rest of the page is each viewer's own."""
    from pbxgate.web import app as console_app

    console = week_console(tmp_path, NOON)
    clock: Clock = console.state.clock
    body = re.compile(r'<div id="today-body".*?</section>\s*</div>', re.S)

    async def go() -> None:
        async with client(console) as one, client(console) as two:
            await log_in(one, "vera", "viewer-pass-1")
            await log_in(two, "vera", "viewer-pass-1")
            first = await one.get("/today", headers={"accept-language": "en"})
            second = await two.get("/today", headers={"accept-language": "en"})
            russian = await two.get("/today", headers={"accept-language": "ru"})
            shown = body.search(first.text)
            assert shown is not None and shown[0] == body.search(second.text)[0]  # type: ignore[index]
            assert first.text != second.text  # each session's own CSRF token in its forms
            assert "Сегодня" in russian.text and "Сегодня" not in shown[0]
            assert console.state.today_rendered[("html", "en")][1].strip() == shown[0]
            late = replace(week_legs()[0], start=NOON.replace(hour=11), answer=None, end=None,
                           uniqueid="late.2", linkedid="late.2")  # fmt: skip
            Store.open_sqlite(tmp_path / "week.sqlite3").insert([late])
            clock.now += console_app.TODAY_SECONDS + 1
            await one.get("/today", headers={"accept-language": "en"})  # the kept one, at once
            console.state.today.wait()
            fresh = await one.get("/today", headers={"accept-language": "en"})
            assert body.search(fresh.text)[0] != shown[0]  # type: ignore[index]
            api = (await one.get("/api/today", headers={"accept-language": "en"})).json()
            calls = re.search(r'data-key="calls">.*?<span class="value">([^<]*)<', fresh.text, re.S)
            assert calls is not None and calls[1] == str(api["kpis"][0]["value"])

    run(go())


def test_readers_waiting_for_a_long_computation_get_its_result() -> None:
    """Single flight holds however long the computation takes (longer than ``fresh`` too)."""
    import threading

    from pbxgate.web.data import Kept

    clock = Clock()
    made: list[int] = []
    started = threading.Event()
    release = threading.Event()

    def compute(key: Any) -> int:
        made.append(1)
        started.set()
        release.wait(10)
        clock.now += 30  # the computation took longer than fresh and limit
        return len(made)

    kept = Kept(compute, fresh=5, limit=5, max_age=5, clock=clock)
    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(kept.get("page")))
    first.start()
    started.wait(10)
    others = [threading.Thread(target=lambda: answers.append(kept.get("page"))) for _ in range(4)]
    for thread in others:
        thread.start()
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert answers == [1] * 5 and made == [1]


def test_a_key_that_failed_or_went_past_the_limit_leaves_nothing_behind() -> None:
    from pbxgate.web.data import Kept

    clock = Clock()

    def compute(key: Any) -> str:
        if key == "bad":
            raise ValueError("no such filter")
        return str(key)

    kept = Kept(compute, fresh=5, limit=5, max_age=5, clock=clock)
    for _ in range(100):
        with pytest.raises(ValueError, match="no such filter"):
            kept.get("bad")
    assert kept.keys(100) == []
    assert kept.get("a") == "a" and kept.get("b") == "b"
    clock.now += 5
    assert kept.get("c") == "c" and kept.keys(100) == ["c"]  # a and b: past the limit, dropped
