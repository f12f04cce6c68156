"""The queue's view of each call beside the CDR's: the same calls, and where they may differ.

queue_log names a call by the caller channel's ``uniqueid`` (its second field); the CDR rows
of that call carry it as ``uniqueid`` of the caller's legs and as their ``linkedid``. Each
queued call is matched to the CDR call (legs grouped by ``linkedid``, as ``pbxgate cdr calls``
groups them) holding that uniqueid, and the two views are compared:

* **answered**: CONNECT in queue_log against a person answering in the CDR (``answered_by``)
  through that queue (``answered_via``). A queue that answers the caller for its music on hold
  (``Answer()`` before ``Queue()``, as FreePBX does) makes the caller's leg ANSWERED in the CDR
  even when the caller gave up: pbxgate's CDR rules do not count that as answered, and neither
  does this comparison.
* **talk**: COMPLETECALLER/AGENT's calltime against the CDR's talk time, within ``slack``
  seconds (both count whole seconds from different clocks). After a transfer, queue_log stops
  counting at the transfer and the CDR goes on to the call's end: not a difference.
* **wait**: queue_log's holdtime counts from entering the queue; the CDR's ring time from the
  call's start (the greeting, the IVR, the AGI and ``Answer()`` before ``Queue()`` included):
  the CDR's is the longer, never the shorter by more than ``slack``.
* **agent**: queue_log names the member (queues.conf ``membername``), the CDR the phone
  (extension): shown side by side, not compared.
* a call that went through several queues (a timeout into the next queue): the CDR tells how
  the call ended, so only the queue that answered it, or else its last, is compared; the
  others need only the CDR to exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pbxgate.cdr.model import Call
from pbxgate.queue.log import ANSWERED, UNKNOWN, QueuedCall


@dataclass
class TieOut:
    call: QueuedCall
    cdr: Call | None
    differences: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return self.cdr is not None and not self.differences

    def as_row(self) -> dict[str, object]:
        cdr = self.cdr
        return {
            "callid": self.call.callid,
            "queue": self.call.queue,
            "caller": self.call.caller,
            "queue_outcome": self.call.outcome,
            "queue_agent": self.call.agent,
            "queue_wait": self.call.wait,
            "queue_talk": self.call.talk,
            "transferred_to": self.call.transferred_to,
            "linkedid": cdr.key if cdr else "",
            "cdr_outcome": cdr.outcome if cdr else "",
            "cdr_answered_by": cdr.answered_by if cdr else "",
            "cdr_answered_via": cdr.answered_via if cdr else "",
            "cdr_ring": cdr.ring_seconds if cdr else None,
            "cdr_talk": cdr.talk_seconds if cdr else None,
            "agrees": self.agrees,
            "differences": list(self.differences),
        }


def tie_out(
    calls: Iterable[QueuedCall], cdr_calls: Iterable[Call], *, slack: int = 2
) -> list[TieOut]:
    """Each queued call with its CDR call and the differences found (see the module's notes)."""
    by_uniqueid: dict[str, Call] = {}
    for each in cdr_calls:
        by_uniqueid.setdefault(each.key, each)
        for leg in each.legs:
            by_uniqueid.setdefault(leg.uniqueid, each)
    calls = list(calls)
    # a call that went through several queues: the CDR tells how the call ended, which is
    # how its last queue (or the one that answered it) ended; the others only left it
    decisive: dict[str, QueuedCall] = {}
    for call in calls:
        held = decisive.get(call.callid)
        if held is None or held.outcome != ANSWERED:
            decisive[call.callid] = call
    out = []
    for call in calls:
        cdr = by_uniqueid.get(call.callid)
        found = TieOut(call, cdr)
        if cdr is None:
            found.differences.append("no CDR of this call")
        elif call.outcome != UNKNOWN and decisive[call.callid] is call:
            found.differences.extend(_compare(call, cdr, slack))
        out.append(found)
    return out


def _compare(call: QueuedCall, cdr: Call, slack: int) -> list[str]:
    found = []
    answered = call.outcome == ANSWERED
    if answered != bool(cdr.answered_by):
        found.append(
            f"queue_log says {call.outcome}, the CDR "
            + (f"answered by {cdr.answered_by}" if cdr.answered_by else "not answered")
        )
        return found
    if answered and cdr.answered_via and cdr.answered_via != call.queue:
        found.append(f"the CDR has it answered through {cdr.answered_via}, not {call.queue}")
    whole_talk = answered and call.completed and not call.transferred_to
    if whole_talk and abs(call.talk - cdr.talk_seconds) > slack:
        found.append(f"talk {call.talk} s in queue_log, {cdr.talk_seconds} s in the CDR")
    if cdr.ring_seconds + slack < call.wait:
        found.append(f"waited {call.wait} s in queue_log, rang {cdr.ring_seconds} s in the CDR")
    return found


__all__ = ["TieOut", "tie_out"]
