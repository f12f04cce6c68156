"""The live page's hub: the calls in progress and the notifications just queued, pushed to
every open page as they change.

Theory of operation. The hub lives on the console's event loop and is only touched there, so
it needs no lock. Two feeders write to it (``livefeed.py``):

* the outbox: every call event queued (:meth:`LiveHub.call_event`; an ``incoming`` adds the
  call, ``answered`` makes it talking, ``missed``/``ended`` ends it) and every delivery
  planned (:meth:`LiveHub.delivery`);
* the manager (AMI, with ``[ami] enabled``): each PBX's calls in progress and every change of
  them (:meth:`LiveHub.manager_calls`, :meth:`LiveHub.manager_call`), which know better than
  the outbox: a call the manager shows is never overwritten by a queued event.

Without the manager pbxgate learns only that a call came in (and, for a missed call, that it
ended), so such a call leaves the table after ``ttl`` seconds unless its end was queued.

Readers subscribe (:meth:`LiveHub.subscribe`): each gets the snapshot, then every change, in
order, through a queue of its own. A reader more than ``backlog`` changes behind (a slow or gone
browser) is dropped: its stream ends, the browser's EventSource connects again and starts from
a fresh snapshot. Publishing never waits for a reader.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import tzinfo
from typing import Any

from pbxgate.notify.events import ANSWERED, ENDED, INCOMING, MISSED, CallEvent
from pbxgate.notify.timezone import local_time

# A call's state: the manager's own (ringing, talking), or "incoming" when only the queued
# event is known (FastAGI without the manager: pbxgate saw the call come in, nothing more).
RINGING, TALKING, CAME_IN = "ringing", "talking", "incoming"
AMI, OUTBOX = "ami", "outbox"
BACKLOG = 256  # changes a reader may be behind before it is dropped
KEEP = 30  # notifications kept for the snapshot
TTL = 600.0  # seconds a call learnt from the outbox alone stays listed
MAX_READERS = 64  # open live pages at once (each one an open connection)
MAX_PER_USER = 6  # of them one user's: a script of one viewer cannot lock the page for all


@dataclass(frozen=True)
class LiveCall:
    key: str  # the call's id: its linkedid, "<pbx>/<linkedid>" with several PBXes
    pbx: str
    caller: str
    caller_name: str
    called: str  # the number dialled
    state: str  # RINGING, TALKING or CAME_IN
    since: float  # Unix time the call started
    answered_by: str = ""  # the phone it is talking with
    source: str = AMI  # AMI: the manager's view; OUTBOX: learnt from the queued events
    seen: float = 0.0  # when the outbox last told of it (for ``ttl``)


def call_key(pbx: str, linkedid: str) -> str:
    """The key a call has in the hub: the outbox's call id (CallEvent.call_id)."""
    return f"{pbx}/{linkedid}" if pbx else linkedid


def from_state(pbx: str, state: Mapping[str, Any]) -> LiveCall:
    """A live call from a manager's CallState (as a dict: the live socket's JSON)."""
    talking = str(state.get("state", "")) == TALKING
    return LiveCall(
        key=call_key(pbx, str(state["linkedid"])),
        pbx=pbx,
        caller=str(state.get("caller_number", "")),
        caller_name=str(state.get("caller_name", "")),
        called=str(state.get("did", "")),
        state=TALKING if talking else RINGING,
        since=float(state.get("started_at", 0.0)),
        answered_by=str(state.get("talking_to") or state.get("answered_by") or ""),
    )


class Reader:
    """One subscriber's queue of ``(event, data)`` changes; None ends it."""

    def __init__(self, owner: str = "") -> None:
        self.owner = owner  # the user whose page it is
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
        self.dropped = False

    async def next(self, timeout: float) -> tuple[str, dict[str, Any]] | bool | None:
        """The next change; None once the stream ends; False when ``timeout`` passed first."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return False


class Busy(Exception):
    """Too many readers already: in all (``mine`` False), or of this reader's user."""

    def __init__(self, *, mine: bool = False) -> None:
        super().__init__("too many readers of this user" if mine else "too many readers")
        self.mine = mine


class LiveHub:
    def __init__(
        self,
        zone: tzinfo | None = None,
        *,
        backlog: int = BACKLOG,
        keep: int = KEEP,
        ttl: float = TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.zone = zone
        self.backlog = backlog
        self.ttl = ttl
        self.clock = clock
        self.calls: dict[str, LiveCall] = {}
        self.notes: deque[dict[str, Any]] = deque(maxlen=keep)
        self.sources: dict[str, str] = {}  # "outbox", "ami:<pbx>" -> how it is followed
        self._ended: dict[str, float] = {}  # calls that ended lately: a late event is old news
        self._readers: set[Reader] = set()
        self.closed = False

    # -- readers -----------------------------------------------------------------------------

    def subscribe(self, owner: str = "") -> tuple[dict[str, Any], Reader]:
        """The snapshot and a reader of every change after it (none lost between the two:
        both happen in one step of the loop); :class:`Busy` past :data:`MAX_READERS` in all
        or :data:`MAX_PER_USER` of ``owner``'s."""
        if len(self._readers) >= MAX_READERS:
            raise Busy
        if owner and sum(r.owner == owner for r in self._readers) >= MAX_PER_USER:
            raise Busy(mine=True)
        reader = Reader(owner)
        if self.closed:
            reader.queue.put_nowait(None)
        else:
            self._readers.add(reader)
        return self.snapshot(), reader

    def unsubscribe(self, reader: Reader) -> None:
        self._readers.discard(reader)

    @property
    def readers(self) -> int:
        return len(self._readers)

    def close(self) -> None:
        """End every stream after what it has queued (the console stops)."""
        self.closed = True
        for reader in list(self._readers):
            self._end(reader)

    def _end(self, reader: Reader, *, discard: bool = False) -> None:
        self._readers.discard(reader)
        while discard and not reader.queue.empty():
            reader.queue.get_nowait()
        reader.queue.put_nowait(None)

    def _publish(self, event: str, data: dict[str, Any]) -> None:
        for reader in list(self._readers):
            if reader.queue.qsize() >= self.backlog:
                reader.dropped = True  # it reconnects and starts from a fresh snapshot
                self._end(reader, discard=True)
            else:
                reader.queue.put_nowait((event, data))

    def snapshot(self) -> dict[str, Any]:
        calls = sorted(self.calls.values(), key=lambda c: (c.since, c.key))
        return {
            "calls": [self.show(c) for c in calls],
            "notifications": list(self.notes),
            "sources": dict(self.sources),
        }

    def show(self, call: LiveCall) -> dict[str, Any]:
        data = asdict(call)
        del data["seen"]
        data["since_text"] = self.time_text(call.since)
        return data

    def time_text(self, when: float) -> str:
        return f"{local_time(when, self.zone):%H:%M:%S}" if when else ""

    # -- the manager -------------------------------------------------------------------------

    def manager_calls(self, pbx: str, states: list[Mapping[str, Any]]) -> None:
        """A manager's calls in progress now (after a connection): they replace what the hub
        had from that manager."""
        fresh = {c.key: c for c in (from_state(pbx, s) for s in states)}
        for key, call in list(self.calls.items()):
            if call.source == AMI and call.pbx == pbx and key not in fresh:
                self._remove(key)
        for call in fresh.values():
            self._put(call)

    def manager_call(self, pbx: str, state: Mapping[str, Any]) -> None:
        """One change of a call the manager follows."""
        if str(state.get("state", "")) == "ended":
            key = call_key(pbx, str(state["linkedid"]))
            self._ended[key] = self.clock()
            self._remove(key)
            return
        self._put(from_state(pbx, state))

    def manager_gone(self, pbx: str) -> None:
        """The manager's stream ended: its calls are no longer known."""
        for key, call in list(self.calls.items()):
            if call.source == AMI and call.pbx == pbx:
                self._remove(key)

    # -- the outbox --------------------------------------------------------------------------

    def call_event(self, event: CallEvent) -> None:
        """A call event just queued: what it tells of its call, unless the manager knows."""
        key, now = event.call_id, self.clock()
        known = self.calls.get(key)
        if event.kind in (MISSED, ENDED):
            self._ended[key] = now
            if known is not None and known.source == OUTBOX:
                self._remove(key)
            return
        if event.kind not in (INCOMING, ANSWERED) or key in self._ended:
            return
        if known is not None and known.source == AMI:
            return
        talking = event.kind == ANSWERED or (known is not None and known.state == TALKING)
        call = LiveCall(
            key=key,
            pbx=event.pbx,
            caller=event.caller_number,
            caller_name=event.caller_name,
            called=event.did,
            state=TALKING if talking else CAME_IN,
            since=known.since if known is not None else event.occurred_at,
            answered_by=event.answered_by or (known.answered_by if known else ""),
            source=OUTBOX,
            seen=now,
        )
        self._put(call)

    def delivery(self, note: dict[str, Any]) -> None:
        """A notification just planned (a delivery row, recipient already masked)."""
        self.notes.appendleft(note)
        self._publish("notification", note)

    def expire(self) -> None:
        """Forget the calls learnt from the outbox alone after ``ttl`` seconds."""
        now = self.clock()
        for key, call in list(self.calls.items()):
            if call.source == OUTBOX and max(call.since, call.seen) < now - self.ttl:
                self._remove(key)
        for key, when in list(self._ended.items()):
            if when < now - self.ttl:
                del self._ended[key]

    def set_source(self, name: str, state: str) -> None:
        if self.sources.get(name) != state:
            self.sources[name] = state
            self._publish("sources", dict(self.sources))

    # -- changes -----------------------------------------------------------------------------

    def _put(self, call: LiveCall) -> None:
        known = self.calls.get(call.key)
        if known is not None and replace(known, seen=call.seen) == call:
            self.calls[call.key] = call
            return  # nothing a reader would see changed
        self.calls[call.key] = call
        self._publish("call", self.show(call))

    def _remove(self, key: str) -> None:
        if self.calls.pop(key, None) is not None:
            self._publish("gone", {"key": key})


__all__ = [
    "AMI",
    "CAME_IN",
    "OUTBOX",
    "RINGING",
    "TALKING",
    "Busy",
    "LiveCall",
    "LiveHub",
    "Reader",
    "call_key",
    "from_state",
]
