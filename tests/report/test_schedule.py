"""Scheduled reports under an injected clock: on time, retried, never twice, caught up."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxgate.cdr.report.mail import SmtpError
from pbxgate.cdr.report.schedule import Plan, load_plans, retry_delay, run_schedules
from pbxgate.cdr.report.sentlog import SentLog
from pbxgate.cdr.window import Window
from pbxgate.config import Settings
from pbxgate.errors import ConfigError, DeliveryError

MSK = ZoneInfo("Europe/Moscow")


class FakeClock:
    """Jumps instead of sleeping; sets ``stop`` once time would pass ``until``."""

    def __init__(self, start: datetime, until: datetime) -> None:
        self.t = start
        self.until = until
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self.t

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        self.waits.append(seconds)
        if self.t + timedelta(seconds=seconds) > self.until:
            stop.set()
            return
        self.t += timedelta(seconds=max(0.0, seconds))
        await asyncio.sleep(0)


class Recorder:
    """A ``deliver`` that records what would be sent; fails the first ``failures`` calls."""

    def __init__(self, clock: FakeClock, failures: int = 0) -> None:
        self.clock = clock
        self.failures = failures
        self.sent: list[tuple[str, str, str, str]] = []
        self.tries: list[str] = []

    def __call__(self, plan: Plan, window: Window, message_id: str) -> None:
        at = self.clock.t.astimezone(MSK).strftime("%m-%d %H:%M")
        self.tries.append(at)
        if self.failures:
            self.failures -= 1
            raise DeliveryError("cannot reach SMTP server 127.0.0.1:25: Connection refused")
        self.sent.append((plan.name, f"{window.start:%Y-%m-%d}", at, message_id))


def settings_for(tmp_path: Path, **schedule: Any) -> Settings:
    sched = {"cron": "0 7 * * *", "to": ["boss@example.org"], "timezone": "Europe/Moscow"}
    sched.update(schedule)
    raw = {
        "cdr": {"timezone": "Europe/Moscow"},
        "report": {"state": str(tmp_path / "sent.sqlite3"), "schedules": {"daily": sched}},
    }
    return Settings(raw, environ={})


def msk(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=MSK).astimezone(UTC)


def run(settings: Settings, clock: FakeClock, deliver: Recorder) -> None:
    asyncio.run(run_schedules(settings, asyncio.Event(), clock=clock, deliver=deliver))


def test_daily_report_fires_at_seven_for_yesterday(tmp_path: Path) -> None:
    clock = FakeClock(msk("2026-11-26 05:00"), until=msk("2026-11-28 08:00"))
    deliver = Recorder(clock)
    run(settings_for(tmp_path), clock, deliver)
    assert deliver.sent == [
        ("daily", "2026-11-25", "11-26 07:00", "<report.daily.202611250000@pbxgate>"),
        ("daily", "2026-11-26", "11-27 07:00", "<report.daily.202611260000@pbxgate>"),
        ("daily", "2026-11-27", "11-28 07:00", "<report.daily.202611270000@pbxgate>"),
    ]
    assert clock.waits[0] == 2 * 3600  # slept straight to the first fire time


def test_weekly_report_covers_the_last_seven_days(tmp_path: Path) -> None:
    clock = FakeClock(msk("2026-11-26 05:00"), until=msk("2026-12-01 00:00"))
    deliver = Recorder(clock)
    run(settings_for(tmp_path, cron="30 8 * * mon", period="week"), clock, deliver)
    assert [(s[1], s[2]) for s in deliver.sent] == [("2026-11-23", "11-30 08:30")]


def test_a_failed_send_is_retried_with_backoff_and_sent_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(msk("2026-11-26 06:00"), until=msk("2026-11-27 06:00"))
    deliver = Recorder(clock, failures=3)
    with caplog.at_level(logging.WARNING):
        run(settings_for(tmp_path), clock, deliver)
    # retry_seconds 300, doubling: +5, +10, +20 minutes.
    assert deliver.tries == ["11-26 07:00", "11-26 07:05", "11-26 07:15", "11-26 07:35"]
    assert [s[1] for s in deliver.sent] == ["2026-11-25"]
    assert "not sent (attempt 1)" in caplog.text and "Connection refused" in caplog.text
    assert SentLog(tmp_path / "sent.sqlite3").was_sent("daily", "2026-11-25 00:00:00")


def test_a_restart_never_sends_the_same_report_twice(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = FakeClock(msk("2026-11-26 06:00"), until=msk("2026-11-26 07:30"))
    deliver = Recorder(first)
    run(settings, first, deliver)
    assert len(deliver.sent) == 1
    # Restarted at 07:40: the 07:00 fire is inside catch_up_hours but already in the sent log.
    again = FakeClock(msk("2026-11-26 07:40"), until=msk("2026-11-27 06:00"))
    deliver2 = Recorder(again)
    run(settings, again, deliver2)
    assert deliver2.tries == []


def test_a_service_that_was_down_catches_up_once(tmp_path: Path) -> None:
    clock = FakeClock(msk("2026-11-26 10:00"), until=msk("2026-11-26 12:00"))
    deliver = Recorder(clock)
    run(settings_for(tmp_path), clock, deliver)
    assert [(s[1], s[2]) for s in deliver.sent] == [("2026-11-25", "11-26 10:00")]
    # Too late to catch up (more than catch_up_hours): wait for tomorrow.
    late = FakeClock(msk("2026-11-26 20:00"), until=msk("2026-11-26 23:00"))
    deliver2 = Recorder(late)
    run(settings_for(tmp_path / "other"), late, deliver2)
    assert deliver2.tries == []


def test_gives_up_after_give_up_hours_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(msk("2026-11-26 06:00"), until=msk("2026-11-27 07:02"))
    deliver = Recorder(clock, failures=10**6)
    with caplog.at_level(logging.ERROR):
        run(settings_for(tmp_path), clock, deliver)
    assert "giving up" in caplog.text
    assert deliver.sent == []
    # 07:00, +5, +10, +20, +40 minutes, then hourly (08:15 .. 23:15), and on until the last
    # try 24 hours after the fire time, when the next day's report is due too.
    assert len([t for t in deliver.tries if t.startswith("11-26")]) == 5 + 15
    assert deliver.tries[-3:] == ["11-27 06:15", "11-27 07:00", "11-27 07:00"]


def test_a_refusal_for_good_is_not_tried_again_until_the_next_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An SMTP 5yz (a refused login, an unknown mailbox) is the same the next time: the report
    is not built and refused again for 24 hours (a login refused every hour can lock the
    account); the next day's report is tried as usual."""
    clock = FakeClock(msk("2026-11-26 06:00"), until=msk("2026-11-27 08:00"))
    tries: list[str] = []

    def refused(plan: Plan, window: Window, message_id: str) -> None:
        tries.append(clock.t.astimezone(MSK).strftime("%m-%d %H:%M"))
        raise SmtpError("SMTP server 127.0.0.1:25 refused the login for pbx: 535", permanent=True)

    with caplog.at_level(logging.WARNING):
        asyncio.run(run_schedules(settings_for(tmp_path), asyncio.Event(), clock=clock,
                                  deliver=refused))  # fmt: skip
    assert tries == ["11-26 07:00", "11-27 07:00"]
    assert caplog.text.count("not tried again") == 2
    assert "535" in caplog.text


def test_retry_delay_doubles_up_to_an_hour() -> None:
    assert [retry_delay(n, 300) for n in (1, 2, 3, 4, 5, 6, 9)] == [
        300,
        600,
        1200,
        2400,
        3600,
        3600,
        3600,
    ]


def test_stop_ends_the_loop_without_sending(tmp_path: Path) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        stop.set()
        clock = FakeClock(msk("2026-11-26 07:00"), until=msk("2026-11-27 07:00"))
        deliver = Recorder(clock)
        await run_schedules(settings_for(tmp_path), stop, clock=clock, deliver=deliver)
        assert deliver.tries == []

    asyncio.run(main())


def test_bad_schedules_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[report.schedules.daily\]: cron expression"):
        load_plans(settings_for(tmp_path, cron="0 25 * * *"))
    with pytest.raises(ConfigError, match="period must be one of"):
        load_plans(settings_for(tmp_path, period="decade"))
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_plans(settings_for(tmp_path, timezone="Mars/Olympus"))
    assert load_plans(Settings({}, environ={})) == []


def test_a_cron_that_never_fires_is_refused_at_start(tmp_path: Path) -> None:
    """ "0 7 30 2 *" parses; it used to end the schedules' task at its first wait, silently,
    and with it every other schedule."""
    with pytest.raises(ConfigError, match=r"\[report.schedules.daily\]: .* never fires"):
        load_plans(settings_for(tmp_path, cron="0 7 30 2 *"))


def test_a_today_report_fires_as_often_as_its_cron_says(tmp_path: Path) -> None:
    """period = "today" at 12:00 and 18:00: both go (the sent log knew a report by its
    period's start alone, so the second was taken for sent)."""
    clock = FakeClock(msk("2026-11-26 11:00"), until=msk("2026-11-26 19:00"))
    deliver = Recorder(clock)
    run(settings_for(tmp_path, cron="0 12,18 * * *", period="today"), clock, deliver)
    assert [s[2] for s in deliver.sent] == ["11-26 12:00", "11-26 18:00"]
    assert len({s[3] for s in deliver.sent}) == 2  # each its own Message-ID


def test_a_sent_log_that_fails_stops_no_schedule(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sent log's errors (a folder not writable, a locked file) ended the task, silently,
    and every schedule with it; they are a failed attempt now, tried again."""
    clock = FakeClock(msk("2026-11-26 06:00"), until=msk("2026-11-26 08:00"))
    deliver = Recorder(clock)
    calls = [0]
    real = SentLog.was_sent

    def flaky(self: SentLog, name: str, key: str) -> bool:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("database is locked")
        return real(self, name, key)

    with caplog.at_level(logging.WARNING), pytest.MonkeyPatch.context() as mp:
        mp.setattr(SentLog, "was_sent", flaky)
        run(settings_for(tmp_path), clock, deliver)
    assert [s[1] for s in deliver.sent] == ["2026-11-25"]
    assert "database is locked" in caplog.text


def test_a_schedule_in_the_host_s_zone_keeps_to_it_across_summer_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no zone set, the host's was taken as the fixed offset of the start: after the
    next change of summer time a daily report came an hour off, and one day was skipped."""
    from pbxgate.cdr.report.cron import next_fire

    monkeypatch.setenv("TZ", "Europe/Berlin")
    raw = {"report": {"state": str(tmp_path / "sent.sqlite3"), "schedules": {
        "daily": {"cron": "0 0 * * *", "to": ["boss@example.org"]}}}}  # fmt: skip
    (plan,) = load_plans(Settings(raw, environ={}))
    berlin = ZoneInfo("Europe/Berlin")
    after = datetime(2026, 10, 23, 12, tzinfo=berlin)  # summer time ends on 10-25
    fires = []
    for _ in range(4):
        after = next_fire(plan.cron, plan.tz, after)
        fires.append(after.astimezone(berlin).strftime("%m-%d %H:%M"))
    assert fires == ["10-24 00:00", "10-25 00:00", "10-26 00:00", "10-27 00:00"]


def test_two_processes_of_one_host_send_each_report_once(tmp_path: Path) -> None:
    """Two schedulers on one sent log each found the report not yet sent, sent it, then
    noted it: twice. One sends; the other waits its turn."""
    import time

    sent: list[str] = []

    def deliver(tag: str):  # type: ignore[no-untyped-def]
        def send(plan: Plan, window: Window, message_id: str) -> None:
            time.sleep(0.2)  # an SMTP session takes a moment
            sent.append(tag)

        return send

    async def main() -> None:
        clocks = [FakeClock(msk("2026-11-26 06:59"), until=msk("2026-11-26 08:00"))
                  for _ in range(2)]  # fmt: skip
        await asyncio.gather(
            *(run_schedules(settings_for(tmp_path), asyncio.Event(), clock=clock,
                            deliver=deliver(tag)) for clock, tag in zip(clocks, "AB", strict=True))
        )  # fmt: skip

    asyncio.run(main())
    assert len(sent) == 1


def test_a_today_report_caught_up_on_start_is_sent_once(tmp_path: Path) -> None:
    """Each fire of a today report is its own: started at 17:30 after missing 09:00-17:00,
    only the latest goes (it sent one for every missed hour)."""
    clock = FakeClock(msk("2026-11-26 17:30"), until=msk("2026-11-26 17:59"))
    deliver = Recorder(clock)
    run(settings_for(tmp_path, cron="0 9-18 * * *", period="today"), clock, deliver)
    assert [s[2] for s in deliver.sent] == ["11-26 17:30"]
