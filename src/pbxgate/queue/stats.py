"""Queue statistics from queued calls' journeys: what a call centre reports.

Definitions (each one is a choice; docs/queue.md says why):

* **offered**: calls that entered the queue (ENTERQUEUE); a call that entered twice counts twice.
* **answered**: CONNECT; **abandoned**: ABANDON (the caller hung up while waiting), of which
  **short abandons** gave up within ``short_abandon`` seconds (most centres leave those out of
  the service level: wrong numbers, callers who hear the greeting and hang up);
  **timed out**: EXITWITHTIMEOUT; **other exits**: EXITWITHKEY, EXITEMPTY, WITHDRAW.
* **service level**: answered within ``service_level`` seconds (the queue's own target where
  ``per_queue`` gives one), over offered minus short
  abandons minus calls still waiting at the end of the log (the ratio most ACD vendors call
  SL; Asterisk's own ``servicelevel`` counts only answered calls, which hides abandons).
* **wait**: seconds from entering to answered or gone (CONNECT's holdtime, the exits'
  waittime); average, 90th percentile (nearest rank) and longest, over the calls that left the
  queue. **talk**: COMPLETECALLER/AGENT's calltime (or a transfer's), over the answered calls
  whose end is in the log (one still talking, or ended in the next file, is left out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pbxgate.queue.log import ABANDONED, ANSWERED, TIMEOUT, UNKNOWN, QueuedCall


@dataclass(frozen=True)
class QueueStats:
    key: str
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    timed_out: int
    other_exits: int
    in_queue: int  # entered and not yet left (at the end of the file)
    answered_in_sl: int
    service_level: float | None  # 0..1; None without calls to count
    wait_avg: float
    wait_p90: int
    wait_max: int
    talk_avg: float

    def as_row(self) -> dict[str, object]:
        return {
            "key": self.key,
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "timed_out": self.timed_out,
            "other_exits": self.other_exits,
            "in_queue": self.in_queue,
            "service_level": None if self.service_level is None else round(self.service_level, 4),
            "wait_avg": round(self.wait_avg, 1),
            "wait_p90": self.wait_p90,
            "wait_max": self.wait_max,
            "talk_avg": round(self.talk_avg, 1),
        }


def percentile(values: list[int], q: float) -> int:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarise(
    calls: Iterable[QueuedCall],
    key: str,
    *,
    service_level: int = 20,
    short_abandon: int = 5,
    per_queue: Mapping[str, int] | None = None,
) -> QueueStats:
    """The numbers of ``calls``; an answer counts for the service level within
    ``per_queue[call.queue]`` seconds where the queue has its own target, else
    ``service_level``."""
    calls = list(calls)
    targets = per_queue or {}
    answered = [c for c in calls if c.outcome == ANSWERED]
    abandoned = [c for c in calls if c.outcome == ABANDONED]
    short = [c for c in abandoned if c.wait <= short_abandon]
    timed_out = sum(c.outcome == TIMEOUT for c in calls)
    in_queue = sum(c.outcome == UNKNOWN for c in calls)
    left = [c for c in calls if c.outcome != UNKNOWN]
    waits = [c.wait for c in left]
    within = sum(c.wait <= targets.get(c.queue, service_level) for c in answered)
    done = [c for c in answered if c.completed]
    base = len(calls) - len(short) - in_queue
    return QueueStats(
        key=key,
        offered=len(calls),
        answered=len(answered),
        abandoned=len(abandoned),
        short_abandoned=len(short),
        timed_out=timed_out,
        other_exits=len(left) - len(answered) - len(abandoned) - timed_out,
        in_queue=in_queue,
        answered_in_sl=within,
        service_level=within / base if base > 0 else None,
        wait_avg=sum(waits) / len(waits) if waits else 0.0,
        wait_p90=percentile(waits, 0.9),
        wait_max=max(waits, default=0),
        talk_avg=sum(c.talk for c in done) / len(done) if done else 0.0,
    )


GROUPINGS: dict[str, Callable[[QueuedCall], str]] = {
    "queue": lambda c: c.queue,
    "agent": lambda c: c.agent or "(not answered)",
    "hour": lambda c: f"{(c.entered_at // 3600) % 24:02d}",  # UTC; the CLI passes local hours
}


def by(
    calls: Iterable[QueuedCall],
    key: Callable[[QueuedCall], str],
    *,
    service_level: int = 20,
    short_abandon: int = 5,
    per_queue: Mapping[str, int] | None = None,
) -> list[QueueStats]:
    """One :class:`QueueStats` per value of ``key``, in the order of the values."""
    groups: dict[str, list[QueuedCall]] = {}
    for call in calls:
        groups.setdefault(key(call), []).append(call)
    return [
        summarise(
            groups[k],
            k,
            service_level=service_level,
            short_abandon=short_abandon,
            per_queue=per_queue,
        )
        for k in sorted(groups)
    ]


__all__ = ["GROUPINGS", "QueueStats", "by", "percentile", "summarise"]
