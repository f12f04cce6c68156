"""A scheduled report end to end: settings -> cron -> report from SQLite -> aiosmtpd, and the
hook that ``pbxgate serve`` uses."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from pbxgate.cdr.report.schedule import run_schedules, schedules_task
from pbxgate.cli.main import main
from pbxgate.config import Settings
from tests.report.helpers import write_config
from tests.report.test_mail import Sink, parse, smtp_server  # noqa: F401 - fixture
from tests.report.test_schedule import FakeClock, msk


def scheduled(tmp_path: Path, port: int, schedule: str) -> Settings:
    """The fixture day's settings with ``schedule`` (its table, 07:00, to boss, as CSV) mailing
    through ``port``, run from 06:00 to 09:00 on the next day."""
    cfg = write_config(
        tmp_path,
        smtp=f"[report.smtp]\nport = {port}\n",
        extra=(
            f'[report.schedules.{schedule}]\ncron = "0 7 * * *"\nto = ["boss@example.org"]\n'
            'format = "csv"\nlanguage = "en"\n'
        ),
    )
    settings = Settings.load(cfg, environ={})
    clock = FakeClock(msk("2016-03-19 06:00"), until=msk("2016-03-19 09:00"))
    asyncio.run(run_schedules(settings, asyncio.Event(), clock=clock))
    return settings


def test_scheduled_report_is_mailed_once(tmp_path: Path, smtp_server: tuple[Sink, int]) -> None:  # noqa: F811
    sink, port = smtp_server
    settings = scheduled(tmp_path, port, "daily")
    ((rcpts, raw),) = sink.messages
    msg = parse(raw)
    assert rcpts == ["boss@example.org"]
    assert msg["Subject"] == "Call report: 2016-03-18 — Calls 10, missed 4"
    assert msg["Message-ID"] == "<report.daily.201603180000@pbxgate>"
    attachment = next(msg.iter_attachments())
    assert attachment.get_filename() == "calls-2016-03-18.csv"
    assert attachment.get_content().startswith("# period\n")
    # The same period again (a restart): nothing more is sent.
    again = FakeClock(msk("2016-03-19 08:00"), until=msk("2016-03-19 09:00"))
    asyncio.run(run_schedules(settings, asyncio.Event(), clock=again))
    assert len(sink.messages) == 1


def test_a_month_is_mailed_with_its_file_named_by_its_last_day(
    tmp_path: Path,
    smtp_server: tuple[Sink, int],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A month's attachment was ``calls-2016-03-01..2016-04-01.xlsx``, a day past the one the
    subject names; scheduled (period = "month") and from the CLI alike."""
    sink, port = smtp_server
    cfg = write_config(
        tmp_path,
        smtp=f"[report.smtp]\nport = {port}\n",
        extra=(
            '[report.schedules.monthly]\ncron = "0 7 1 * *"\nto = ["boss@example.org"]\n'
            'period = "month"\nformat = "xlsx"\nlanguage = "en"\n'
        ),
    )
    settings = Settings.load(cfg, environ={})
    clock = FakeClock(msk("2016-04-01 06:00"), until=msk("2016-04-01 09:00"))
    asyncio.run(run_schedules(settings, asyncio.Event(), clock=clock))
    month = ["--from", "2016-03-01", "--to", "2016-03-31", "--format", "csv", "--language", "en"]
    code = main(["--config", str(cfg), "cdr", "report", *month, "--mail", "boss@example.org"])
    assert code == 0, capsys.readouterr().err
    names = []
    for _, raw in sink.messages:
        msg = parse(raw)
        assert msg["Subject"].startswith("Call report: 2016-03-01 – 2016-03-31 — ")
        names += [a.get_filename() for a in msg.iter_attachments()]
    assert names == ["calls-2016-03-01..2016-03-31.xlsx", "calls-2016-03-01..2016-03-31.csv"]


def test_a_schedule_named_in_russian_is_mailed(
    tmp_path: Path,
    smtp_server: tuple[Sink, int],  # noqa: F811
) -> None:
    """A schedule's name went into the Message-ID as it was: "утренний" could not be encoded,
    the error blamed the SMTP password, and the report was never sent."""
    sink, port = smtp_server
    scheduled(tmp_path, port, '"утренний отчёт"')
    ((_, raw),) = sink.messages
    msg_id = parse(raw)["Message-ID"]
    assert msg_id.isascii() and " " not in msg_id and msg_id.endswith(".201603180000@pbxgate>")


def test_serve_starts_the_scheduler_only_when_schedules_exist(tmp_path: Path) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        assert schedules_task(Settings({}, environ={}), stop) is None
        raw = {
            "report": {
                "state": str(tmp_path / "s.sqlite3"),
                "schedules": {"d": {"cron": "@daily", "to": ["a@b.c"]}},
            }
        }
        task = schedules_task(Settings(raw, environ={}), stop)
        assert task is not None
        stop.set()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())


def test_importing_the_scheduler_loads_no_plotting_or_spreadsheet_library() -> None:
    code = (
        "import sys, pbxgate.cdr.report, pbxgate.cdr.report.schedule, pbxgate.cli.main;"
        "print(sorted(m for m in ('matplotlib', 'openpyxl', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["render", "run_schedules", "ReportSettings"])
def test_package_exports(name: str) -> None:
    from pbxgate.cdr import report

    assert callable(getattr(report, name))
    with pytest.raises(AttributeError):
        _ = report.nothing_here
