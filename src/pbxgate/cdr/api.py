"""The questions admins ask, as library functions that return plain rows and dicts.

The CLI (and later the web views and reports) call these and render what they return; nothing
here prints. Every function takes an open :class:`~pbxgate.cdr.source.Source`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pbxgate.cdr.facts import CallFacts, fetch_facts, in_window
from pbxgate.cdr.kpi import CallLike, Kpis, breakdown, compute
from pbxgate.cdr.missed import missed_calls
from pbxgate.cdr.model import Call, Leg
from pbxgate.cdr.query import CALL_MARGIN, Filters, check_columns, fetch_calls, fetch_legs
from pbxgate.cdr.recordings import resolve
from pbxgate.cdr.source import Source
from pbxgate.cdr.window import Window

CALL_COLUMNS = [
    "start", "direction", "src", "caller", "did", "dst", "answered_by", "outcome",
    "ring", "talk", "legs", "recording",
]  # fmt: skip
LEG_DEFAULT_COLUMNS = [
    "calldate", "src", "dst", "duration", "billsec", "disposition", "did", "recordingfile",
]  # fmt: skip
LEG_ALL_COLUMNS = [
    "calldate", "clid", "src", "dst", "dcontext", "channel", "dstchannel", "lastapp", "lastdata",
    "duration", "billsec", "disposition", "amaflags", "accountcode", "uniqueid", "userfield",
    "did", "recordingfile", "cnum", "cnam", "linkedid", "sequence",
]  # fmt: skip
MISSED_COLUMNS = [
    "start", "src", "caller", "did", "dst", "outcome", "ring", "resolution", "after", "by",
    "attempts",
]  # fmt: skip


def call_row(call: Call, monitor_dir: Path | None = None) -> dict[str, Any]:
    recordings = call.recordings
    row: dict[str, Any] = {
        "start": call.start,
        "direction": call.direction,
        "src": call.src,
        "caller": call.caller_name,
        "did": call.did,
        "dst": call.dst,
        "answered_by": call.answered_by,
        "answered_via": call.answered_via,
        "talked": ",".join(call.talked),
        "answered_at": call.answered_at,
        "outcome": call.outcome,
        "ring": call.ring_seconds,
        "talk": call.talk_seconds,
        "legs": len(call.legs),
        "recording": recordings[0] if recordings else "",
        "linkedid": call.key,
    }
    if monitor_dir is not None and recordings:
        found = resolve(recordings[0], monitor_dir)
        if found is not None:
            row["recording_path"] = str(found.path)
            row["recording_exists"] = "yes" if found.exists else "no"
    return row


def leg_row(leg: Leg) -> dict[str, Any]:
    row = {name: getattr(leg, name, "") for name in LEG_ALL_COLUMNS if name != "calldate"}
    row["calldate"] = leg.start
    return row


def list_calls(source: Source, window: Window, filters: Filters) -> list[Call]:
    return fetch_calls(source, window, filters)


def list_legs(
    source: Source, window: Window, filters: Filters, columns: list[str] | None = None
) -> list[Leg]:
    """Raw CDR rows in ``window``; ``columns`` limits what is read to what will be shown."""
    return list(fetch_legs(source, window, filters, columns=columns))


@dataclass
class StatsResult:
    window: Window
    kpis: Kpis
    groups: list[tuple[str, Kpis]]
    by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.window.start.isoformat(sep=" "),
            "to": self.window.end.isoformat(sep=" "),
            "totals": self.kpis.as_dict(),
            "by": self.by,
            "groups": [{"key": k, **v.as_dict()} for k, v in self.groups],
        }


def stats(source: Source, window: Window, filters: Filters, by: str | None = None) -> StatsResult:
    """KPIs over the calls that start in ``window`` (and pass ``filters``), grouped ``by``."""
    wide = Window(window.start - CALL_MARGIN, window.end)
    overlap: Sequence[CallLike]
    check_columns(source.layout, filters)
    if filters.call_level:  # the fast path: call facts straight from the rows
        facts = in_window(fetch_facts(source, wide, filters.rule, margin=CALL_MARGIN), wide)
        facts += _still_going(source, window, filters)
        overlap = facts if filters.empty else [f for f in facts if filters.accepts_facts(f)]
    else:
        everything = fetch_calls(
            source, wide, Filters(rule=filters.rule), lean=True, also=filters.columns()
        )
        overlap = [c for c in everything if filters.accepts_call(c)]
    chosen = [c for c in overlap if window.start <= c.start < window.end]
    totals = compute(chosen, window, overlap=overlap)
    groups = breakdown(chosen, by, window) if by else []
    return StatsResult(window, totals, groups, by)


# How far back a call may have started and still be going when the window opens.
LONGEST_CALL = timedelta(hours=24)


def _still_going(source: Source, window: Window, filters: Filters) -> list[CallFacts]:
    """Calls that began before the calls ``stats`` keeps (window start - 1 h) and were still
    going when the window opened: for the peak of concurrent calls. Only long legs qualify, so
    the index range is read but few rows come back. (It ended at start - 2 h, where the legs
    ``stats`` reads begin: a call begun 1-2 h before the window fell between the two.)"""
    early = Window(window.start - LONGEST_CALL, window.start - CALL_MARGIN)
    found = fetch_facts(source, early, filters.rule, margin=timedelta(), longer_than=CALL_MARGIN)
    return [f for f in found if f.end > window.start]


@dataclass
class MissedResult:
    window: Window
    rows: list[dict[str, Any]]


def missed(
    source: Source,
    window: Window,
    filters: Filters,
    *,
    within: timedelta = timedelta(hours=24),
    now: datetime | None = None,
) -> MissedResult:
    """Missed inbound calls in ``window``, each with what happened next up to ``within`` later."""
    horizon_end = window.end + within
    if now is not None:
        horizon_end = max(window.end, min(horizon_end, now))
    wide = Window(window.start, horizon_end)
    calls = fetch_calls(source, wide, Filters(rule=filters.rule), lean=True, also=filters.columns())
    inside = [c for c in calls if c.start in window and filters.accepts_call(c)]
    rows = []
    for item in missed_calls(inside, calls, within):
        row = item.as_row()
        row["after"] = clock_duration(item.after_seconds)
        rows.append(row)
    return MissedResult(window, rows)


def clock_duration(seconds: int | None) -> str:
    """``0:05:09``: a duration as a clock shows it; empty for none."""
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


__all__ = [
    "CALL_COLUMNS",
    "LEG_ALL_COLUMNS",
    "LEG_DEFAULT_COLUMNS",
    "MISSED_COLUMNS",
    "MissedResult",
    "StatsResult",
    "call_row",
    "clock_duration",
    "leg_row",
    "list_calls",
    "list_legs",
    "missed",
    "stats",
]
