"""The report as one plain dict (datasette style): computed once, then rendered many ways.

:func:`collect` is the only function here that reads the source: one bound range query that
covers the previous period (for the change), the period, and the call-back horizon after it.
:func:`assemble` is pure: calls in, dict out. Every value in the dict is a string, a number,
None, a list or a dict, so the JSON renderer is ``json.dumps`` and the goldens are stable.

What the report counts (reference cdr.md §6): one call = the legs that share a linkedid; KPIs as
in ``pbxgate cdr stats`` (ASR over all calls, ACD over answered calls, missed = inbound calls
nobody answered); the hourly chart, heat map, top callers, DIDs and extensions are about inbound
calls, the calls a manager reads the daily report for (the article's last paragraph).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from pbxgate.cdr.kpi import Kpis, compute, extension_of
from pbxgate.cdr.missed import missed_calls
from pbxgate.cdr.model import ANSWERED, BUSY, CANCEL, INBOUND, NO_ANSWER, Call
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import CALL_MARGIN, LEAN_COLUMNS, fetch_legs, group_calls
from pbxgate.cdr.recordings import resolve
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window

# The lean KPI columns plus the recording name.
REPORT_COLUMNS = sorted(LEAN_COLUMNS | {"recordingfile"})
OUTCOMES = ("answered", "no_answer", "busy", "failed")
# How a queued call left the queue, as the Queues section's hours stack them (.queues).
QUEUE_OUTCOMES = ("answered", "abandoned", "timed_out", "other")
# (key, unit) of the headline KPIs, in the order they are shown.
KPI_UNITS = (
    ("calls", "count"),
    ("answered", "count"),
    ("missed", "count"),
    ("asr", "percent"),
    ("acd", "seconds"),
    ("talk_seconds", "seconds"),
    ("peak_concurrent", "count"),
    ("busy_hour", "hour"),
)
# A heat map needs at least a week to say something.
HEATMAP_DAYS = 7


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows beyond its window; the defaults match ``[report]``."""

    period: str = ""
    language: str = "ru"
    top: int = 10
    callback_hours: int = 24
    monitor_dir: Path | None = None
    recordings_url: str = ""
    source: str = ""
    # Look for queue_log lines of the window (a Queues section when there are some).
    queues: bool = True
    # What the KPIs are compared with; None = the window of the same length just before.
    # Today so far is compared with yesterday up to the same time of day, not all of it.
    compare: Window | None = None

    def before(self, window: Window) -> Window:
        return self.compare or window.previous()


def collect(
    source: Source, window: Window, rule: InternalRule, opts: ReportOptions, now: datetime
) -> list[Call]:
    """Calls from the previous period's start to the call-back horizon, in one query."""
    horizon = max(window.end, min(window.end + timedelta(hours=opts.callback_hours), now))
    wide = Window(min(window.previous().start, opts.before(window).start), horizon)
    legs = fetch_legs(source, wide, None, margin=CALL_MARGIN, columns=REPORT_COLUMNS)
    return group_calls(legs, rule)


def assemble(
    calls: list[Call], window: Window, opts: ReportOptions, now: datetime
) -> dict[str, Any]:
    """The report of the calls that start in ``window`` (``calls`` may reach beyond it)."""
    before = opts.before(window)
    current = [c for c in calls if c.start in window]
    previous = [c for c in calls if c.start in before]
    inbound = [c for c in current if c.direction == INBOUND]
    kpis = compute(current, window, overlap=calls)
    prev_kpis = compute(previous, before, overlap=calls)
    return {
        "title": "pbxgate",
        "language": opts.language,
        "source": opts.source,
        "generated": _iso(now),
        "period": _period(window, opts.period),
        "previous": _period(before, ""),
        "kpis": _kpis(kpis, prev_kpis),
        "hourly": _hourly(inbound),
        "daily": _daily(inbound, window) if window.days > 1 else [],
        "heatmap": _heatmap(inbound) if window.days >= HEATMAP_DAYS else None,
        "top_callers": _top_callers(inbound, opts.top),
        "top_dids": _top_dids(inbound, opts.top),
        "missed": _missed(current, calls, opts.callback_hours),
        "extensions": _extensions(inbound),
        # As links when recordings_url is set; otherwise only how many (hundreds of server paths
        # are of no use to the report's reader).
        **_recordings_section(_recordings(current, opts), opts),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else None


def _period(window: Window, kind: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "from": _iso(window.start),
        "to": _iso(window.end),
        "label": period_label(window),
        "days": round(window.days, 3),
    }


def period_label(window: Window) -> str:
    """``2024-03-04`` for a day, ``2024-03-04 – 2024-03-10`` for whole days (the last one
    included, as people say it), the half-open form otherwise."""
    return window.describe(between=" – ")


def _kpis(now: Kpis, before: Kpis) -> list[dict[str, Any]]:
    a, b = now.as_dict(), before.as_dict()
    rows: list[dict[str, Any]] = []
    for key, unit in KPI_UNITS:
        value, prev = a[key], b[key]
        row: dict[str, Any] = {"key": key, "unit": unit, "value": value, "previous": prev}
        numeric = isinstance(value, int | float) and isinstance(prev, int | float)
        row["delta"] = round(value - prev, 1) if numeric else None  # type: ignore[operator]
        row["change_pct"] = _change_pct(value, prev, unit) if numeric else None  # type: ignore[arg-type]
        rows.append(row)
    rows[-1]["calls"] = a["busy_hour_calls"]
    rows[-2]["at"] = a["peak_at"]
    return rows


def outcome_class(call: Call) -> str:
    """The four bars of the hourly chart: answered, no answer, busy, failed (the rest)."""
    outcome = call.outcome
    if outcome == ANSWERED:
        return "answered"
    if outcome in (NO_ANSWER, CANCEL):
        return "no_answer"
    return "busy" if outcome == BUSY else "failed"


def _hourly(inbound: list[Call]) -> list[dict[str, Any]]:
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for call in inbound:
        counts[call.start.hour][outcome_class(call)] += 1
    rows: list[dict[str, Any]] = []
    for hour in range(24):
        row: dict[str, Any] = {"hour": hour}
        row.update({k: counts[hour][k] for k in OUTCOMES})
        row["total"] = sum(counts[hour].values())
        rows.append(row)
    return rows


def _daily(inbound: list[Call], window: Window) -> list[dict[str, Any]]:
    counts: dict[date, Counter[str]] = defaultdict(Counter)
    for call in inbound:
        counts[call.start.date()][outcome_class(call)] += 1
    rows: list[dict[str, Any]] = []
    day = window.start.replace(hour=0, minute=0, second=0)
    while day < window.end:
        key = day.date()
        row: dict[str, Any] = {"day": f"{key:%Y-%m-%d}", "weekday": day.weekday()}
        row.update({k: counts[key][k] for k in OUTCOMES})
        row["total"] = sum(counts[key].values())
        rows.append(row)
        day += timedelta(days=1)
    return rows


def _heatmap(inbound: list[Call]) -> list[list[int]]:
    """Inbound calls per weekday (0 = Monday) and hour: 7 rows of 24 counts."""
    grid = [[0] * 24 for _ in range(7)]
    for call in inbound:
        grid[call.start.weekday()][call.start.hour] += 1
    return grid


def _top_callers(inbound: list[Call], top: int) -> list[dict[str, Any]]:
    by_number: dict[str, list[Call]] = defaultdict(list)
    for call in inbound:
        by_number[call.src].append(call)
    rows: list[dict[str, Any]] = []
    for number, calls in by_number.items():
        answered = [c for c in calls if c.answered]
        rows.append(
            {
                "number": number,
                "name": next((c.caller_name for c in calls if c.caller_name), ""),
                "calls": len(calls),
                "answered": len(answered),
                "missed": len(calls) - len(answered),
                "talk_seconds": sum(c.talk_seconds for c in answered),
            }
        )
    rows.sort(key=lambda r: (-int(r["calls"]), -int(r["talk_seconds"]), str(r["number"])))
    return rows[:top]


def _top_dids(inbound: list[Call], top: int) -> list[dict[str, Any]]:
    by_did: dict[str, list[Call]] = defaultdict(list)
    for call in inbound:
        by_did[call.did or "-"].append(call)
    rows: list[dict[str, Any]] = []
    for did, calls in by_did.items():
        tally = _tally(calls)
        rows.append(
            {
                "did": did,
                "calls": tally["calls"],
                "answered": tally["answered"],
                "missed": tally["missed"],
                "asr": tally["asr"],
                "talk_seconds": tally["talk_seconds"],
            }
        )
    rows.sort(key=lambda r: (-int(r["calls"]), str(r["did"])))
    return rows[:top]


def _missed(current: list[Call], later: list[Call], hours: int) -> list[dict[str, Any]]:
    """Missed inbound calls and what followed within ``hours`` of each (a call-back two days
    later is "not yet" in the report of the day: it came too late to count)."""
    rows: list[dict[str, Any]] = []
    for item in missed_calls(current, later, timedelta(hours=hours)):
        row = item.as_row()
        row["start"] = _iso(row["start"])
        del row["linkedid"]
        rows.append(row)
    return rows


def _extensions(inbound: list[Call]) -> list[dict[str, Any]]:
    groups: dict[str, list[Call]] = defaultdict(list)
    for call in inbound:
        ext = extension_of(call)
        if ext:
            groups[ext].append(call)
    rows: list[dict[str, Any]] = []
    for ext in sorted(groups, key=lambda e: (len(e), e)):
        tally = _tally(groups[ext])
        rows.append(
            {
                "extension": ext,
                "calls": tally["calls"],
                "answered": tally["answered"],
                "missed": tally["missed"],
                "talk_seconds": tally["talk_seconds"],
                "acd": tally["acd"],
            }
        )
    return rows


def _tally(calls: list[Call]) -> dict[str, Any]:
    """The per-group numbers of :func:`~pbxgate.cdr.kpi.compute` (same definitions), without
    its busy hour and concurrency sweep: DIDs and extensions need only these."""
    answered = [c for c in calls if c.answered]
    talk = sum(c.talk_seconds for c in answered)
    n = len(calls)
    return {
        "calls": n,
        "answered": len(answered),
        "missed": sum(1 for c in calls if c.direction == INBOUND and not c.answered),
        "talk_seconds": talk,
        "asr": round(100 * len(answered) / n, 1) if n else None,
        "acd": round(talk / len(answered), 1) if answered else None,
    }


# Below these bases a percentage says nothing (3 calls against 1 is "+200 %"; talk time against
# a previous period of a few seconds read "+1300725.0 %"): the absolute change alone is shown.
_SMALL_BASE = {"count": 10, "seconds": 60}
_MAX_PCT = 1000.0


def _change_pct(value: float, prev: float, unit: str) -> float | None:
    if not prev or abs(prev) < _SMALL_BASE.get(unit, 0):
        return None
    pct = round(100 * (value - prev) / prev, 1)
    return pct if abs(pct) <= _MAX_PCT else None


def _recordings(current: list[Call], opts: ReportOptions) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for call in current:
        for name in call.recordings:
            row: dict[str, Any] = {
                "start": _iso(call.start),
                "src": call.src,
                "dst": call.dst,
                "file": name,
                "path": None,
                "exists": None,
                "url": None,
            }
            if opts.monitor_dir is not None:
                found = resolve(name, opts.monitor_dir)
                if found is not None:
                    row["path"], row["exists"] = str(found.path), found.exists
                    row["url"] = _url(found.path, opts)
            rows.append(row)
    return rows


def _recordings_section(rows: list[dict[str, Any]], opts: ReportOptions) -> dict[str, Any]:
    return {"recordings": rows if opts.recordings_url else [], "recordings_count": len(rows)}


def _url(path: Path, opts: ReportOptions) -> str | None:
    if not opts.recordings_url or opts.monitor_dir is None:
        return None
    try:
        rel = path.relative_to(opts.monitor_dir)
    except ValueError:
        return None
    return opts.recordings_url.rstrip("/") + "/" + rel.as_posix()


def build_report(
    source: Source, window: Window, rule: InternalRule, opts: ReportOptions, now: datetime
) -> dict[str, Any]:
    """Read the calls and assemble the report: the one entry point the CLI and scheduler use."""
    return assemble(collect(source, window, rule, opts, now), window, opts, now)


__all__ = [
    "KPI_UNITS",
    "OUTCOMES",
    "QUEUE_OUTCOMES",
    "ReportOptions",
    "assemble",
    "build_report",
    "collect",
    "outcome_class",
]
