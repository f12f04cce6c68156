"""One call leg by leg, as a timeline: who rang and for how long, who answered, transfers, the
end. Seconds from the call's start, so that a page can draw bars and say the same in words.

Each leg that rang something is one item: the phone (``dstchannel``'s extension, or the number
dialled out) from when the leg started, ringing until it was answered or gave up, then talking
for its ``billsec``. A leg with no ``dstchannel`` is the PBX itself (an IVR, voicemail, a
``Hangup()``), named by its application. An answered leg whose person is not the first who
talked is a transfer (:attr:`pbxgate.cdr.model.Call.talked`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pbxgate.cdr.callrules import parse_channel, person_of
from pbxgate.cdr.model import ANSWERED, Call, Leg
from pbxgate.cdr.numbers import InternalRule

ANSWERED_KIND = "answered"
TRANSFER = "transfer"
UNANSWERED = "unanswered"
PBX = "pbx"


def timeline(call: Call, rule: InternalRule | None = None) -> dict[str, Any]:
    """``{"duration": s, "items": [{who, kind, status, at, ring, talk}, ...]}``."""
    rule = rule or call.rule or InternalRule()
    start = call.start
    talked = call.talked
    first = talked[0] if talked else call.answered_by
    items = []
    for leg in sorted(call.legs, key=_order):
        item = _item(leg, start, rule)
        if item["kind"] == ANSWERED_KIND and item["who"] != first and item["who"] in talked:
            item["kind"] = TRANSFER
        items.append(item)
    return {"duration": _seconds(start, call.end), "items": items}


def _item(leg: Leg, start: datetime, rule: InternalRule) -> dict[str, Any]:
    at = _seconds(start, leg.start)
    chan = parse_channel(leg.dstchannel)
    if chan is None:  # the PBX answered or played something itself
        return {"who": leg.lastapp or "PBX", "kind": PBX, "status": leg.disposition, "at": at,
                "ring": 0, "talk": leg.duration}  # fmt: skip
    who = chan.name if chan.local else person_of(chan, leg.dst, rule)
    answered = leg.disposition == ANSWERED
    stop = leg.answered_at if answered and leg.answered_at is not None else leg.finish
    ring = _seconds(leg.start, stop)
    return {
        "who": who,
        "kind": ANSWERED_KIND if answered else UNANSWERED,
        "status": leg.disposition,
        "at": at,
        "ring": ring,
        "talk": leg.billsec if answered else 0,
    }


def _order(leg: Leg) -> tuple[datetime, int]:
    return (leg.start, leg.sequence)


def _seconds(a: datetime, b: datetime) -> int:
    return max(0, int((b - a).total_seconds()))


__all__ = ["ANSWERED_KIND", "PBX", "TRANSFER", "UNANSWERED", "timeline"]
