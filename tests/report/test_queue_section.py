"""The report's Queues section over what a real Asterisk 22 wrote for the test office
(tests/queue/goldens: its queue_log in pbxgate's store, its CDRs as the CDR source): the numbers
are those of ``pbxgate queue stats`` and of the agents computed from the file itself, every
format carries them, e-mailed schedules too; and a report with no queue_log lines for its
period is the report it was before, byte for byte."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import sqlite3
import tomllib
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cdr.report.formats import render
from pbxgate.cdr.report.html import render_html
from pbxgate.cdr.report.schedule import run_schedules
from pbxgate.cdr.report.service import make_report, options
from pbxgate.cdr.report.settings import ReportSettings
from pbxgate.cdr.report.tabular import render_csv, render_json
from pbxgate.cdr.report.text import render_text
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.store import Store
from pbxgate.cdr.window import day_window
from pbxgate.cli.main import main
from pbxgate.config import Settings
from pbxgate.queue.agents import agents
from pbxgate.queue.log import read_lines
from pbxgate.queue.source import window_bounds
from pbxgate.queue.store import QueueStore
from tests.cdr.fixture_calls import LEGS
from tests.report.helpers import DAY as FIXTURE_DAY
from tests.report.helpers import NOW as FIXTURE_NOW
from tests.report.helpers import write_config
from tests.report.test_browser import probe
from tests.report.test_formats import PNG, parse
from tests.report.test_mail import Sink, smtp_server  # noqa: F401 - fixture
from tests.report.test_mail import parse as parse_mail
from tests.report.test_schedule import FakeClock

QUEUE_GOLDENS = Path(__file__).resolve().parents[1] / "queue" / "goldens"
QUEUE_LOG = QUEUE_GOLDENS / "office.queue_log"
REPORT_GOLDENS = Path(__file__).parent / "goldens"
DAY = day_window(date(2026, 12, 5))  # the office's lines: 2026-12-05 06:30-06:32 UTC
NOW = datetime(2026, 12, 6, 8, 0)  # the next morning, in the [cdr] zone (UTC)
ALIASES = {"Local/103@from-queue/n": "Вера Иванова"}  # ADDMEMBER names the interface
CLI_DAY = ["--from", "2026-12-05", "--to", "2026-12-05"]


def import_queue_log(settings: Settings) -> Path:
    """The office's queue_log into the store the report reads (``[queue] source = "local"``)."""
    path = settings.get(CdrSettings).store_path()
    store = QueueStore(path)
    try:
        assert store.import_file(QUEUE_LOG).inserted == 31
    finally:
        store.close()
    return path


@pytest.fixture
def office(tmp_path: Path) -> Path:
    """The office's config: its CDRs as the CDR source, its queue_log in pbxgate's store, queue
    701 with a target of its own (3 s: its one call, answered after 5 s, misses it)."""
    db = tmp_path / "master.db"
    con = sqlite3.connect(db)
    con.executescript((QUEUE_GOLDENS / "office.cdr.sql").read_text(encoding="utf-8"))
    con.close()
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[cdr]\ntimezone = "UTC"\ndefault_source = "office"\n'
        f'[cdr.sources.office]\nurl = "sqlite:///{db}"\n'
        f'[queue.service_levels]\n"701" = 3\n'
        f'[queue.members]\n"Local/103@from-queue/n" = "Вера Иванова"\n'
        f'[report]\nstate = "{tmp_path}/reports.sqlite3"\n',
        encoding="utf-8",
    )
    import_queue_log(Settings.load(cfg, environ={}))
    return cfg


def report_of(cfg: Path, language: str = "en", **settings: Any) -> dict[str, Any]:
    loaded = Settings.load(cfg, environ={})
    return make_report(loaded, DAY, options(loaded, language=language, **settings), NOW)


def cli_json(capsys: pytest.CaptureFixture[str], cfg: Path, *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["--config", str(cfg), *args, *CLI_DAY, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def pct(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def test_queues_are_the_numbers_of_pbxgate_queue_stats(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    section = report_of(office)["queues"]
    stats = {r["key"]: r for r in cli_json(capsys, office, "queue", "stats")}
    rows = {r["queue"]: r for r in section["by_queue"]}
    assert sorted(rows) == sorted(stats) == ["700", "701"]
    same = (
        "offered",
        "answered",
        "abandoned",
        "short_abandoned",
        "timed_out",
        "other_exits",
        "in_queue",
        "wait_avg",
        "wait_p90",
        "wait_max",
        "talk_avg",
    )
    for name, row in rows.items():
        assert {k: row[k] for k in same} == {k: stats[name][k] for k in same}, name
        assert row["service_level_pct"] == pct(stats[name]["service_level"]), name
    # What the office's log says (docs/queue.md): 700 answered 4 of 6, one caller gave up
    # after 4 s (a short abandon, out of the SL), one timed out after 10 s; 701 answered after
    # 5 s, past its own target of 3 s.
    keys = ("offered", "answered", "abandoned", "short_abandoned", "timed_out", "target_seconds")
    assert [rows["700"][k] for k in keys] == [6, 4, 1, 1, 1, 20]
    assert rows["700"]["service_level_pct"] == 80.0
    assert (rows["701"]["target_seconds"], rows["701"]["service_level_pct"]) == (3, 0.0)
    # all queues: 4 of 6 (7 offered less the short abandon), each against its queue's target
    assert (section["total"]["offered"], section["total"]["service_level_pct"]) == (7, 66.7)


def test_hours_are_those_of_queue_stats_by_hour(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hourly = report_of(office)["queues"]["hourly"]
    by_hour = {int(r["key"]): r for r in cli_json(capsys, office, "queue", "stats", "--by", "hour")}
    assert [r["hour"] for r in hourly] == list(range(24))
    for row in hourly:
        found = by_hour.get(row["hour"])
        if found is None:
            assert (row["offered"], row["service_level_pct"]) == (0, None)
            continue
        assert (row["offered"], row["answered"], row["abandoned"], row["timed_out"]) == (
            found["offered"],
            found["answered"],
            found["abandoned"],
            found["timed_out"],
        )
        assert row["other"] == found["other_exits"] + found["in_queue"]
        assert row["service_level_pct"] == pct(found["service_level"])
    assert sum(r["offered"] for r in hourly) == 7 and hourly[6]["offered"] == 7


def test_agents_are_those_of_the_file_over_the_window(office: Path) -> None:
    """Against agents() over the file itself, not the store nor the window helpers. (The CLI's
    `queue agents` clips to the wall clock, the report to its own ``now``: on the day itself
    they differ by design.)"""
    section = report_of(office)["queues"]
    lo, hi = window_bounds(DAY, UTC)
    lines = list(read_lines(QUEUE_LOG.read_text(encoding="utf-8").splitlines()))
    expected = agents(lines, since=lo, until=hi, aliases=ALIASES)
    assert [a["agent"] for a in section["agents"]] == [
        "Anna Smirnova",
        "Boris Petrov",
        "Вера Иванова",
    ]
    for got, row in zip(section["agents"], expected, strict=True):
        assert got["agent"] == row.agent
        assert (got["taken"], got["rang_unanswered"], got["talk"]) == (
            row.taken,
            row.rang_unanswered,
            row.talk,
        )
        assert (got["logged_in"], got["paused_total"], got["paused"]) == (
            row.logged_in,
            row.paused_total,
            row.paused,
        )
        assert got["occupancy_pct"] == pct(row.occupancy)
    vera = section["agents"][2]
    # added by the manager at 06:31:53, took one 3 s call, removed 5 s later
    assert (vera["taken"], vera["talk"], vera["logged_in"], vera["occupancy_pct"]) == (
        1,
        3,
        5,
        60.0,
    )
    assert section["agents"][1]["paused"] == {"lunch": 5}


def test_text_carries_the_section(office: Path) -> None:
    text = render_text(report_of(office))
    assert "\nQueues\n======\n" in text and "\nAgents\n======\n" in text
    assert "\nQueued calls per hour\n" in text
    assert re.search(r"^700 +6 +4 +1 +1 +1 +20 +80 +0:03 +0:10 +0:10 +0:02$", text, re.M)
    assert re.search(r"^701 +1 +1 +0 +0 +0 +3 +0 ", text, re.M)
    assert re.search(r"^All queues +7 +5 +1 +1 +1 +66\.7 ", text, re.M)
    assert re.search(r"^Boris Petrov +1 +2 +0:03 .* lunch 0:05$", text, re.M)
    assert re.search(r"^06:00 +7 +5 +1 +1 +0 +66\.7$", text, re.M)
    assert "short abandons (within 5 s)" in text
    # the section sits between the extensions and the end
    assert text.index("\nExtensions\n") < text.index("\nQueues\n") < text.index("\nAgents\n")
    russian = render_text(report_of(office, language="ru"))
    assert "\nОчереди\n" in russian and "\nОператоры\n" in russian
    assert re.search(r"^Все очереди +7 +5 ", russian, re.M)


def test_html_carries_the_section_and_its_chart(office: Path) -> None:
    report = report_of(office)
    page = render(report, "html").decode()
    seen = parse(page)
    assert seen.ids[-2:] == ["queues", "agents"]
    chart = next(i for i in seen.images if i["alt"] == "Queued calls per hour")
    assert base64.b64decode(str(chart["src"]).split(",", 1)[1]).startswith(PNG)
    assert seen.scripts == 0 and seen.external == []
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", page[page.index('<h2 id="queues">') :])
    for queue in report["queues"]["by_queue"]:
        at = cells.index(queue["queue"])
        assert cells[at : at + 8] == [
            queue["queue"],
            str(queue["offered"]),
            str(queue["answered"]),
            str(queue["abandoned"]),
            str(queue["short_abandoned"]),
            str(queue["timed_out"]),
            str(queue["target_seconds"]),
            f"{queue['service_level_pct']:.1f}",
        ]
    assert "All queues" in cells and "lunch 0:05" in cells
    assert '<tr class="total">' in page


def test_the_page_with_queues_in_a_browser(office: Path, tmp_path: Path) -> None:
    seen = probe(render(report_of(office), "html").decode(), tmp_path)
    assert seen["errors"] == []
    assert [i["alt"] for i in seen["images"]] == ["Inbound calls per hour", "Queued calls per hour"]
    assert all(i["width"] == 800 and i["height"] >= 300 for i in seen["images"])
    assert seen["headings"][-2:] == ["Queues", "Agents"]


def test_xlsx_has_sheets_of_its_own(office: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    report = report_of(office)
    book = openpyxl.load_workbook(io.BytesIO(render(report, "xlsx")))
    names = book.sheetnames
    assert names[names.index("extensions") + 1 :] == [
        "queues",
        "queue_agents",
        "queue_hourly",
        "recordings",
    ]
    queues = book["queues"]
    header = [c.value for c in queues[1]]
    assert header[:3] == ["Queue", "Offered", "Answered"] and "SL, %" in header
    table = [dict(zip(header, (c.value for c in row), strict=True)) for row in queues.iter_rows(2)]
    section = report["queues"]
    assert [r["Queue"] for r in table] == ["700", "701", "(all)"]
    for row, want in zip(table, [*section["by_queue"], section["total"]], strict=True):
        assert (row["Offered"], row["Answered"], row["Abandoned"], row["SL, %"]) == (
            want["offered"],
            want["answered"],
            want["abandoned"],
            want["service_level_pct"],
        )
    people = book["queue_agents"]
    assert [c.value for c in people[1]][:2] == ["Agent", "Taken"]
    assert [people.cell(row=r, column=2).value for r in (2, 3, 4)] == [3, 1, 1]
    assert people.cell(row=3, column=8).value == "lunch 0:05"
    hours = book["queue_hourly"]
    assert hours.max_row == 25 and len(hours._charts) == 1
    assert sum(hours.cell(row=r, column=2).value for r in range(2, 26)) == 7


def test_json_and_csv_carry_the_section(office: Path) -> None:
    report = report_of(office)
    assert json.loads(render_json(report))["queues"] == report["queues"]
    csv = render_csv(report)
    assert "\n# queues\nqueue,offered,answered," in csv
    assert "\n700,6,4,1,1,1,0,0,20,80.0,3.3,10,10,2.5\n" in csv
    assert "\n# queue_agents\n" in csv and "\n# queue_hourly\n" in csv


def test_a_day_of_agents_and_no_calls(tmp_path: Path, office: Path) -> None:
    """Lines in the period but no queued call: the section says so and shows the agents."""
    at = int(datetime(2026, 12, 4, 9, tzinfo=UTC).timestamp())
    log = tmp_path / "queue_log"
    log.write_text(
        f"{at}|MANAGER|700|Anna Smirnova|ADDMEMBER|\n"
        f"{at + 600}|NONE|700|Anna Smirnova|PAUSE|training\n"
        f"{at + 1500}|NONE|700|Anna Smirnova|UNPAUSE|\n"
        f"{at + 3600}|MANAGER|700|Anna Smirnova|REMOVEMEMBER|\n",
        encoding="utf-8",
    )
    store = QueueStore(Settings.load(office, environ={}).get(CdrSettings).store_path())
    try:
        store.import_file(log)
    finally:
        store.close()
    loaded = Settings.load(office, environ={})
    day = day_window(date(2026, 12, 4))
    report = make_report(loaded, day, options(loaded, language="en"), NOW)
    section = report["queues"]
    assert section["by_queue"] == [] and section["total"] is None
    (anna,) = section["agents"]
    assert (anna["logged_in"], anna["paused"], anna["taken"]) == (3600, {"training": 900}, 0)
    text = render_text(report)
    assert "\nQueues\n======\nno data\n" in text and "SL (service level)" not in text
    assert re.search(r"^Anna Smirnova +0 +0 +0:00 +1:00:00 +15:00 +0 +training 15:00$", text, re.M)
    seen = parse(render(report, "html").decode())
    assert seen.ids[-2:] == ["queues", "agents"]
    assert [i["alt"] for i in seen.images] == []  # no call: neither chart


def test_switched_off_by_option_and_setting(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "queues" not in report_of(office, queues=False)
    base = ["--config", str(office), "cdr", "report", *CLI_DAY, "--format", "json"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["queues"]["by_queue"][0]["offered"] == 6
    assert main([*base, "--no-queues"]) == 0
    assert "queues" not in json.loads(capsys.readouterr().out)
    office.write_text(office.read_text(encoding="utf-8") + "queues = false\n", encoding="utf-8")
    assert "queues" not in report_of(office)
    assert main(base) == 0
    assert "queues" not in json.loads(capsys.readouterr().out)
    assert main([*base, "--queues"]) == 0
    assert "queues" in json.loads(capsys.readouterr().out)


def test_a_queue_source_that_cannot_be_read_is_one_line(
    office: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only an empty or missing store means "no queues here"; a source the admin named fails
    the report as it fails `pbxgate queue stats`."""
    text = office.read_text(encoding="utf-8").replace(
        "[queue.service_levels]", '[queue]\nsource = "nowhere"\n[queue.service_levels]'
    )
    office.write_text(text, encoding="utf-8")
    code = main(["--config", str(office), "cdr", "report", *CLI_DAY])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: unknown CDR source 'nowhere'")
    assert err.count("\n") == 1


def test_scheduled_mails_carry_the_section_unless_switched_off(
    office: Path,
    smtp_server: tuple[Sink, int],  # noqa: F811
) -> None:
    sink, port = smtp_server
    schedules = (
        f"[report.smtp]\nport = {port}\n"
        '[report.schedules.centre]\ncron = "0 7 * * *"\nto = ["centre@example.org"]\n'
        'format = "xlsx"\nlanguage = "en"\n'
        '[report.schedules.owner]\ncron = "0 7 * * *"\nto = ["owner@example.org"]\n'
        'format = "csv"\nlanguage = "en"\nqueues = false\n'
    )
    office.write_text(office.read_text(encoding="utf-8") + schedules, encoding="utf-8")
    settings = Settings.load(office, environ={})
    clock = FakeClock(
        datetime(2026, 12, 6, 6, tzinfo=UTC), until=datetime(2026, 12, 6, 9, tzinfo=UTC)
    )
    asyncio.run(run_schedules(settings, asyncio.Event(), clock=clock))
    sent = {rcpts[0]: parse_mail(raw) for rcpts, raw in sink.messages}
    assert sorted(sent) == ["centre@example.org", "owner@example.org"]
    centre, owner = sent["centre@example.org"], sent["owner@example.org"]
    assert "\nQueues\n======\n" in _plain(centre) and "Queues" not in _plain(owner)
    assert _inline_images(centre) == ["hourly.png", "queues.png"]
    assert _inline_images(owner) == ["hourly.png"]
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.load_workbook(io.BytesIO(next(centre.iter_attachments()).get_content()))
    assert book["queues"].cell(row=2, column=2).value == 6
    assert "# queues" not in next(owner.iter_attachments()).get_content()


def _plain(msg: EmailMessage) -> str:
    body = msg.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def _inline_images(msg: EmailMessage) -> list[str]:
    return [str(p.get_filename()) for p in msg.walk() if p.get_content_type() == "image/png"]


# A report whose period has no queue_log line is the one it was before: the fixture day of
# tests/cdr (2016) through the whole service path, against the goldens that predate queues.
def _no_store(settings: Settings) -> None:
    assert not settings.get(CdrSettings).store_path().exists()


def _cdr_store_only(settings: Settings) -> None:
    Store.open_sqlite(settings.get(CdrSettings).store_path()).insert(LEGS)


def _lines_of_another_day(settings: Settings) -> None:
    import_queue_log(settings)


@pytest.mark.parametrize("setup", [_no_store, _cdr_store_only, _lines_of_another_day])
def test_no_queue_lines_leave_the_report_as_it_was(tmp_path: Path, setup: Any) -> None:
    settings = Settings.load(write_config(tmp_path), environ={})
    setup(settings)
    reports = {
        lang: make_report(settings, FIXTURE_DAY, options(settings, language=lang), FIXTURE_NOW)
        for lang in ("ru", "en")
    }
    assert all("queues" not in r for r in reports.values())
    for lang, report in reports.items():
        for suffix, text in (
            ("txt", render_text(report)),
            ("json", render_json(report)),
            ("csv", render_csv(report)),
        ):
            golden = REPORT_GOLDENS / f"report_day_{lang}.{suffix}"
            assert text == golden.read_text(encoding="utf-8"), golden.name
    html = render_html(reports["en"], {"hourly": "cid:hourly"})
    assert html == (REPORT_GOLDENS / "report_day_en.html").read_text(encoding="utf-8")
    store = settings.get(CdrSettings).store_path()
    if store.exists():  # asked read-only: a CDR store without queue_log is left without one
        con = sqlite3.connect(store)
        tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master")}
        con.close()
        assert ("queue_log" in tables) == (setup is _lines_of_another_day)


def test_queues_is_set_per_report_and_per_schedule() -> None:
    """``[report] queues`` for every report, a schedule's own ``queues`` over it."""
    raw = tomllib.loads(
        '[report]\nqueues = false\n[report.schedules.daily]\ncron = "0 7 * * *"\n'
        'to = ["a@example.org"]\nqueues = true\n'
    )
    settings = Settings(raw, environ={})
    rep = settings.get(ReportSettings)
    assert rep.queues is False and rep.schedules["daily"].queues is True
    assert options(settings).queues is False
    assert options(settings, queues=rep.schedules["daily"].queues).queues is True
