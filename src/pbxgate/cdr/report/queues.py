"""The report's Queues section: call-centre numbers from Asterisk's queue_log (docs/queue.md).

Read as ``pbxgate queue stats`` and ``pbxgate queue agents`` read a window, through the same
functions (:mod:`pbxgate.queue.report`), so the report and those commands give the same numbers:
a call counts in the window it entered the queue in, agents' time is clipped to the window and
to ``now``; service levels are each queue's own target (``[queue] service_level`` and
``[queue.service_levels]``), hours are the ``[cdr] timezone``'s.

The section is there only when ``[queue] source`` has lines in the window: an office without
queues (no store, or no queue_log line in it) gets the report it always had, key for key.
:func:`collect_queues` reads; :func:`queue_section` is pure, queued calls in, dict out (plain
values, as the rest of the report).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from pbxgate.cdr.report.build import QUEUE_OUTCOMES
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import Window, zone
from pbxgate.config import Settings
from pbxgate.notify.timezone import local_time
from pbxgate.queue.agents import AgentStats
from pbxgate.queue.log import QueuedCall
from pbxgate.queue.report import agent_lines, open_report_source, window_agents, window_calls
from pbxgate.queue.settings import QueueSettings
from pbxgate.queue.source import epoch_of, window_bounds
from pbxgate.queue.stats import GROUPINGS, QueueStats, by, summarise

ALL_QUEUES = "(all)"  # the total row's key, as "(not answered)" in `queue stats --by agent`


@dataclass(frozen=True)
class QueueWindow:
    """What the queue source holds for a report's window."""

    calls: list[QueuedCall]
    agents: list[AgentStats]


def collect_queues(
    cdr: CdrSettings, queue: QueueSettings, window: Window, now: datetime
) -> QueueWindow | None:
    """The window's queued calls and agents; None when the source has no line in it."""
    display = zone(cdr.timezone)
    source = open_report_source(cdr, queue)
    if source is None:
        return None
    try:
        lo, hi = window_bounds(window, display)
        lines = agent_lines(source, lo, hi)
        if not any(lo <= line.time < hi for line in lines):
            return None
        rows = window_agents(lines, lo, hi, now=epoch_of(now, display), aliases=queue.members)
        return QueueWindow(window_calls(source, lo, hi), rows)
    finally:
        source.close()


def queue_section(
    data: QueueWindow, queue: QueueSettings, display: tzinfo | None
) -> dict[str, Any]:
    """Per queue (and all of them, when there are several), per agent, per hour of the day."""
    targets: dict[str, Any] = {
        "service_level": queue.service_level,
        "short_abandon": queue.short_abandon,
        "per_queue": queue.service_levels,
    }
    queues = by(data.calls, GROUPINGS["queue"], **targets)
    total = summarise(data.calls, ALL_QUEUES, **targets) if len(queues) > 1 else None
    hours = by(data.calls, lambda c: f"{local_time(c.entered_at, display).hour:02d}", **targets)
    found = {int(row.key): row for row in hours}
    return {
        "short_abandon": queue.short_abandon,
        "by_queue": [_queue_row(row, queue.threshold(row.key)) for row in queues],
        "total": None if total is None else _queue_row(total, None),
        "agents": [_agent_row(row) for row in data.agents],
        "hourly": [_hour_row(hour, found.get(hour)) for hour in range(24)],
    }


def queue_report(settings: Settings, window: Window, now: datetime) -> dict[str, Any] | None:
    """The section of ``window`` from the configured queue source, or None (no lines)."""
    cdr, queue = settings.get(CdrSettings), settings.get(QueueSettings)
    data = collect_queues(cdr, queue, window, now)
    return None if data is None else queue_section(data, queue, zone(cdr.timezone))


def _pct(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 1)


def _queue_row(row: QueueStats, target: int | None) -> dict[str, Any]:
    return {
        "queue": row.key,
        "offered": row.offered,
        "answered": row.answered,
        "abandoned": row.abandoned,
        "short_abandoned": row.short_abandoned,
        "timed_out": row.timed_out,
        "other_exits": row.other_exits,
        "in_queue": row.in_queue,
        "target_seconds": target,
        "service_level_pct": _pct(row.service_level),
        "wait_avg": round(row.wait_avg, 1),
        "wait_p90": row.wait_p90,
        "wait_max": row.wait_max,
        "talk_avg": round(row.talk_avg, 1),
    }


def _agent_row(row: AgentStats) -> dict[str, Any]:
    return {
        "agent": row.agent,
        "taken": row.taken,
        "rang_unanswered": row.rang_unanswered,
        "talk": row.talk,
        "logged_in": row.logged_in,
        "paused_total": row.paused_total,
        "occupancy_pct": _pct(row.occupancy),
        "paused": dict(sorted(row.paused.items())),
    }


def _hour_row(hour: int, row: QueueStats | None) -> dict[str, Any]:
    if row is None:
        empty = dict.fromkeys(("offered", *QUEUE_OUTCOMES), 0)
        return {"hour": hour, **empty, "service_level_pct": None}
    return {
        "hour": hour,
        "offered": row.offered,
        "answered": row.answered,
        "abandoned": row.abandoned,
        "timed_out": row.timed_out,
        "other": row.other_exits + row.in_queue,
        "service_level_pct": _pct(row.service_level),
    }


__all__ = [
    "ALL_QUEUES",
    "QueueWindow",
    "collect_queues",
    "queue_report",
    "queue_section",
]
