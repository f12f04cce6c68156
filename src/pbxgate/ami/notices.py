"""Notifications from AMI alone: no dialplan change at all.

With ``[ami] enabled``, ``pbxgate serve`` follows the manager and queues, for every inbound call,
the events the AGI would queue: ``incoming`` when the call appears, ``missed`` when it ends
without any phone answering. Their ids are the AGI's (``incoming:<linkedid>``,
``missed:<linkedid>``), so where the dialplan runs the AGI as well the outbox keeps one of each
and nobody is told twice. The manager alone also tells the middle and the end of an answered
call: ``answered`` (which phone took it) and ``ended`` (how long they talked, and with whom:
after a transfer, the transfer's target), the states a message that follows its call is edited
to. The missed calls still waiting for a call-back are
read back from the outbox when the service starts, so a restart forgets none of them; so are
the transfers of the calls in progress (the manager tells a restarted service only who talks
now), so that a transfer after the restart is a new state of the message, not one shown
before, and the call ends with every transfer counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from pbxgate.ami.calls import ENDED as CALL_ENDED
from pbxgate.ami.calls import UNKNOWN_END, CallState, CallTracker
from pbxgate.ami.live import LiveHub, serve_socket
from pbxgate.ami.settings import AmiSettings, ManagerSettings
from pbxgate.cdr.missed import number_key
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.notify.events import (
    ANSWERED,
    CALLBACK,
    CALLED_BACK,
    ENDED,
    GOT_THROUGH,
    INCOMING,
    MISSED,
    CallEvent,
)
from pbxgate.notify.service import outbox_for, wake_workers
from pbxgate.notify.settings import NotifySettings

log = logging.getLogger(__name__)

# How far back a restarted service looks for the calls that may still be in progress.
CALL_MEMORY = 12 * 3600.0


class CallNotices:
    """The events to queue for a call's changes: each inbound call's ``incoming`` once, its
    ``answered`` once a phone takes it, and at its end ``ended`` (answered) or ``missed``;
    and for a missed call, ``called_back`` when, within ``callback_hours``, a phone's call to
    that number is answered (or the caller's next call is: "got through"), the rule of
    ``pbxgate cdr missed``."""

    def __init__(
        self,
        rule: InternalRule,
        pbx: str = "",
        callback_hours: float = 24.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rule = rule
        self.clock = clock
        self.pbx = pbx
        self.callback_seconds = callback_hours * 3600
        # linkedid -> 1: incoming queued, 2 + n: answered queued, and n transfers after it
        self._announced: dict[str, int] = {}
        # linkedid -> transfers queued before this start, of calls not known to have ended
        self._transferred: dict[str, int] = {}
        self._missed: dict[str, list[CallEvent]] = {}  # number_key(caller) -> its missed calls

    def remember(self, events: Iterable[CallEvent], now: float) -> int:
        """Take back from events queued earlier (``pbxgate serve`` restarted) the missed calls
        still waiting for a call-back: ``missed`` events of this PBX within ``callback_hours``
        of ``now`` whose call no ``called_back`` event resolved; and how many times each call
        not known to have ended (within :data:`CALL_MEMORY`) was transferred. Returns how many
        missed calls are waiting."""
        missed: dict[str, CallEvent] = {}
        resolved: set[str] = set()
        for event in events:
            if event.pbx != self.pbx:
                continue
            if event.kind in (ANSWERED, ENDED, MISSED) and now - event.occurred_at <= CALL_MEMORY:
                if event.kind == ANSWERED:
                    told = self._transferred.get(event.linkedid, 0)
                    self._transferred[event.linkedid] = max(told, event.transfers)
                else:
                    self._transferred.pop(event.linkedid, None)
            if now - event.occurred_at > self.callback_seconds:
                continue
            if event.kind == MISSED and number_key(event.caller_number):
                missed[event.linkedid] = event
            elif event.kind == CALLED_BACK:
                resolved.add(event.linkedid)
        waiting = [e for linkedid, e in missed.items() if linkedid not in resolved]
        for event in sorted(waiting, key=lambda e: e.occurred_at):
            calls = self._missed.setdefault(number_key(event.caller_number), [])
            if all(m.linkedid != event.linkedid for m in calls):
                calls.append(event)
        return len(waiting)

    def __call__(self, state: CallState) -> list[CallEvent]:
        direction = self.rule.direction(
            state.caller_number, state.did, state.channel, state.context
        )
        resolved = self._resolved(state, direction)
        if direction != "inbound":
            return resolved
        return resolved + self._inbound(state)

    def _resolved(self, state: CallState, direction: str) -> list[CallEvent]:
        """A ``called_back`` event when ``state`` is the first answered call that resolves a
        missed one: a phone's call out to its number, or the caller's own next call."""
        if not self._missed or not state.answered_at or state.state == CALL_ENDED:
            return []
        number = state.did if direction == "outbound" else state.caller_number
        if direction not in ("inbound", "outbound") or not number_key(number):
            return []
        waiting = [
            m
            for m in self._missed.get(number_key(number), [])
            if m.linkedid != state.linkedid
            and state.answered_at - m.occurred_at <= self.callback_seconds
        ]
        if not waiting:
            return []
        del self._missed[number_key(number)]  # every missed call of that number is resolved
        outbound = direction == "outbound"
        return [
            replace(
                missed,
                kind=CALLED_BACK,
                occurred_at=state.answered_at,
                dialstatus=CALLBACK if outbound else GOT_THROUGH,
                answered_by=state.caller_number if outbound else state.answered_by,
                answered_name=state.caller_name if outbound else state.answered_name,
            )
            for missed in waiting
        ]

    def _inbound(self, state: CallState) -> list[CallEvent]:
        before = self._transferred.get(state.linkedid, 0)
        if before:  # the manager counts from this start; the outbox knew of these
            state = replace(state, transfers=before + state.transfers)
        told = self._announced.get(state.linkedid, 0)
        events = []
        if not told:
            events.append(self._event(INCOMING, state, state.started_at, ""))
        if state.state == CALL_ENDED:
            self._announced.pop(state.linkedid, None)
            self._transferred.pop(state.linkedid, None)
            if state.cause == UNKNOWN_END:
                return events  # how it ended was not seen: neither missed nor ended
            # answered: a phone took it, or it was bridged (talking) even if to no phone we
            # could name
            if state.answered_by or state.answered_at:
                talk = max(0.0, state.ended_at - state.answered_at) if state.answered_at else 0.0
                # after a transfer the call ends with the transfer's target
                last = _talking(state)
                return [*events, self._event(ENDED, last, state.ended_at, "ANSWER", talk)]
            status = state.dial_status or "NOANSWER"
            missed = self._event(MISSED, state, state.ended_at, status)
            if number_key(state.caller_number):
                self._forget_before(state.ended_at - self.callback_seconds)
                self._missed.setdefault(number_key(state.caller_number), []).append(missed)
            return [*events, missed]
        if (state.answered_by or state.answered_at) and told < 2:
            # after a restart: the id of the state last queued, which the outbox keeps once
            events.append(self._event(ANSWERED, state, state.answered_at, "ANSWER"))
            self._announced[state.linkedid] = 2 + state.transfers
        elif told >= 2 and state.transfers > told - 2:  # transferred: now talking with another
            events.append(self._event(ANSWERED, _talking(state), self.clock(), "ANSWER"))
            self._announced[state.linkedid] = 2 + state.transfers
        elif not told:
            self._announced[state.linkedid] = 1
        return events

    def _forget_before(self, moment: float) -> None:
        for key, calls in list(self._missed.items()):
            kept = [e for e in calls if e.occurred_at >= moment]
            if kept:
                self._missed[key] = kept
            else:
                del self._missed[key]

    def _event(
        self, kind: str, state: CallState, when: float, status: str, talk: float = 0.0
    ) -> CallEvent:
        return CallEvent(
            kind=kind,
            uniqueid=state.linkedid,
            linkedid=state.linkedid,
            caller_number=state.caller_number,
            caller_name=state.caller_name,
            did=state.did,
            channel=state.channel,
            context=state.context,
            extension=state.did,
            occurred_at=when,
            dialstatus=status,
            extra=(("source", "ami"),),
            answered_by=state.answered_by,
            answered_name=state.answered_name,
            talk_seconds=round(talk, 3),
            pbx=self.pbx,
            recorded=state.recorded,
            transfers=state.transfers,
        )


class Queueing:
    """Queues the events of the calls' changes in the outbox, in order. While the outbox
    fails (a shared server restarting, a full disk, a lock held too long), they wait here and
    go again after 1 s, doubling up to 30 s, and the manager's session goes on: the tracker
    has already moved on (a call that ended is forgotten), so an event dropped here could not
    be made again, and a session dropped would lose the events of the gap. At most ``limit``
    wait; beyond, and at the end for those still waiting, each is logged whole, one line."""

    def __init__(
        self,
        store: Callable[[list[CallEvent]], list[bool]],
        wake: Callable[[], None] = lambda: None,
        *,
        limit: int = 50_000,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.store = store
        self.wake = wake
        self.limit = limit
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.waiting: list[CallEvent] = []
        self._delay = first_delay
        self._again: asyncio.TimerHandle | None = None

    def add(self, events: Iterable[CallEvent]) -> None:
        self.waiting.extend(events)
        if len(self.waiting) > self.limit:
            dropped, self.waiting = self.waiting[: -self.limit], self.waiting[-self.limit :]
            for event in dropped:
                log.error("AMI: %d call events wait for the outbox; not queued: %s",
                          self.limit, event.to_json())  # fmt: skip
        if self._again is None:  # else they go with the next try
            self.flush()

    def flush(self) -> bool:
        """Store what waits; False when the outbox failed (tried again later)."""
        self._again = None
        if not self.waiting:
            return True
        try:
            stored = self.store(self.waiting)
        except PbxgateError as exc:
            log.error("AMI: %s; %d call event(s) wait, tried again in %.0f s",
                      exc, len(self.waiting), self._delay)  # fmt: skip
            self._again = asyncio.get_running_loop().call_later(self._delay, self.flush)
            self._delay = min(self.max_delay, self._delay * 2)
            return False
        self.waiting = []
        self._delay = self.first_delay
        if any(stored):
            self.wake()
        return True

    def close(self) -> None:
        """Try once more; what still waits is logged whole."""
        if self._again is not None:
            self._again.cancel()
        if not self.flush():
            if self._again is not None:
                self._again.cancel()
                self._again = None
            for event in self.waiting:
                log.error("AMI: could not queue a call event; event: %s", event.to_json())
            self.waiting = []


def _talking(state: CallState) -> CallState:
    """``state`` naming the phone the caller talks with now (after a transfer, its target)."""
    if not state.talking_to:
        return state
    return replace(state, answered_by=state.talking_to, answered_name=state.talking_name)


async def run_notices(
    settings: Settings, stop: asyncio.Event, *, hub: LiveHub | None = None
) -> None:
    """Follow the managers (``[ami]`` and ``[ami.managers]``) and queue their calls' events
    until ``stop`` (``pbxgate serve``); publish every change of each PBX's calls to its hub
    and stream it on its live socket (``hub``: the first manager's, for tests)."""
    ami = settings.get(AmiSettings)
    managers = ami.followed()  # one-line errors before anything starts
    ns = settings.get(NotifySettings)
    outbox = outbox_for(ns)
    rule = InternalRule.from_settings(settings.get(CdrSettings))
    now = time.time()
    horizon = now - max(ns.callback_hours * 3600, CALL_MEMORY)
    earlier = outbox.events_since((MISSED, CALLED_BACK, ANSWERED, ENDED), horizon)

    async def follow_one(manager: ManagerSettings, hub: LiveHub) -> None:
        notices = CallNotices(rule, manager.pbx, ns.callback_hours)
        waiting = notices.remember(earlier, now)
        if waiting:
            log.info("%s: %d missed calls from before this start wait for a call-back",
                     manager.pbx or "AMI", waiting)  # fmt: skip

        queueing = Queueing(outbox.enqueue_many, wake_workers)

        def changed(state: CallState) -> None:
            hub.publish(state)
            events = notices(state)
            if events:
                queueing.add(events)

        socket = asyncio.ensure_future(serve_socket(hub, manager.live_socket_path(), stop))
        try:
            await CallTracker(changed).follow(manager.client, stop)
        finally:
            stop.set()  # one manager's follower failed: the others stop with it
            queueing.close()
            await socket

    tasks = [
        asyncio.ensure_future(follow_one(m, hub if i == 0 and hub is not None else LiveHub()))
        for i, m in enumerate(managers)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["CALL_MEMORY", "CallNotices", "Queueing", "run_notices"]
