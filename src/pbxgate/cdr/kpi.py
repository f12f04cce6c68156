"""Call-level KPIs: ASR, NER, ACD, talk time, busy hour, peak concurrent calls.

Definitions (reference cdr.md §6), all over calls (legs grouped by linkedid), never rows:

* ASR = answered calls / all calls × 100 (ITU-T E.411: busy and rejects count as failures).
* NER = calls that ended ANSWERED, BUSY, NO ANSWER or CANCEL / all calls × 100 (ITU-T E.425:
  the network did its part; FAILED and CONGESTION are network failures).
* ACD = answered talk time / answered calls (not over all calls, as some tools do).
* missed = inbound calls that nobody answered.
* busy hour = the clock hour (date and hour) in which most calls started.
* peak concurrent calls = the largest number of calls overlapping at one moment, by a sorted
  sweep over start/end events (O(n log n); a per-second loop is O(total duration)).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pbxgate.cdr.model import INBOUND, NER_OUTCOMES, OUTBOUND
from pbxgate.cdr.window import Window

BREAKDOWNS = (
    "hour", "day", "weekday", "did", "extension", "group", "disposition", "direction",
)  # fmt: skip


@dataclass(frozen=True)
class Kpis:
    calls: int
    answered: int
    missed: int
    unanswered: int
    asr: float | None
    ner: float | None
    acd: float | None
    talk_seconds: int
    busy_hour: datetime | None
    busy_hour_calls: int
    peak_concurrent: int
    peak_at: datetime | None
    inbound: int
    outbound: int

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "answered": self.answered,
            "missed": self.missed,
            "unanswered": self.unanswered,
            "asr": _r(self.asr),
            "ner": _r(self.ner),
            "acd": _r(self.acd),
            "talk_seconds": self.talk_seconds,
            "busy_hour": self.busy_hour.strftime("%Y-%m-%d %H:00") if self.busy_hour else None,
            "busy_hour_calls": self.busy_hour_calls,
            "peak_concurrent": self.peak_concurrent,
            "peak_at": self.peak_at.isoformat(sep=" ") if self.peak_at else None,
            "inbound": self.inbound,
            "outbound": self.outbound,
        }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def peak_concurrency(
    intervals: Iterable[tuple[datetime, datetime]], window: Window | None = None
) -> tuple[int, datetime | None]:
    """Most intervals ``[start, end)`` overlapping at one moment (within ``window``)."""
    events: list[tuple[datetime, int]] = []
    for begin, finish in intervals:
        lo, hi = (max(begin, window.start), min(finish, window.end)) if window else (begin, finish)
        if hi <= lo:
            continue
        events.append((lo, 1))
        events.append((hi, -1))
    events.sort()  # at equal times -1 sorts before +1: a call ending as another starts
    best, best_at, current = 0, None, 0
    for moment, delta in events:
        current += delta
        if current > best:
            best, best_at = current, moment
    return best, best_at


class CallLike(Protocol):
    """What the KPIs read of a call: a :class:`~pbxgate.cdr.model.Call` or a
    :class:`~pbxgate.cdr.facts.CallFacts`."""

    @property
    def start(self) -> datetime: ...
    @property
    def end(self) -> datetime: ...
    @property
    def answered(self) -> bool: ...
    @property
    def talk_seconds(self) -> int: ...
    @property
    def outcome(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def did(self) -> str: ...
    @property
    def answered_by(self) -> str: ...
    @property
    def answered_via(self) -> str: ...
    @property
    def dst(self) -> str: ...
    @property
    def src(self) -> str: ...


def compute(
    calls: Sequence[CallLike],
    window: Window | None = None,
    *,
    overlap: Sequence[CallLike] | None = None,
) -> Kpis:
    """KPIs of ``calls``; ``overlap`` adds calls that began before the window for concurrency."""
    answered = [c for c in calls if c.answered]
    talk = sum(c.talk_seconds for c in answered)
    ner_ok = sum(1 for c in calls if c.outcome in NER_OUTCOMES)
    inbound = [c for c in calls if c.direction == INBOUND]
    hours = Counter(c.start.replace(minute=0, second=0) for c in calls)
    busy_hour, busy_count = min(hours.items(), key=lambda kv: (-kv[1], kv[0]), default=(None, 0))
    spans = [(c.start, c.end) for c in (overlap if overlap is not None else calls)]
    peak, peak_at = peak_concurrency(spans, window)
    n = len(calls)
    return Kpis(
        calls=n,
        answered=len(answered),
        missed=sum(1 for c in inbound if not c.answered),
        unanswered=n - len(answered),
        asr=100 * len(answered) / n if n else None,
        ner=100 * ner_ok / n if n else None,
        acd=talk / len(answered) if answered else None,
        talk_seconds=talk,
        busy_hour=busy_hour,
        busy_hour_calls=busy_count,
        peak_concurrent=peak,
        peak_at=peak_at,
        inbound=len(inbound),
        outbound=sum(1 for c in calls if c.direction == OUTBOUND),
    )


def extension_of(call: CallLike) -> str:
    """The office side of a call: who answered (or was rung) inbound, who dialled otherwise."""
    if call.direction == INBOUND:
        return call.answered_by or call.dst
    return call.src


_KEYS: dict[str, Callable[[CallLike], str]] = {
    "hour": lambda c: f"{c.start.hour:02d}:00",
    "day": lambda c: c.start.strftime("%Y-%m-%d"),
    "weekday": lambda c: f"{c.start.isoweekday()} {c.start:%a}",
    "did": lambda c: c.did or "-",
    "extension": extension_of,
    # the ring group or queue an answered call came through; "-" for the rest
    "group": lambda c: c.answered_via or "-",
    "disposition": lambda c: c.outcome,
    "direction": lambda c: c.direction,
}


def breakdown(
    calls: Sequence[CallLike], by: str, window: Window | None = None
) -> list[tuple[str, Kpis]]:
    """KPIs per group (hour of day, day, DID, extension, disposition...), in key order."""
    key = _KEYS[by]
    groups: dict[str, list[CallLike]] = defaultdict(list)
    for call in calls:
        groups[key(call)].append(call)
    return [(k, compute(groups[k], window)) for k in sorted(groups)]


__all__ = [
    "BREAKDOWNS",
    "CallLike",
    "Kpis",
    "breakdown",
    "compute",
    "extension_of",
    "peak_concurrency",
]
