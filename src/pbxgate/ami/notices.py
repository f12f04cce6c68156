"""Notifications from AMI alone: no dialplan change at all.

With ``[ami] enabled``, ``pbxgate serve`` follows the manager and queues, for every inbound call,
the events the AGI would queue: ``incoming`` when the call appears, ``missed`` when it ends
without any phone answering. Their ids are the AGI's (``incoming:<linkedid>``,
``missed:<linkedid>``), so where the dialplan runs the AGI as well the outbox keeps one of each
and nobody is told twice.
"""

from __future__ import annotations

import asyncio
import logging

from pbxgate.ami.calls import ENDED, UNKNOWN_END, CallState, CallTracker
from pbxgate.ami.settings import AmiSettings
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.notify.events import INCOMING, MISSED, CallEvent
from pbxgate.notify.service import outbox_for, wake_workers
from pbxgate.notify.settings import NotifySettings

log = logging.getLogger(__name__)


class CallNotices:
    """The events to queue for a call's changes: each inbound call's ``incoming`` once, and its
    ``missed`` when it ends unanswered."""

    def __init__(self, rule: InternalRule) -> None:
        self.rule = rule
        self._announced: set[str] = set()

    def __call__(self, state: CallState) -> CallEvent | None:
        inbound = self.rule.direction(state.caller_number, state.did, state.channel, state.context)
        if inbound != "inbound":
            return None
        if state.state == ENDED:
            self._announced.discard(state.linkedid)
            # answered: a phone took it, or it was bridged (talking) even if to no phone we
            # could name; and a call whose end was not seen is not called missed
            if state.answered_by or state.answered_at or state.cause == UNKNOWN_END:
                return None
            return self._event(MISSED, state, state.ended_at, state.dial_status or "NOANSWER")
        if state.linkedid in self._announced:
            return None
        self._announced.add(state.linkedid)
        return self._event(INCOMING, state, state.started_at, "")

    def _event(self, kind: str, state: CallState, when: float, status: str) -> CallEvent:
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
        )


async def run_notices(settings: Settings, stop: asyncio.Event) -> None:
    """Follow the manager and queue the calls' events until ``stop`` (``pbxgate serve``)."""
    ami = settings.get(AmiSettings)
    ami.credentials()  # a one-line error before anything starts
    ns = settings.get(NotifySettings)
    outbox = outbox_for(ns.outbox_path(), ns.outbox_file_mode)
    notices = CallNotices(InternalRule.from_settings(settings.get(CdrSettings)))

    def changed(state: CallState) -> None:
        event = notices(state)
        if event is not None and outbox.enqueue(event):
            wake_workers()

    await CallTracker(changed).follow(ami.client, stop)


__all__ = ["CallNotices", "run_notices"]
