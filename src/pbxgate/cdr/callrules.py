"""The rules that make one call of its legs: outcome, who answered and through what, times.

One call leaves several CDR rows (reference cdr.md §5.3), and what a real Asterisk writes is
not what one would guess from the specification's examples (the rows a real Asterisk 22 wrote
for the office's calls are in ``tests/asterisk/``):

* a ring group (``Dial(PJSIP/101&PJSIP/102)``) leaves one row per phone rung, all with the
  group's number as ``dst``; the phone is only in ``dstchannel``;
* a queue or follow-me rings ``Local/101@from-queue-...;1``; the phone's own row is the
  ``;2`` half's (``channel`` ``Local/101@from-queue-...;2``, ``dstchannel`` ``PJSIP/101-...``),
  and the caller's row to the ``;1`` half carries the caller's answer time, not the agent's;
* after a transfer or pickup the parties' channels leave rows of their own (``AppDial``,
  ``(Outgoing Line)``), the caller's last row often has no ``dstchannel`` (``lastapp``
  ``Hangup``) and carries the caller's final status, and a picked-up phone's row reads
  ``ANSWERED`` with no time talked.

So, over the legs of one call:

* **origin**: the caller's first leg: not the ``;2`` half of a Local channel rung in this call,
  not a leg of a channel that was rung in this call; earliest (start, sequence).
* **who answered** (``answered_by``): the person on the first answered leg whose other party is
  a device (``PJSIP/101-...``, ``SIP/...``, ``IAX2/...``, ``DAHDI/...``), not a Local hop whose
  ``;2`` half has legs of its own. A device named like an extension is that extension; any
  other (a trunk) is the number dialled. Legs answered with no time talked (the picked-up
  phone) are passed over when another answered leg has time.
* **through what** (``answered_via``): the ring group or queue number the answering leg was
  dialled for: the ``dst`` of the leg that rang the Local hop, or the leg's own ``dst`` when it
  is not itself one of the call's phones (600 for a ring group's phone 102); for a leg of
  ``Queue()``, the queue its ``lastdata`` names (a transfer rewrites the leg's ``dst``).
* **outcome**: ANSWERED when a person answered; otherwise the most telling status among the
  legs that rang something (NO ANSWER over CANCEL over BUSY over CONGESTION over FAILED:
  one phone that rang unanswered makes the call unanswered; busy only when every phone
  tried was busy); a call that rang nothing (``Busy()``, ``Congestion()``, an IVR, voicemail
  straight away) keeps the status its legs give, ANSWERED included (answered by the PBX,
  nobody in ``answered_by``).
* **ring** = answer (or end) - start; **talk** = end - answer: what the caller lived through,
  hold and transfers included; the call ends when its last leg ends.
* **talked**: every person who answered a leg with time talked, in order (transfers).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pbxgate.cdr.model import ANSWERED, NO_ANSWER, outcome_of

if TYPE_CHECKING:
    from pbxgate.cdr.model import Leg
    from pbxgate.cdr.numbers import InternalRule

# "PJSIP/101-0000002a", "SIP/101-00000abc", "IAX2/101-14893", "DAHDI/i1/84991234567-1a"
_DEVICE = re.compile(r"^(?P<tech>[^/]+)/(?P<name>.+?)(?:-[0-9a-fA-F]+)?$")
# "Local/101@from-queue-00000000;1"
_LOCAL = re.compile(
    r"^Local/(?P<exten>[^@]*)@(?P<context>.+?)-(?P<id>[0-9a-fA-F]+);(?P<half>[12])$"
)


@dataclass(frozen=True, slots=True)
class Channel:
    tech: str
    name: str  # the device ("101", "trunk") or a Local channel's extension
    local_id: str = ""  # a Local channel's counter and context: pairs its ;1 and ;2 halves
    half: str = ""

    @property
    def local(self) -> bool:
        return bool(self.local_id)


def parse_channel(text: str) -> Channel | None:
    if not text:
        return None
    m = _LOCAL.match(text)
    if m:
        return Channel("Local", m["exten"], f"{m['context']}-{m['id']}", m["half"])
    m = _DEVICE.match(text)
    if m is None:
        return Channel("", text)
    return Channel(m["tech"], m["name"].rsplit("/", 1)[-1])


@dataclass(frozen=True, slots=True)
class Derived:
    """The call-level facts of one call's legs (see the module docstring for the rules)."""

    origin: Leg
    outcome: str
    answered_at: datetime | None
    answered_by: str
    answered_via: str
    talked: tuple[str, ...]
    end: datetime
    talk_seconds: int = 0

    @property
    def answered(self) -> bool:
        return self.outcome == ANSWERED

    @property
    def ring_seconds(self) -> int:
        stop = self.answered_at or self.end
        return max(0, int((stop - self.origin.start).total_seconds()))


def talk_of(answered_at: datetime, end: datetime) -> int:
    """Seconds from the answer to the end of the call (a call of one leg: its billsec)."""
    return max(0, int((end - answered_at).total_seconds()))


def derive(legs: list[Leg], rule: InternalRule) -> Derived:
    """The facts of one call from all its legs (in any order)."""
    if len(legs) == 1:
        return _single(legs[0], rule)
    ordered = sorted(legs, key=_order)
    end = max(leg.finish for leg in ordered)
    parsed = {id(leg): parse_channel(leg.dstchannel) for leg in ordered}
    # Local hops: ;1 halves rung by a leg of this call whose ;2 half left legs of its own.
    inner_of = {}
    for leg in ordered:
        chan = parse_channel(leg.channel)
        if chan is not None and chan.local and chan.half == "2":
            inner_of[id(leg)] = chan.local_id
    hops = {c.local_id: leg for leg in ordered if (c := parsed[id(leg)]) is not None and c.local}
    with_inner = set(inner_of.values())
    rung = {leg.dstchannel for leg in ordered if leg.dstchannel}
    devices = {c.name for c in parsed.values() if c is not None and not c.local}
    origin = next(
        (leg for leg in ordered if id(leg) not in inner_of and leg.channel not in rung),
        ordered[0],
    )
    people: list[tuple[datetime, Leg, str, str]] = []
    attempts: list[str] = []
    for leg in ordered:
        chan = parsed[id(leg)]
        if chan is None:
            continue
        if chan.local and chan.local_id in with_inner:
            if leg.disposition != ANSWERED:
                attempts.append(leg.disposition)
            continue  # the ;2 half's own legs say who answered
        if leg.disposition != ANSWERED:
            attempts.append(leg.disposition)
            continue
        person = person_of(chan, leg.dst, rule)
        hop = hops.get(inner_of.get(id(leg), ""))
        rang = hop if hop is not None else leg
        via = queue_of(rang) or via_of(rang.dst, person, devices, rule)
        at = leg.answered_at or leg.finish
        people.append((at, leg, person, via))
    if people:
        people.sort(key=lambda p: (p[0], _order(p[1])))
        talking = [p for p in people if p[1].billsec > 0] or people
        at, _, person, via = talking[0]
        talked = tuple(dict.fromkeys(p[2] for p in talking))
        return Derived(origin, ANSWERED, at, person, via, talked, end, talk_of(at, end))
    if attempts:  # an empty disposition is what Asterisk's default means: NO ANSWER
        return Derived(
            origin, outcome_of([d or NO_ANSWER for d in attempts]), None, "", "", (), end
        )
    outcome = outcome_of([leg.disposition for leg in ordered])
    if outcome == ANSWERED and not any(leg.dstchannel for leg in ordered):
        outcome = outcome_alone(ANSWERED, "", origin.lastapp)  # waited in a queue for nobody
    if outcome != ANSWERED:
        return Derived(origin, outcome, None, "", "", (), end)
    at = origin.answered_at or origin.start
    return Derived(origin, outcome, at, "", "", (), end, talk_of(at, end))


# The applications a caller answered by the dialplan waits in for somebody: left there with no
# party B (a queue whose members were all busy or paused, a caller who gave up during the
# greeting, a Dial that reached no device), nobody answered.
WAITING_APPS = frozenset({"queue", "dial"})


def outcome_alone(disposition: str, dstchannel: str, lastapp: str) -> str:
    """The outcome of a call of one leg: its disposition (empty: NO ANSWER), except that a
    caller the dialplan answered (``Answer()`` before ``Queue()``, as FreePBX does) who then
    waited in a queue or a Dial that connected nobody was not answered. Answered by the
    dialplan otherwise (an IVR, voicemail, an announcement)."""
    if disposition != ANSWERED:
        return disposition or NO_ANSWER
    # no party B: no dstchannel, or none that names a channel (checked last: a row in three
    # is answered, and few of those were left in a queue)
    if lastapp.lower() in WAITING_APPS and parse_channel(dstchannel) is None:
        return NO_ANSWER
    return ANSWERED


def _single(leg: Leg, rule: InternalRule) -> Derived:
    chan = parse_channel(leg.dstchannel)
    outcome = outcome_alone(leg.disposition, leg.dstchannel, leg.lastapp)
    if outcome != ANSWERED:
        return Derived(leg, outcome, None, "", "", (), leg.finish)
    if chan is None:  # answered by the dialplan itself (IVR, voicemail, announcement)
        return Derived(leg, ANSWERED, leg.answered_at, "", "", (), leg.finish, leg.billsec)
    person = person_of(chan, leg.dst, rule)
    via = queue_of(leg) or via_of(leg.dst, person, {chan.name}, rule)
    return Derived(leg, ANSWERED, leg.answered_at, person, via, (person,), leg.finish, leg.billsec)


def person_of(chan: Channel, dst: str, rule: InternalRule) -> str:
    """The extension of a device named like one (PJSIP/101-...); else the number dialled.
    A DAHDI channel is named after its port (DAHDI/1-1), never after an extension."""
    if chan.tech != "DAHDI" and rule.is_extension_device(chan.name):
        return chan.name
    return dst


def queue_of(leg: Leg) -> str:
    """The queue a ``Queue()`` leg rang its member from (``lastdata``'s first field): it stays
    when a transfer rewrites the leg's ``dst`` to the transfer's target."""
    if leg.lastapp.lower() != "queue":
        return ""
    return leg.lastdata.split(",", 1)[0].strip()


def via_of(dst: str, person: str, devices: set[str], rule: InternalRule) -> str:
    """A ring group or queue number: a dialled internal number that is not one of the call's
    phones (after a pickup or transfer ``dst`` is another phone, which is no group)."""
    if not dst or dst == person or dst in devices or not rule.is_internal(dst):
        return ""
    return dst


def _order(leg: Leg) -> tuple[datetime, int]:
    return (leg.start, leg.sequence)


def _overlapping(
    spans: list[tuple[datetime, datetime, str]], lo: datetime, hi: datetime
) -> list[str]:
    """The keys of the spans (sorted by start) that overlap [lo, hi]. One channel name exists
    once at a time, so going back from the last span starting by ``hi``, the first that ended
    before ``lo`` ends the search."""
    found = []
    at = bisect_right(spans, hi, key=_first) - 1
    while at >= 0 and spans[at][1] >= lo:
        found.append(spans[at][2])
        at -= 1
    return found


def _first(item: tuple[datetime, datetime, str]) -> datetime:
    return item[0]


def _joined_through(own: str, target: str) -> list[str]:
    """The channel names through which a leg joins other legs' calls: its own (not DAHDI's,
    whose port names come again call after call) and the channels its dstchannel stands for."""
    names = [own] if own and not own.startswith("DAHDI/") else []
    return names + _names(target) if target else names


def _names(target: str) -> list[str]:
    """The channels a leg's dstchannel stands for: itself, and a Local ;1's ;2 twin."""
    if target.startswith("Local/") and target.endswith(";1"):
        return [target, target[:-1] + "2"]
    return [target]


def link_by_channels(
    groups: dict[str, list[Any]],
    channel: Callable[[Any], str],
    dstchannel: Callable[[Any], str],
    span: Callable[[Any], tuple[datetime, datetime]],
    linked: Callable[[Any], bool],
) -> dict[str, list[Any]]:
    """Join the groups of one call that a file without ``linkedid`` (Master.csv) splits.

    Without linkedid the legs are grouped by uniqueid, which is each *channel's* id: the rows
    a phone's own channel leaves after a pickup or transfer, and the ``;2`` half of a Local
    channel a queue rang, come out as calls of their own. A leg whose ``dstchannel`` is the
    ``channel`` of a leg in another group (or, for ``Local/...;1``, its ``;2`` twin), at a time
    the two overlap, joins the two groups. Groups whose legs carry a linkedid are left alone:
    Asterisk has said which call they belong to.

    A file without uniqueid either (cdr_csv's own 16 columns) keys each leg by its start and
    channel: the caller's rows after a transfer or a pickup then start anew on the same
    channel. Legs of one channel name whose times overlap or touch (within a second) are one
    call too (a channel name exists once at a time); but not DAHDI's, whose port names
    (``DAHDI/1-1``) come again call after call. (A pickup leaves the caller's first row
    seconds short of the next: those two stay apart; IAX2 gives a call number again, so a
    wider gap could join two callers.)"""
    owner: dict[str, list[tuple[datetime, datetime, str]]] = {}
    for key, legs in groups.items():
        for leg in legs:
            name = channel(leg)
            if name and not linked(leg):
                owner.setdefault(name, []).append((*span(leg), key))
    for spans in owner.values():  # by start: a reused name (DAHDI/1-1) is found by bisection
        spans.sort()
    parent = {key: key for key in groups}
    earliest = {key: min(span(leg)[0] for leg in legs) for key, legs in groups.items()}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def join(one: str, two: str) -> None:
        if root(one) != root(two):
            first, second = sorted((root(one), root(two)), key=earliest.__getitem__)
            parent[second] = first

    slack = timedelta(seconds=1)
    for key, legs in groups.items():
        for leg in legs:
            if linked(leg):
                continue
            lo, hi = span(leg)
            for name in _joined_through(channel(leg), dstchannel(leg)):
                for other in _overlapping(owner.get(name, []), lo - slack, hi + slack):
                    join(other, key)
    if all(parent[k] == k for k in parent):
        return groups
    merged: dict[str, list[Any]] = {}
    for key, legs in groups.items():
        merged.setdefault(root(key), []).extend(legs)
    return merged


__all__ = [
    "Channel",
    "Derived",
    "derive",
    "link_by_channels",
    "parse_channel",
    "person_of",
    "queue_of",
    "talk_of",
    "via_of",
]
