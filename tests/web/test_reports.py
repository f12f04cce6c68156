"""The Reports page over the fixture day: the report ``pbxgate cdr report`` makes, its files,
"Mail it now" against a local aiosmtpd server, the schedules and the sent log."""

from __future__ import annotations

import csv
import email
import email.policy
import html
import io
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import pytest

from pbxgate.cdr.report.cron import Cron, next_fire
from pbxgate.cdr.report.formats import render as render_format
from pbxgate.cdr.report.sentlog import SentLog
from pbxgate.cdr.report.service import make_report, options
from pbxgate.cdr.report.text import kpi_value
from pbxgate.cdr.window import resolve_window
from pbxgate.config import Settings
from pbxgate.web import reports
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report import test_mail
from tests.report.helpers import write_config
from tests.report.test_mail import PASSWORD, Sink
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in, run

DAY = "from=2016-03-18&to=2016-03-18"
SCHEDULES = """
[report.schedules.daily]
cron = "0 7 * * *"
to = ["boss@example.org"]
[report.schedules.weekly]
cron = "30 8 * * mon"
timezone = "UTC"
to = ["owner@example.org", "https://crm.example.org/hook?key=s3cr3t"]
period = "week"
format = "xlsx"
"""


smtp_server = test_mail.smtp_server  # the e-mail tests' local SMTP server, as a fixture here
ROLES = {"vera": Role.VIEWER, "lena": Role.LISTENER, "anna": Role.ADMIN}


def make_console(
    tmp_path: Path, extra: str = "", smtp: str = "", names: tuple[str, ...] = tuple(ROLES)
) -> tuple[Any, Settings]:
    web = f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\nreport_to = ["ops@example.org"]\n'
    cfg = write_config(tmp_path, smtp=smtp, extra=web + extra)
    settings = Settings.load(cfg)
    users = UserStore(settings.get(WebSettings).database_path)
    for name in names:  # each is a slow (Argon2) hash: only the users a test logs in as
        users.add(name, PASSWORDS[name], ROLES[name])
    return create_app(settings, users=users, now=lambda: NOW, clock=Clock()), settings


def smtp_config(port: int, password_file: Path) -> str:
    return (
        f'[report.smtp]\nport = {port}\nuser = "pbx"\npassword_file = "{password_file}"\n'
        'sender = "PBX <pbx@example.org>"\n'
    )


def expected_report(settings: Settings, language: str = "en") -> dict[str, Any]:
    """What ``pbxgate cdr report --from 2016-03-18 --to 2016-03-18`` makes, at NOW."""
    window = resolve_window(start="2016-03-18", end="2016-03-18", now=NOW)
    report = make_report(settings, window, options(settings, language=language), NOW)
    return json.loads(json.dumps(report))


async def csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/reports?period=today")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]


# -- roles ---------------------------------------------------------------------------------


def test_roles_of_every_endpoint(tmp_path: Path) -> None:
    assert reports.reports_page.role is Role.VIEWER  # type: ignore[attr-defined]
    assert reports.reports_api.role is Role.VIEWER  # type: ignore[attr-defined]
    assert reports.download.role is Role.VIEWER  # type: ignore[attr-defined]
    assert reports.mail_now.role is Role.ADMIN  # type: ignore[attr-defined]
    app, _ = make_console(tmp_path)

    async def go() -> None:
        async with client(app) as http:
            page = await http.get("/reports")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/reports"
            assert (await http.get("/reports/download?format=csv")).status_code == 303
            for path in ("/api/reports", "/api/reports/download?format=csv"):
                assert (await http.get(path)).status_code == 401
            assert (await http.post("/api/reports/mail")).status_code == 401
        for name in ("vera", "lena"):
            async with client(app) as http:
                await log_in(http, name)
                assert (await http.get(f"/reports?{DAY}")).status_code == 200
                assert (await http.get(f"/api/reports?{DAY}")).status_code == 200
                assert (await http.get(f"/reports/download?{DAY}&format=csv")).status_code == 200
                token = await csrf(http)
                refused = await http.post(
                    "/api/reports/mail",
                    data={"from": "2016-03-18"},
                    headers={"x-csrf-token": token},
                )
                assert refused.status_code == 403
                assert refused.json() == {"error": "this needs the admin role"}
                page = (await http.get(f"/reports?{DAY}")).text
                assert 'id="report-mail-form"' not in page  # no form for what they may not do
        async with client(app) as http:
            await log_in(http, "anna")
            page = (await http.get(f"/reports?{DAY}")).text
            assert 'id="report-mail-form"' in page
            stale = await http.post("/reports/mail", data={"csrf": "forged"})
            assert stale.status_code == 403

    run(go())


# -- the report ----------------------------------------------------------------------------


def test_the_api_is_the_report_the_cli_makes(tmp_path: Path) -> None:
    app, settings = make_console(tmp_path, names=("vera",))

    async def go() -> dict[str, Any]:
        async with client(app) as http:
            await log_in(http, "vera")
            answer = await http.get(f"/api/reports?{DAY}&language=en")
            assert answer.status_code == 200
            return answer.json()

    result = run(go())
    expected = expected_report(settings)
    assert result["report"] == expected
    kpis = {k["key"]: k["value"] for k in result["report"]["kpis"]}
    assert kpis["calls"] == 10 and kpis["missed"] == 4  # the fixture day's hand-checked figures
    assert result["query"] == {"from": "2016-03-18", "to": "2016-03-18", "language": "en"}
    assert result["downloads"]["xlsx"] == (
        "/reports/download?from=2016-03-18&to=2016-03-18&language=en&format=xlsx"
    )


def test_the_page_shows_the_report_with_its_charts(tmp_path: Path) -> None:
    app, settings = make_console(tmp_path, names=("vera",))

    async def go() -> str:
        async with client(app) as http:
            await log_in(http, "vera")
            page = await http.get(f"/reports?{DAY}&language=en", headers={"accept-language": "en"})
            assert page.status_code == 200
            return page.text

    page = run(go())
    frame = re.search(r'<iframe id="report-frame"[^>]*srcdoc="([^"]*)"', page)
    assert frame is not None
    inner = html.unescape(frame[1])
    assert inner.startswith("<!DOCTYPE html>") and "<script" not in inner
    assert "Call report: 2016-03-18" in inner
    for kpi in expected_report(settings)["kpis"]:
        assert f'<div class="kv">{html.escape(kpi_value(kpi, kpi["value"]))}</div>' in inner
    assert inner.count('src="data:image/png;base64,') >= 1  # the charts, from pbxgate itself
    assert not re.search(r'(src|href)="https?://', page + inner)  # nothing from another site
    assert 'sandbox="allow-same-origin' in page
    for fmt in ("text", "html", "xlsx", "csv", "json"):
        assert f'id="report-download-{fmt}"' in page
    assert '<option value="today">today</option>' in page  # the period chooser
    assert "<option selected>en</option>" in page


def test_every_download_format(tmp_path: Path) -> None:
    app, settings = make_console(tmp_path, names=("vera",))
    report = expected_report(settings)
    types = {
        "text": "text/plain; charset=utf-8",
        "html": "text/html; charset=utf-8",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "csv": "text/csv; charset=utf-8",
        "json": "application/json",
    }
    suffix = {"text": "txt"}

    async def go() -> dict[str, httpx.Response]:
        async with client(app) as http:
            await log_in(http, "vera")
            return {
                fmt: await http.get(f"/reports/download?{DAY}&language=en&format={fmt}")
                for fmt in types
            }

    answers = run(go())
    for fmt, answer in answers.items():
        assert answer.status_code == 200
        assert answer.headers["content-type"] == types[fmt]
        name = f"calls-2016-03-18.{suffix.get(fmt, fmt)}"
        assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'
        assert answer.content
    # The same bytes the CLI's --format writes for the same report (charts aside: PNGs).
    for fmt in ("text", "csv", "json"):
        assert answers[fmt].content == render_format(report, fmt)
    assert json.loads(answers["json"].content) == report
    rows = list(csv.reader(io.StringIO(answers["csv"].text)))
    kpis = rows[rows.index(["# kpis"]) + 2 :]
    assert kpis[0][:3] == ["calls", "count", "10"] and kpis[2][:3] == ["missed", "count", "4"]
    book = openpyxl.load_workbook(io.BytesIO(answers["xlsx"].content))
    assert answers["xlsx"].content.startswith(b"PK")
    assert book.sheetnames[:3] == ["period", "kpis", "hourly"]
    sheet = book["kpis"]
    values = {row[0]: row[2] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert values["calls"] == 10 and values["missed"] == 4
    assert answers["html"].text.startswith("<!DOCTYPE html>")
    assert 'src="data:image/png;base64,' in answers["html"].text
    assert "Call report: 2016-03-18" in answers["text"].text


@pytest.mark.parametrize(
    ("window", "label", "stem"),
    [
        ("from=2016-03-01&to=2016-03-31", "2016-03-01 – 2016-03-31",
         "calls-2016-03-01..2016-03-31"),
        ("from=2016-03-18 12:00&to=2016-03-18 13:30", "2016-03-18 12:00 .. 2016-03-18 13:30",
         "calls-2016-03-18_1200..2016-03-18_1330"),
    ],
)  # fmt: skip
def test_download_is_named_as_the_label_and_the_calls_export(
    tmp_path: Path, window: str, label: str, stem: str
) -> None:
    """A month's download was ``calls-2016-03-01..2016-04-01.csv`` (the exclusive end) while
    its label said "2016-03-01 – 2016-03-31" and the Calls page named the same window's export
    ``calls-2016-03-01..2016-03-31.csv``."""
    app, _ = make_console(tmp_path, names=("vera",))

    async def go() -> list[httpx.Response]:
        async with client(app) as http:
            await log_in(http, "vera")
            return [
                await http.get(f"/reports/download?{window}&language=en&format=csv"),
                await http.get(f"/api/reports/download?{window}&format=xlsx"),
                await http.get(f"/reports/download?{window}&language=en&format=text"),
                await http.get(f"/calls.csv?{window}"),
            ]

    csv_file, xlsx_file, text_file, export = run(go())
    assert csv_file.headers["content-disposition"] == f'attachment; filename="{stem}.csv"'
    assert xlsx_file.headers["content-disposition"] == f'attachment; filename="{stem}.xlsx"'
    assert text_file.headers["content-disposition"] == f'attachment; filename="{stem}.txt"'
    assert f"Call report: {label}" in text_file.text
    assert export.headers["content-disposition"] == csv_file.headers["content-disposition"]


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("period=fortnight", "unknown period 'fortnight' (one of today, yesterday, week, month)"),
        ("period=today&from=2016-03-01", "period today cannot be combined with from/to"),
        ("language=de", "unknown language 'de' (one of ru, en)"),
        ("source=/etc/passwd", "unknown source '/etc/passwd' (one of local, fx)"),
        ("top=0", "top must be a whole number from 1 to 1000, not '0'"),
        ("queues=maybe", "queues must be yes or no, not 'maybe'"),
        ("format=pdf", "unknown format 'pdf' (one of text, html, xlsx, csv, json)"),
    ],
)
def test_bad_input_is_one_400_line(tmp_path: Path, query: str, line: str) -> None:
    app, _ = make_console(tmp_path, names=("vera",))
    download = "format=pdf" in query

    async def go() -> tuple[httpx.Response, httpx.Response]:
        async with client(app) as http:
            await log_in(http, "vera")
            path = "/reports/download" if download else "/reports"
            return await http.get(f"{path}?{query}"), await http.get(f"/api{path}?{query}")

    page, api = run(go())
    assert page.status_code == 400 and page.text == line
    assert page.headers["content-type"].startswith("text/plain")
    assert api.status_code == 400 and api.json() == {"error": line}


def test_a_bad_date_is_one_400_line(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path, names=("vera",))

    async def go() -> httpx.Response:
        async with client(app) as http:
            await log_in(http, "vera")
            return await http.get("/api/reports?from=18.03.2016x")

    answer = run(go())
    assert answer.status_code == 400 and "\n" not in answer.json()["error"]


LONG = (
    "the window 1990-01-01 .. 2030-12-31 is longer than 366 days (a year is plenty): narrow from/to"
)
RANGE = "is out of range: use a moment from 1900-01-01 to 2999-12-31"


@pytest.mark.parametrize(
    ("query", "line"),
    [
        ("from=1990-01-01&to=2030-12-31", LONG),  # per-day charts of 41 years: minutes of CPU
        ("to=9999-12-31", f"'9999-12-31' {RANGE}"),  # once an OverflowError: a 500
        ("from=0001-01-01&to=0001-01-02", f"'0001-01-01' {RANGE}"),
        ("from=9999-12-30&to=9999-12-30", f"'9999-12-30' {RANGE}"),
        ("top=%C2%B2", "top must be a whole number from 1 to 1000, not '²'"),  # "²".isdigit()
        ("top=%D9%A3", "top must be a whole number from 1 to 1000, not '٣'"),  # Arabic-Indic 3
        ("top=" + "9" * 5000, f"top must be a whole number from 1 to 1000, not '{'9' * 20}…'"),
    ],
)
def test_a_window_past_a_year_or_the_calendar_and_odd_tops_are_400_everywhere(
    tmp_path: Path, query: str, line: str
) -> None:
    app, _ = make_console(tmp_path, names=("vera",))
    paths = ("/reports", "/api/reports", "/reports/download", "/api/reports/download")

    async def go() -> list[httpx.Response]:
        async with client(app) as http:
            await log_in(http, "vera")
            return [await http.get(f"{path}?{query}&format=csv") for path in paths]

    for path, answer in zip(paths, run(go()), strict=True):
        assert answer.status_code == 400, path
        assert (answer.json()["error"] if "/api/" in path else answer.text) == line


def test_a_year_is_still_a_report(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path, names=("vera",))

    async def go() -> httpx.Response:
        async with client(app) as http:
            await log_in(http, "vera")
            return await http.get("/api/reports?from=2015-03-19&to=2016-03-18&top=5")

    answer = run(go())
    assert answer.status_code == 200
    assert answer.json()["report"]["period"]["label"] == "2015-03-19 – 2016-03-18"


# -- mail it now ---------------------------------------------------------------------------


def test_mail_now_to_a_schedule_and_to_web_report_to(
    tmp_path: Path, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    (tmp_path / "pass").write_text(PASSWORD)
    app, _ = make_console(
        tmp_path, SCHEDULES, smtp_config(port, tmp_path / "pass"), names=("anna",)
    )
    users: UserStore = app.state.users

    async def go() -> tuple[httpx.Response, str, httpx.Response]:
        async with client(app) as http:
            await log_in(http, "anna")
            token = await csrf(http)
            form = {"csrf": token, "from": "2016-03-18", "to": "2016-03-18", "language": "en",
                    "schedule": "daily"}  # fmt: skip
            sent = await http.post("/reports/mail", data=form)
            page = await http.get(sent.headers["location"], headers={"accept-language": "en"})
            again = await http.get("/reports?period=today")  # the result is shown once
            assert 'id="report-mail-result"' not in again.text
            api = await http.post(
                "/api/reports/mail",
                data={"from": "2016-03-18", "to": "2016-03-18", "language": "en"},
                headers={"x-csrf-token": token},
            )
            return sent, page.text, api

    sent, page, api = run(go())
    assert sent.status_code == 303
    assert sent.headers["location"] == (
        "/reports?from=2016-03-18&to=2016-03-18&language=en#report-mail-result"
    )
    assert 'id="report-mail-result"' in page
    assert "Sent: 2016-03-18 → boss@example.org (html)" in page
    assert api.status_code == 200
    assert api.json() == {"sent": {"period": "2016-03-18", "to": ["ops@example.org"],
                                   "format": "html"}}  # fmt: skip
    (to_boss, raw_boss), (to_ops, _) = sink.messages
    assert to_boss == ["boss@example.org"] and to_ops == ["ops@example.org"]
    msg = email.message_from_bytes(raw_boss, policy=email.policy.default)
    assert msg["Subject"] == "Call report: 2016-03-18 — Calls 10, missed 4"
    log = users.audit_log(10)
    mails = [e for e in log if e.action == "report-mail"]
    assert [e.who for e in mails] == ["anna", "anna"]
    assert mails[1].detail == "2016-03-18 to schedule daily (1 recipients, html)"
    assert mails[0].detail == "2016-03-18 to [web] report_to (1 recipients, html)"


def test_mail_now_with_a_wrong_password_is_one_line_without_it(
    tmp_path: Path, smtp_server: tuple[Sink, int]
) -> None:
    sink, port = smtp_server
    wrong = "wrong-" + PASSWORD
    (tmp_path / "pass").write_text(wrong)
    app, _ = make_console(
        tmp_path, SCHEDULES, smtp_config(port, tmp_path / "pass"), names=("anna",)
    )
    users: UserStore = app.state.users

    async def go() -> tuple[httpx.Response, str]:
        async with client(app) as http:
            await log_in(http, "anna")
            token = await csrf(http)
            api = await http.post(
                "/api/reports/mail",
                data={"from": "2016-03-18", "to": "2016-03-18", "schedule": "weekly"},
                headers={"x-csrf-token": token},
            )
            form = {"csrf": token, "period": "today", "schedule": "daily"}
            sent = await http.post("/reports/mail", data=form)
            page = await http.get(sent.headers["location"], headers={"accept-language": "en"})
            return api, page.text

    api, page = run(go())
    assert api.status_code == 502
    line = api.json()["error"]
    assert line.startswith(f"SMTP server 127.0.0.1:{port} refused the login for pbx: 535")
    assert "\n" not in line and PASSWORD not in line
    assert f"Not sent: SMTP server 127.0.0.1:{port} refused the login for pbx: 535" in page
    assert PASSWORD not in page
    assert sink.messages == []
    failed = [e for e in users.audit_log(10) if e.action == "report-mail-failed"]
    assert len(failed) == 2 and all(PASSWORD not in e.detail for e in failed)
    assert failed[1].detail.startswith("schedule weekly: SMTP server")


def test_mail_now_needs_recipients_and_a_known_schedule(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path, names=("anna",))

    async def go() -> list[httpx.Response]:
        async with client(app) as http:
            await log_in(http, "anna")
            token = await csrf(http)
            return [
                await http.post(
                    "/api/reports/mail", data=form | {"period": "today"},
                    headers={"x-csrf-token": token},
                )
                for form in ({"schedule": "nightly"}, {"format": "pdf"})
            ]  # fmt: skip

    unknown, bad_format = run(go())
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "no report schedule named 'nightly'"}
    assert bad_format.json() == {
        "error": "unknown format 'pdf' (one of html, text, xlsx, csv, json)"
    }


# -- schedules and what they sent -----------------------------------------------------------


def test_schedules_and_sent_log_for_a_viewer(tmp_path: Path) -> None:
    app, _ = make_console(tmp_path, SCHEDULES, names=("vera",))
    state = tmp_path / "reports.sqlite3"

    async def look() -> tuple[dict[str, Any], str]:
        async with client(app) as http:
            await log_in(http, "vera")
            api = (await http.get("/api/reports?period=today")).json()
            page = (await http.get("/reports?period=today")).text
            return api, page

    api, page = run(look())
    assert not state.exists()  # looking does not make the scheduler's file
    assert api["sent"] == [] and 'id="report-sent"' not in page
    daily, weekly = api["schedules"]["items"]
    moscow = ZoneInfo("Europe/Moscow")
    after = NOW.replace(tzinfo=moscow)
    assert daily == {
        "name": "daily", "cron": "0 7 * * *", "timezone": "Europe/Moscow", "period": "yesterday",
        "format": "html", "to": ["boss@example.org"],
        "next_run": next_fire(Cron.parse("0 7 * * *"), moscow, after)
            .astimezone(moscow).strftime("%Y-%m-%d %H:%M %Z"),
    }  # fmt: skip
    assert daily["next_run"] == "2016-03-19 07:00 MSK"
    assert weekly["next_run"] == "2016-03-21 08:30 UTC" and weekly["format"] == "xlsx"
    # A recipient with a secret in it is shown as the project shows it everywhere: masked.
    assert weekly["to"] == ["owner@example.org", "https://crm.example.org/***?***"]
    assert "s3cr3t" not in page and 'id="report-schedules"' in page
    assert 'data-schedule="weekly"' in page

    log = SentLog(state)
    log.mark_sent("daily", "2016-03-17 00:00:00", datetime(2016, 3, 18, 7, 0, 2), ["b@x.org"])
    log.mark_sent("weekly", "2016-03-07 00:00:00", datetime(2016, 3, 14, 8, 30), ["o@x.org"])
    log.close()
    api, page = run(look())
    assert api["sent"] == [
        {"schedule": "daily", "period_start": "2016-03-17 00:00:00",
         "sent_at": "2016-03-18 07:00:02"},
        {"schedule": "weekly", "period_start": "2016-03-07 00:00:00",
         "sent_at": "2016-03-14 08:30:00"},
    ]  # fmt: skip
    assert 'id="report-sent"' in page and "2016-03-18 07:00:02" in page


def test_a_bad_schedule_is_one_line_and_the_report_still_shows(tmp_path: Path) -> None:
    app, _ = make_console(
        tmp_path,
        '[report.schedules.broken]\ncron = "61 * * * *"\nto = ["a@x.org"]\n',
        names=("vera",),
    )

    async def go() -> tuple[dict[str, Any], httpx.Response]:
        async with client(app) as http:
            await log_in(http, "vera")
            return (await http.get("/api/reports")).json(), await http.get("/reports")

    api, page = run(go())
    assert api["schedules"]["items"] == []
    assert api["schedules"]["error"].startswith("[report.schedules.broken]: ")
    assert "\n" not in api["schedules"]["error"]
    assert page.status_code == 200 and 'id="report-schedules-error"' in page.text
