"""The Calls page over HTTP: every filter against the fixture day's hand-checked calls, stable
pages, a call's legs and timeline, CSV and XLSX exports of exactly what is filtered, roles and
bad input. The calls of tests/cdr/fixture_calls.py, by start:

    A 12:00:36 in  84991111111 -> 113 answered 130 s (recorded)
    B 12:01:33 in  89162222222 -> 104 answered 67 s, 105 rang
    C 12:05:00 in  84993333333 -> 110 no answer, 111 busy          missed
    D 12:20:00 out 113 -> 84993333333 answered 50 s
    E 12:30:00 int 101 -> 102 answered 25 s
    F 13:00:00 in  89165555555 -> 113 busy                          missed
    G 13:10:00 in  84996666666 -> 104 failed                        missed
    H 13:30:00 in  84997777777 -> 104 answered, transferred to 105, 130 s
    I 14:00:00 in  84998888888 -> 113 no answer                     missed
    J 14:10:00 in  84998888888 -> 114 answered 40 s
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from pbxgate.cdr.render import render_text
from pbxgate.cdr.store import Store
from pbxgate.config import Settings
from pbxgate.web import calls as calls_page
from pbxgate.web import data
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.cdr.fixture_calls import LEGS
from tests.report.helpers import write_config
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in, run

ALL = "JIHGFEDCBA"
API_PATHS = ["/api/calls", "/api/calls/link-A", "/api/calls.csv", "/api/calls.xlsx"]
HTML_PATHS = ["/calls", "/calls/link-A", "/calls.csv", "/calls.xlsx"]


def get(app: Any, user: str | None, *paths: str, lang: str = "en") -> list[httpx.Response]:
    """The answers to ``paths``, in one session of ``user`` (None: not logged in)."""

    async def go() -> list[httpx.Response]:
        async with client(app) as http:
            if user is not None:
                await log_in(http, user)
            headers = {"accept-language": lang}
            return [await http.get(path, headers=headers) for path in paths]

    result: list[httpx.Response] = run(go())
    return result


def letters(rows: list[dict[str, Any]]) -> str:
    return "".join(row["linkedid"].removeprefix("link-") for row in rows)


FILTERS = [
    ("", ALL),
    ("period=today", ALL),
    ("period=yesterday", ""),
    ("from=2016-03-18 12:00&to=2016-03-18 12:10", "CBA"),
    ("from=18.03.2016 13:00", "JIHGF"),
    ("direction=inbound", "JIHGFCBA"),
    ("direction=outbound", "D"),
    ("direction=internal", "E"),
    ("src=8499*", "JIHGCA"),
    ("src=113", "D"),
    ("dst=104", "HGB"),
    ("dst=*5", "HB"),
    ("did=4996491913", "JIHGFCBA"),
    ("cnum=8916*", "FB"),
    ("extension=104", "HGB"),
    ("extension=105", "HB"),
    ("extension=113", "IFA"),
    ("queue=110", "C"),
    ("queue=104", "HGB"),
    ("outcome=answered", "JHEDBA"),
    ("outcome=unanswered", "IGFC"),
    ("outcome=missed", "IGFC"),
    ("disposition=BUSY", "F"),
    ("disposition=no-answer", "IC"),
    ("disposition=FAILED&disposition=BUSY", "GF"),
    ("disposition=FAILED,BUSY", "GF"),
    ("min_billsec=60", "HBA"),
    ("min_billsec=0", ALL),
    ("accountcode=sales", ""),
    ("direction=inbound&outcome=answered&extension=104", "HB"),
    ("src=*8888*&outcome=unanswered", "I"),
]


def test_each_filter_finds_the_hand_checked_calls(console: tuple[Any, Clock]) -> None:
    app, _ = console
    answers = get(app, "vera", *(f"/api/calls?{query}" for query, _ in FILTERS))
    for (query, expected), answer in zip(FILTERS, answers, strict=True):
        assert answer.status_code == 200, (query, answer.text)
        body = answer.json()
        assert (letters(body["rows"]), body["total"]) == (expected, len(expected)), query


def _console_with(tmp_path: Path, legs: list[Any]) -> Any:
    db = tmp_path / "fixture.sqlite3"
    Store.open_sqlite(db).insert(legs)
    cfg = write_config(tmp_path, extra=f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n')
    settings = Settings.load(cfg)
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    return create_app(settings, users=users, now=lambda: NOW, clock=Clock())


def test_accountcode_is_a_leg_of_the_call(tmp_path: Path) -> None:
    legs = [
        dataclasses.replace(leg, accountcode="sales") if (leg.linkedid, leg.dst) in
        {("link-B", "105"), ("link-H", "104"), ("link-D", "84993333333")} else leg
        for leg in LEGS
    ]  # fmt: skip
    app = _console_with(tmp_path, legs)
    (answer,) = get(app, "vera", "/api/calls?accountcode=sales&direction=inbound")
    assert letters(answer.json()["rows"]) == "HB"


def test_pages_are_stable_and_cover_every_call_once(console: tuple[Any, Clock]) -> None:
    app, _ = console
    paths = [f"/api/calls?per_page=3&page={n}" for n in (1, 2, 3, 4, 1, 99)]
    pages = [answer.json() for answer in get(app, "vera", *paths)]
    assert [letters(p["rows"]) for p in pages] == ["JIH", "GFE", "DCB", "A", "JIH", "A"]
    assert all((p["total"], p["pages"], p["per_page"]) == (10, 4, 3) for p in pages)
    assert pages[-1]["page"] == 4  # past the last page: the last
    (tiny,) = get(app, "vera", "/api/calls?per_page=0")
    assert tiny.json()["per_page"] == 1 and tiny.json()["pages"] == 10


def test_the_page_keeps_the_filter_in_its_links(console: tuple[Any, Clock]) -> None:
    app, _ = console
    query = "direction=inbound&disposition=BUSY&disposition=failed&per_page=1&page=2"
    (page,) = get(app, "vera", f"/calls?{query}")
    html = page.text
    assert page.status_code == 200 and html.count('class="legs-toggle"') == 1  # F of G, F
    links = {name: href.replace("&amp;", "&")
             for href, name in re.findall(r'href="([^"]+)" id="([\w-]+)"', html)}  # fmt: skip
    kept = [("direction", "inbound"), ("disposition", "BUSY"), ("disposition", "FAILED")]
    for name, path in (("export-csv", "/calls.csv"), ("export-xlsx", "/calls.xlsx")):
        assert urlsplit(links[name]).path == path
        assert parse_qsl(urlsplit(links[name]).query) == kept
    for name in ("page-first", "page-prev"):
        assert parse_qsl(urlsplit(links[name]).query) == [*kept, ("per_page", "1"), ("page", "1")]
    assert "page-next" not in links and "page-last" not in links
    assert '<option value="FAILED" selected>' in html and '<option value="BUSY" selected>' in html
    assert '<option value="inbound" selected>' in html


def test_a_call_s_legs_and_timeline(console: tuple[Any, Clock]) -> None:
    app, _ = console
    api, page, ru, unknown = get(
        app, "vera", "/api/calls/link-H", "/calls/link-H", "/api/calls/link-C", "/api/calls/nope"
    )
    detail = api.json()
    assert detail["call"]["linkedid"] == "link-H" and detail["call"]["talk"] == 130
    assert [(leg["dst"], leg["billsec"]) for leg in detail["legs"]] == [("104", 30), ("105", 90)]
    timeline = detail["timeline"]
    assert timeline["duration"] == 140
    assert [(i["who"], i["kind"], i["at"], i["ring"], i["talk"]) for i in timeline["items"]] == [
        ("104", "answered", 0, 10, 30),
        ("105", "transfer", 40, 10, 90),
    ]
    assert timeline["items"][1]["text"] == (
        "105: transferred at 0:40, rang 10 s, answered, talked 90 s"
    )
    assert timeline["end"] == "Call ended at 2:20"
    assert page.status_code == 200 and "105: transferred at 0:40" in page.text
    assert 'id="call-legs"' in page.text and "SIP/105-H1" in page.text
    missed = ru.json()["timeline"]["items"]
    assert [(i["who"], i["kind"], i["status"]) for i in missed] == [
        ("110", "unanswered", "NO ANSWER"),
        ("111", "unanswered", "BUSY"),
    ]
    assert unknown.status_code == 404 and unknown.json() == {"error": "no call 'nope' in the CDR"}


def test_the_timeline_speaks_russian(console: tuple[Any, Clock]) -> None:
    app, _ = console
    (answer,) = get(app, "vera", "/api/calls/link-C", lang="ru-RU,ru;q=0.9")
    texts = [i["text"] for i in answer.json()["timeline"]["items"]]
    assert texts == [
        "110: вызов с 0:00, гудки 15 с, без ответа",
        "111: вызов с 0:16, гудки 0 с, занято",
    ]


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def test_csv_is_everything_filtered_as_the_cli_writes_it(console: tuple[Any, Clock]) -> None:
    app, _ = console
    query = "direction=inbound&per_page=2"
    paths = [f"/api/calls?{query}&page={n}" for n in (1, 2, 3, 4)]
    *pages, export, html_export = get(app, "vera", *paths, f"/api/calls.csv?{query}",
                                      f"/calls.csv?{query}&page=3")  # fmt: skip
    rows = [row for page in pages for row in page.json()["rows"]]
    assert len(rows) == 8 and letters(rows) == "JIHGFCBA"
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"] == 'attachment; filename="calls-2016-03-18.csv"'
    assert not export.content.startswith(b"\xef\xbb\xbf")  # no BOM, as the CLI writes it
    got = _csv_rows(export.text)
    assert [list(r) for r in got[:1]] == [list(data.EXPORT_COLUMNS)]
    assert got == [{c: _as_text(row[c]) for c in data.EXPORT_COLUMNS} for row in rows]
    assert export.text == render_text(rows, data.EXPORT_COLUMNS, "csv")  # the CLI's formatter
    assert html_export.text == export.text  # all pages, whatever page the link was made on


def test_xlsx_is_everything_filtered(console: tuple[Any, Clock]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    app, _ = console
    query = "outcome=missed&from=2016-03-18 12:00&to=2016-03-18 13:30"
    page, export = get(app, "vera", f"/api/calls?{query}", f"/calls.xlsx?{query}")
    assert export.headers["content-disposition"] == (
        'attachment; filename="calls-2016-03-18_1200..2016-03-18_1330.xlsx"'
    )
    sheet = openpyxl.load_workbook(io.BytesIO(export.content)).active
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(data.EXPORT_COLUMNS)
    rows = page.json()["rows"]
    assert letters(rows) == "GFC"
    expected = [[row[c] if row[c] != "" else None for c in data.EXPORT_COLUMNS] for row in rows]
    for line in expected:
        line[0] = datetime.fromisoformat(str(line[0]))  # a real Excel date, not text
    assert cells == expected


def test_roles_and_the_recording_link(console: tuple[Any, Clock]) -> None:
    app, _ = console
    for answer in get(app, None, *API_PATHS):
        assert answer.status_code == 401 and answer.json() == {"error": "log in first"}
    for path, answer in zip(HTML_PATHS, get(app, None, *HTML_PATHS), strict=True):
        assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    for user in ("vera", "lena", "anna"):
        answers = get(app, user, *API_PATHS, *HTML_PATHS)
        assert [a.status_code for a in answers] == [200] * 8, user
    viewer, listener = get(app, "vera", "/calls")[0], get(app, "lena", "/calls")[0]
    assert "/recordings/link-A" not in viewer.text
    assert listener.text.count('data-testid="recording-link"') == 1  # only A is recorded
    assert 'href="/recordings/link-A"' in listener.text
    (api,) = get(app, "lena", "/api/calls?src=84991111111")
    assert api.json()["rows"][0]["recording_url"] == "/recordings/link-A"
    (api,) = get(app, "vera", "/api/calls?src=84991111111")
    assert "recording_url" not in api.json()["rows"][0]


def test_exports_are_audited(console: tuple[Any, Clock]) -> None:
    app, _ = console
    get(app, "vera", "/calls.csv?direction=outbound")
    entry = app.state.users.audit_log(1)[0]
    assert (entry.who, entry.action) == ("vera", "calls-export")
    assert entry.detail == "csv 2016-03-18 1 calls direction=outbound"


BAD = [
    ("direction=sideways", "unknown direction 'sideways'"),
    ("period=decade", "unknown period 'decade'"),
    ("from=2016-13-45", "cannot read '2016-13-45' as a date or time"),
    ("from=2016-03-18&to=2016-03-16", "before it starts"),
    ("from=2010-01-01&to=2016-03-18", "longer than 366 days"),
    ("outcome=ANSWERED", "unknown outcome 'ANSWERED'"),
    ("disposition=ringing", "unknown disposition 'ringing'"),
    ("min_billsec=ten", "min_billsec must be a whole number of seconds"),
    ("extension=10%25", "not an extension's number"),
    ("queue=a b", "not a queue's or ring group's number"),
    ("src=**", "has no digits"),
    ("accountcode=" + "x" * 81, "longer than 80 characters"),
    ("per_page=many", "per_page must be a number"),
]


def test_bad_input_is_one_clear_400(console: tuple[Any, Clock]) -> None:
    app, _ = console
    paths = [f"{p}?{query}" for query, _ in BAD for p in ("/api/calls", "/calls", "/api/calls.csv")]
    answers = iter(get(app, "vera", *paths))
    for query, message in BAD:
        api, html, export = next(answers), next(answers), next(answers)
        for answer in (api, export):
            assert answer.status_code == 400 and message in answer.json()["error"], query
        assert html.status_code == 400 and message in html.text, query
        assert html.headers["content-type"].startswith("text/plain") and "\n" not in html.text


def test_the_menu_lists_calls_after_today(console: tuple[Any, Clock]) -> None:
    app, _ = console
    (page,) = get(app, "vera", "/today")
    menu = re.findall(r'<a href="(/[a-z]+)"', page.text.split("</nav>")[0])
    assert menu[:2] == ["/today", "/calls"]


def test_the_script_and_its_hooks_are_served(console: tuple[Any, Clock]) -> None:
    app, _ = console
    page, script = get(app, "vera", "/calls", "/static/calls.js")
    assert script.status_code == 200 and "aria-expanded" in script.text
    hooks = ('id="calls-list"', 'id="legs-btn-1"', 'aria-controls="legs-1"', 'id="legs-1"',
             'data-api="/api/calls/link-J"', 'id="legs-link-1" href="/calls/link-J"')  # fmt: skip
    for hook in hooks:
        assert hook in page.text
    assert '<script src="/static/calls.js" defer>' in page.text


def test_the_index_is_warmed_at_start_and_then_used(console: tuple[Any, Clock]) -> None:
    app, _ = console
    index = app.state.call_index
    assert calls_page.warm(app, threading.Event()) == 47  # 2016-02-01 .. 2016-03-18
    assert index.worked_out == 47
    (missed,) = get(app, "vera", "/api/calls?outcome=missed&period=month")
    assert missed.status_code == 200 and missed.json()["total"] == 0  # February: no calls
    (today,) = get(app, "vera", "/api/calls?outcome=missed")
    assert letters(today.json()["rows"]) == "IGFC"
    assert index.worked_out == 47  # both answered from what was kept
    stopped = threading.Event()
    stopped.set()
    assert calls_page.warm(app, stopped) == 0

    async def start_and_stop() -> list[str]:
        async with app.router.lifespan_context(app):
            return [t.name for t in threading.enumerate()]

    assert "calls-index" in run(start_and_stop())


def test_everyone_asking_for_the_same_page_within_seconds_shares_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A room of people opening today's calls costs one query each CALLS_SECONDS; the HTML page
    and its JSON twin, and a query string written in another order, are the same page."""
    made: list[list[tuple[str, str]]] = []
    real = data.calls

    def counted(settings: Any, query: Any, now: datetime, **kw: Any) -> dict[str, Any]:
        made.append(list(query))
        return real(settings, query, now, **kw)

    monkeypatch.setattr(data, "calls", counted)
    app = _console_with(tmp_path, LEGS)
    clock: Clock = app.state.clock
    asked = ("/api/calls?direction=inbound&period=today", "/calls?period=today&direction=inbound",
             "/api/calls?period=today&direction=inbound&unknown=1")  # fmt: skip
    first = get(app, "vera", *asked)
    assert len(made) == 1 and made[0] == [("direction", "inbound"), ("period", "today")]
    total = first[0].json()["total"]
    assert f"{total}" in first[1].text and first[2].json()["total"] == total
    later = dataclasses.replace(LEGS[0], start=NOW.replace(hour=9), uniqueid="late.1",
                                linkedid="late.1", answer=None, end=None)  # fmt: skip
    Store.open_sqlite(tmp_path / "fixture.sqlite3").insert([later])
    (kept,) = get(app, "vera", asked[0])
    assert kept.json()["total"] == total and len(made) == 1  # within CALLS_SECONDS: shared
    clock.now += calls_page.CALLS_SECONDS
    (fresh,) = get(app, "vera", asked[0])
    assert fresh.json()["total"] == total + 1 and len(made) == 2
    (other,) = get(app, "vera", "/api/calls?direction=inbound&period=today&page=2")
    assert other.status_code == 200 and len(made) == 3  # another page is another computation
    # a repeated key: the last value counts, as it does without sharing
    a, b = get(app, "vera", "/api/calls?direction=outbound&direction=inbound",
               "/api/calls?direction=inbound&direction=outbound")  # fmt: skip
    assert a.json()["filters"]["direction"] == "inbound"
    assert b.json()["filters"]["direction"] == "outbound" and len(made) == 5


def test_a_damaged_call_index_file_does_not_stop_the_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "callindex.sqlite3").write_bytes(b"not a database" * 100)
    with caplog.at_level("WARNING", logger="pbxgate.web.calls"):
        app = _console_with(tmp_path, LEGS)
    assert app.state.call_index.store is None
    assert any("removing the file loses nothing" in r.getMessage() for r in caplog.records)
    (answer,) = get(app, "vera", "/api/calls?direction=inbound")
    assert answer.status_code == 200 and answer.json()["total"] == 8
