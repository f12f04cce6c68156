"""Missed inbound calls, and what happened next: called back, got through later, or not yet.

A missed call is an inbound call (external caller) that nobody answered, after legs are grouped
by linkedid, so a ring group answered on another phone is not missed. For each one we look at
the calls that followed (up to ``horizon``): the first answered outbound call to that number is a
call-back, the first answered inbound call from it means the caller got through; the delay from
the end of the missed call is reported. No standard definition of call-back exists (cdr.md §6):
this is ours, and unanswered call-back attempts are counted separately.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pbxgate.cdr.model import INBOUND, OUTBOUND, Call
from pbxgate.cdr.numbers import InternalRule

CALLED_BACK = "called back"
GOT_THROUGH = "got through"
OPEN = "not yet"
NO_NUMBER = "no number to call back"


def number_key(number: str) -> str:
    """Compare numbers by their last 10 digits: 84991111111, +74991111111, 4991111111 agree."""
    digits = "".join(ch for ch in number if ch.isdigit())
    return digits[-10:] if len(digits) >= 10 else digits


@dataclass(frozen=True)
class MissedCall:
    call: Call
    resolution: str
    resolved_at: datetime | None
    resolved_by: str
    attempts: int

    @property
    def after_seconds(self) -> int | None:
        if self.resolved_at is None:
            return None
        return max(0, int((self.resolved_at - self.call.end).total_seconds()))

    def as_row(self) -> dict[str, Any]:
        """The plain row that `cdr missed` and the report show."""
        call = self.call
        return {
            "start": call.start,
            "src": call.src,
            "caller": call.caller_name,
            "did": call.did,
            "dst": call.dst,
            "outcome": call.outcome,
            "ring": call.ring_seconds,
            "resolution": self.resolution,
            "after_seconds": self.after_seconds,
            "by": self.resolved_by,
            "attempts": self.attempts,
            "linkedid": call.key,
        }


def missed_calls(
    calls: list[Call], later: list[Call] | None = None, within: timedelta | None = None
) -> list[MissedCall]:
    """Missed inbound calls among ``calls``; ``later`` are the calls that may resolve them
    (defaults to ``calls``; pass the window plus the horizon). Only a call that starts within
    ``within`` of the missed call's end resolves it: one rule for ``cdr missed`` and the
    report (a call-back two days later is "not yet" in the report of the day)."""
    following = later if later is not None else calls
    by_number: dict[str, list[Call]] = defaultdict(list)
    for call in following:
        number = call.dst if call.direction == OUTBOUND else call.src
        if not number_key(number):
            continue
        by_number[number_key(number)].append(call)
    for same in by_number.values():
        same.sort(key=lambda c: c.start)  # stable: _resolve bisects to the missed call's end
    out = []
    for call in calls:
        if call.direction != INBOUND or call.answered:
            continue
        if (call.rule or InternalRule()).is_withheld(call.src):
            out.append(MissedCall(call, NO_NUMBER, None, "", 0))
            continue
        out.append(_resolve(call, by_number.get(number_key(call.src), []), within))
    return out


def _resolve(missed: Call, candidates: list[Call], within: timedelta | None) -> MissedCall:
    attempts = 0
    # Skip the caller's earlier calls without looking at them: a busy number with thousands of
    # calls a month made this loop quadratic (month reports over 10 M rows).
    first = bisect_left(candidates, missed.end, key=lambda c: c.start)
    last = missed.end + within if within is not None else None
    for call in candidates[first:]:
        if last is not None and call.start > last:
            break
        if call is missed:
            continue
        if call.direction == OUTBOUND:
            if call.answered:
                return MissedCall(missed, CALLED_BACK, call.start, call.src, attempts)
            attempts += 1
        elif call.direction == INBOUND and call.answered and call.answered_by:
            # a person took the caller's next call (an IVR or voicemail alone is no one)
            return MissedCall(missed, GOT_THROUGH, call.start, call.answered_by, attempts)
    return MissedCall(missed, OPEN, None, "", attempts)


__all__ = [
    "CALLED_BACK",
    "GOT_THROUGH",
    "NO_NUMBER",
    "OPEN",
    "MissedCall",
    "missed_calls",
    "number_key",
]
