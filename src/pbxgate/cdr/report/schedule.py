"""Scheduled reports: ``[report.schedules.*]`` fired by cron expressions inside ``pbxgate serve``.

Theory of operation. Each schedule has one pending :class:`Job`: the fire time, the period it
reports on (``yesterday`` of the fire time, read in the [cdr] zone) and when to try it (``due``).
The loop sleeps until the earliest ``due`` (or ``stop``), then for each due job: skip it if the
sent log has it, else build and mail the report in a thread. Success is recorded and the job
moves to the next fire time; a failure is logged and tried again after ``retry_seconds``,
doubling up to an hour, until ``give_up_hours`` after the fire time; one that trying again
cannot mend (:attr:`SmtpError.permanent <pbxgate.cdr.report.mail.SmtpError>`: a refused login,
no such mailbox) waits for the next fire time. On start, fire times up to
``catch_up_hours`` back that are not in the sent log are sent: a service that was down at 07:00
still mails yesterday's report, once.

Time is an input: ``clock.now()`` gives the instant, ``clock.wait(seconds, stop)`` sleeps; tests
pass a clock that jumps instead of sleeping. The fire-time arithmetic is :mod:`.cron` (pure).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

from pbxgate.cdr.report.cron import Cron, next_fire
from pbxgate.cdr.report.sentlog import SentLog
from pbxgate.cdr.report.settings import ReportSettings, ScheduleSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import Window, host_zone, resolve_window, zone
from pbxgate.config import Settings
from pbxgate.errors import ConfigError, PbxgateError
from pbxgate.private import private_file

log = logging.getLogger(__name__)

MAX_RETRY_SECONDS = 3600.0


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        """Return after ``seconds`` or as soon as ``stop`` is set."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, seconds: float, stop: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))


@dataclass(frozen=True)
class Plan:
    """A configured schedule, parsed and checked."""

    name: str
    cron: Cron
    tz: tzinfo
    schedule: ScheduleSettings


@dataclass(frozen=True)
class Job:
    plan: Plan
    fire_at: datetime
    window: Window
    due: datetime
    attempts: int = 0

    @property
    def key(self) -> str:
        """What the sent log knows a report by: its period's start, and for ``today``, which
        may fire several times over one period (12:00 and 18:00), its fire time too."""
        key = self.window.start.strftime("%Y-%m-%d %H:%M:%S")
        if self.plan.schedule.period == "today":
            key += self.fire_at.astimezone(UTC).strftime(" fired %Y-%m-%d %H:%M:%S")
        return key

    @property
    def message_id(self) -> str:
        """The same for the same report (clients drop a repeat); a name that is not a plain
        ASCII word ("утренний", "daily report") goes in as a digest: a Message-ID is ASCII
        with no spaces."""
        name = self.plan.name
        if not _PLAIN.fullmatch(name):
            name = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
        when = f"{self.window.start:%Y%m%d%H%M}"
        if self.plan.schedule.period == "today":  # several a day: each its own
            when += f"-{self.fire_at.astimezone(UTC):%Y%m%d%H%M}"
        return f"<report.{name}.{when}@pbxgate>"


# A schedule's name as it may stand in a Message-ID.
_PLAIN = re.compile(r"[A-Za-z0-9_-]+")

# deliver(plan, window, message_id): build and send one report; raises PbxgateError.
Deliver = Callable[[Plan, Window, str], None]


def load_plans(settings: Settings) -> list[Plan]:
    """The configured schedules, checked now so that ``pbxgate serve`` fails at start."""
    rep = settings.get(ReportSettings)
    cdr = settings.get(CdrSettings)
    plans = []
    for name, sched in sorted(rep.schedules.items()):
        tz = zone(sched.timezone or cdr.timezone)
        if tz is None:  # the host's zone, with its rules (not the offset of the start)
            tz = host_zone()
        try:
            cron = Cron.parse(sched.cron)
            next_fire(cron, tz, datetime.now(UTC))  # "0 7 30 2 *" parses and never fires
        except ConfigError as exc:
            raise ConfigError(f"[report.schedules.{name}]: {exc}") from None
        plans.append(Plan(name, cron, tz, sched))
    return plans


def period_window(plan: Plan, fire_at: datetime, display: tzinfo | None) -> Window:
    """The period a report fired at ``fire_at`` covers, in the [cdr] (display) zone."""
    local = fire_at.astimezone(display) if display else fire_at.astimezone()
    return resolve_window(period=plan.schedule.period, now=local.replace(tzinfo=None))


def next_job(plan: Plan, after: datetime, display: tzinfo | None) -> Job:
    fire = next_fire(plan.cron, plan.tz, after)
    return Job(plan, fire, period_window(plan, fire, display), due=fire)


def retry_delay(attempts: int, base: float) -> float:
    """``base``, doubling with each failed attempt, at most an hour."""
    return float(min(MAX_RETRY_SECONDS, base * 2 ** max(0, attempts - 1)))


def deliver_report(settings: Settings, plan: Plan, window: Window, message_id: str) -> None:
    from pbxgate.cdr.report.service import mail_report, make_report, options  # noqa: PLC0415

    cdr = settings.get(CdrSettings)
    tz = zone(cdr.timezone)
    now = datetime.now(tz).replace(tzinfo=None) if tz else datetime.now()
    sched = plan.schedule
    opts = options(
        settings,
        period=sched.period,
        language=sched.language,
        source=sched.source,
        queues=sched.queues,
    )
    report = make_report(settings, window, opts, now)
    mail_report(settings, report, sched.to, sched.format, message_id=message_id)


async def run_schedules(
    settings: Settings,
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    deliver: Deliver | None = None,
) -> None:
    """Send the configured reports on time until ``stop`` is set."""
    plans = load_plans(settings)
    if not plans:
        return
    rep = settings.get(ReportSettings)
    display = zone(settings.get(CdrSettings).timezone)
    clock = clock or SystemClock()
    send = deliver or functools.partial(deliver_report, settings)
    sent = SentLog(rep.state_path())
    turn = _Turn(rep.state_path())
    try:
        while not turn.taken() and not stop.is_set():  # another process sends them now
            await clock.wait(TURN_POLL, stop)
        if not stop.is_set():
            await _schedule(plans, sent, send, rep, display, clock, stop)
    finally:
        turn.close()
        sent.close()


# How often a scheduler that found another process sending the reports looks again (seconds).
TURN_POLL = 60.0


class _Turn:
    """One process a host sends the scheduled reports: an flock of ``<sent log>.lock`` held
    for as long as it runs (two ``pbxgate serve`` on one host sent each report twice: each
    found it not yet sent, sent it, then noted it). Another takes over when it ends."""

    def __init__(self, state: Path) -> None:
        private_file(Path(f"{state}.lock"))
        self._fd = os.open(f"{state}.lock", os.O_RDWR)
        self._held = False
        self._said = False

    def taken(self) -> bool:
        if not self._held:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._held = True
            except BlockingIOError:
                if not self._said:
                    self._said = True
                    log.info("report schedules: another pbxgate process on this host sends "
                             "them; this one takes over if it ends")  # fmt: skip
        return self._held

    def close(self) -> None:
        os.close(self._fd)  # the lock goes with it


async def _schedule(
    plans: list[Plan],
    sent: SentLog,
    send: Deliver,
    rep: ReportSettings,
    display: tzinfo | None,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    start = clock.now()
    jobs = [next_job(p, start - timedelta(hours=rep.catch_up_hours), display) for p in plans]
    log.info("report schedules: %s", ", ".join(f"{j.plan.name} at {j.fire_at}" for j in jobs))
    while not stop.is_set():
        now = clock.now()
        for i, job in enumerate(jobs):
            if job.due <= now and not stop.is_set():
                jobs[i] = await _attempt(job, now, sent, send, rep, display)
        wake = min(j.due for j in jobs)
        await clock.wait((wake - clock.now()).total_seconds(), stop)


async def _attempt(
    job: Job,
    now: datetime,
    sent: SentLog,
    send: Deliver,
    rep: ReportSettings,
    display: tzinfo | None,
) -> Job:
    """Try ``job`` once; return the job to wait for next (a retry, or the next fire)."""
    name = job.plan.name
    if job.plan.schedule.period == "today" and job.attempts == 0:
        following = next_job(job.plan, job.fire_at, display)
        if following.fire_at <= now:  # caught up: only the latest of the day's reports
            return following
    try:
        if sent.was_sent(name, job.key):  # the sent log unreadable: tried again, as a failure
            return next_job(job.plan, job.fire_at, display)
        await asyncio.to_thread(send, job.plan, job.window, job.message_id)
    except Exception as exc:  # a bug in one report must not stop the others or the service
        attempts = job.attempts + 1
        reason = str(exc) if isinstance(exc, PbxgateError) else f"{type(exc).__name__}: {exc}"
        if getattr(exc, "permanent", False):  # the same refusal again: each try builds it anew
            log.error(
                "report %s for %s not sent: %s; not tried again (the server refuses it for "
                "good: the settings or the recipients need a change)",
                name,
                job.window.describe(),
                reason,
            )
            return next_job(job.plan, job.fire_at, display)
        if now - job.fire_at >= timedelta(hours=rep.give_up_hours):
            log.error(
                "report %s for %s not sent after %d attempts, giving up: %s",
                name,
                job.window.describe(),
                attempts,
                reason,
            )
            return next_job(job.plan, job.fire_at, display)
        last_try = job.fire_at + timedelta(hours=rep.give_up_hours)
        delay = min(retry_delay(attempts, rep.retry_seconds), (last_try - now).total_seconds())
        log.warning(
            "report %s for %s not sent (attempt %d): %s; trying again in %.0f s",
            name,
            job.window.describe(),
            attempts,
            reason,
            delay,
        )
        return replace(job, attempts=attempts, due=now + timedelta(seconds=delay))
    try:
        sent.mark_sent(name, job.key, now, job.plan.schedule.to)
    except Exception as exc:  # sent all the same: not sent again by this run
        log.error("report %s for %s was sent but could not be noted as sent (%s); a restart "
                  "may send it again", name, job.window.describe(), exc)  # fmt: skip
    log.info(
        "report %s for %s sent to %s", name, job.window.describe(), ", ".join(job.plan.schedule.to)
    )
    return next_job(job.plan, job.fire_at, display)


def schedules_task(settings: Settings, stop: asyncio.Event) -> asyncio.Task[None] | None:
    """Start :func:`run_schedules` beside the service; None when no schedule is configured.
    Bad schedules raise :class:`ConfigError` here, before the service starts."""
    if not load_plans(settings):
        return None
    task = asyncio.create_task(run_schedules(settings, stop), name="pbxgate-report-schedules")
    task.add_done_callback(_schedules_ended)
    return task


def _schedules_ended(task: asyncio.Task[None]) -> None:
    """The schedules' task ends only with the service: an error that ended it earlier (the
    sent log's folder not writable, say) stopped every report, and is said at once."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("report schedules stopped: %s; no report is sent until a restart", exc)


__all__ = [
    "Clock",
    "Deliver",
    "Job",
    "Plan",
    "SystemClock",
    "deliver_report",
    "load_plans",
    "next_job",
    "period_window",
    "retry_delay",
    "run_schedules",
    "schedules_task",
]
