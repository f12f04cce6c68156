"""The delivery worker: plans new events, claims due deliveries, sends, records the outcome.

The clock and the random source are passed in (tests step them); the asyncio loop only waits.
Each delivery's idempotency key is ``"<event_id>|<channel>|<recipient>"``: the same on every
attempt, so a resend after a crash is recognised by VK (``random_id``) and webhooks.

When messages follow their calls (``follow``), each event is planned as the next state of its
call's thread (pbxgate.notify.outbox): a channel that edits (VK, Telegram, webhook) shows the
first state and edits in the later ones; one that cannot (e-mail) gets only the final state.
Events of the middle of a call (``answered``, ``ended``) go nowhere without ``follow``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping

from pbxgate.errors import DeliveryError
from pbxgate.notify.apart import WORKER_STOP_WAIT
from pbxgate.notify.channels.base import Channel, Dead, Gone, Key, Outcome, Retry, Sent, can_edit
from pbxgate.notify.events import INCOMING, MISSED, CallEvent
from pbxgate.notify.outbox import Delivery, Outbox, Plan
from pbxgate.notify.recipients import RecipientBook, ref
from pbxgate.notify.retry import RetryPolicy
from pbxgate.notify.routing import Router
from pbxgate.notify.templates import Renderer

log = logging.getLogger(__name__)

# Events planned in one transaction. The outbox's write lock is the calls' commits' too: a
# transaction of 500 events held it ~10 ms, and every call in flight waited that long.
PLAN_BATCH = 50
PLAN_BATCHES = 10  # at most in one pass, between sends


def idempotency_key(delivery: Delivery) -> Key:
    text = f"{delivery.event.event_id}|{delivery.channel}|{delivery.recipient}"
    return Key(text, delivery.number)


class Worker:
    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        router: Router,
        renderer: Renderer,
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float],
        rng: random.Random | None = None,
        lease: float = 120.0,
        concurrency: int = 8,
        follow: bool = False,
        edit_delay: float = 1.0,
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.router = router
        self.book = RecipientBook(router.all_recipients())
        self.renderer = renderer
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.rng = rng or random.Random()
        self.lease = lease
        self.concurrency = max(1, concurrency)
        self.follow = follow
        self.edit_delay = edit_delay
        self.stop_wait = WORKER_STOP_WAIT  # then the sends in flight are cut
        self._sending = 0  # deliveries of the pass in progress not yet told

    def plan_new(self) -> int:
        """Turn unplanned events into delivery rows, in one transaction for up to
        :data:`PLAN_BATCH` events; return how many events it planned (all of them: fewer)."""
        plans = [self._plan(event) for event in self.outbox.unplanned(PLAN_BATCH)]
        if plans:
            self.outbox.plan_many(plans, self.clock(), edit_delay=self.edit_delay)
        return len(plans)

    def _plan(self, event: CallEvent) -> Plan:
        # the outbox keeps references, never a webhook URL's secret parts (recipients.py)
        targets = [(ch, ref(r)) for ch, r in self.router.targets(event)]
        if not self.follow:
            if event.kind not in (INCOMING, MISSED):
                targets = []  # the middle of a call is shown only by a message that follows it
            elif not targets:
                log.info("event %s matches no route; nothing to send", event.event_id)
            return Plan(event.event_id, targets)
        # a channel that cannot edit (e-mail) gets the final state alone
        targets = [
            (ch, r)
            for ch, r in targets
            if event.final or (ch in self.channels and can_edit(self.channels[ch]))
        ]
        return Plan(event.event_id, targets, thread=event.call_id, stage=event.stage)

    async def run_once(self) -> int:
        """One pass: plan, claim what is due, deliver concurrently. Returns deliveries tried."""
        for _ in range(PLAN_BATCHES):  # a busy second's events, a transaction a batch
            if self.plan_new() < PLAN_BATCH:
                break
            await asyncio.sleep(0)
        # no more than are sent at once: a lease starts at the claim, so a row that waited
        # in this process for a slow channel could run out and be taken by another node
        claimed = self.outbox.claim(self.clock(), self.lease, self.concurrency)
        if not claimed:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(d: Delivery) -> None:
            self._sending += 1
            try:
                async with gate:
                    await self.deliver(d)
            finally:
                self._sending -= 1

        await asyncio.gather(*(one(d) for d in claimed))
        return len(claimed)

    async def attempt(self, d: Delivery) -> Outcome:
        channel = self.channels.get(d.channel)
        if channel is None:
            return Dead(f"channel {d.channel} is not enabled any more")
        recipient = self.book.resolve(d.recipient)
        if recipient is None:
            return Dead("this recipient is no longer in the settings")
        if d.closed:
            return Sent(f"not shown: {d.closed}")
        try:
            message = self.renderer.render(d.event)
            key = idempotency_key(d)
            if d.shown_at is None:
                return await channel.send(message, recipient, key)
            # the call's message is shown already: edit it
            if d.ref and can_edit(channel):
                window = getattr(channel, "edit_window", None)
                if window is not None and self.clock() - d.shown_at > window:
                    hours = window / 3600
                    return Gone(f"not edited: {d.channel} edits a message within {hours:g} h")
                result: Outcome = await channel.edit(message, recipient, d.ref, key)  # type: ignore[attr-defined]
                return result
            if not d.event.final:
                return Sent("not shown: this message cannot be edited; the final state will be")
            return await channel.send(message, recipient, key)
        except Exception as exc:  # a bug in a channel, or a text, must not stop the worker
            log.exception("channel %s failed unexpectedly", d.channel)
            return Retry(f"unexpected {type(exc).__name__} in channel {d.channel}")

    async def deliver(self, d: Delivery) -> Outcome:
        outcome = await self.attempt(d)
        now = self.clock()
        if isinstance(outcome, Sent):
            self.outbox.mark_sent(d.id, now, outcome.detail, outcome.ref, attempt=d.attempts)
            log.info("sent %s via %s to %s", d.event.event_id, d.channel, d.recipient)
        elif isinstance(outcome, Gone):
            self.outbox.mark_gone(d.id, now, outcome.reason, attempt=d.attempts)
            log.info("%s to %s: %s", d.channel, d.recipient, outcome.reason)
        elif isinstance(outcome, Dead):
            self.outbox.mark_dead(d.id, now, outcome.reason, attempt=d.attempts)
            log.warning("%s to %s: dead letter: %s", d.channel, d.recipient, outcome.reason)
        else:
            next_at = self.policy.next_attempt_at(d.attempts, now, self.rng, outcome.after)
            if next_at is None:
                reason = f"gave up after {d.attempts} attempts: {outcome.reason}"
                self.outbox.mark_dead(d.id, now, reason, attempt=d.attempts)
                log.warning("%s to %s: %s", d.channel, d.recipient, reason)
            else:
                self.outbox.mark_retry(d.id, now, next_at, outcome.reason, attempt=d.attempts)
                log.info(
                    "%s to %s: %s; retry in %.1f s",
                    d.channel,
                    d.recipient,
                    outcome.reason,
                    next_at - now,
                )
        return outcome

    async def run(
        self,
        stop: asyncio.Event,
        wake: asyncio.Event,
        poll_interval: float,
        *,
        until_idle: bool = False,
    ) -> None:
        """Deliver until ``stop`` is set; ``wake`` cuts a wait short (a new event in-process).

        With ``until_idle`` it also returns once nothing is left to send now: only retries
        whose backoff has not run out (they wait for the next run), and dead letters (an edit
        waiting a moment for its call's next change is waited for).
        The caller holds the outbox's worker lock, so in-flight rows are orphans of a worker
        that died: they go back to pending and are sent again with the same idempotency key.
        """
        released = self.outbox.release_inflight(self.clock())
        if released:
            log.warning("resending %d deliveries a stopped worker left in flight", released)
        failing = 0
        while not stop.is_set():
            wake.clear()
            try:
                tried = await self._pass(stop)
                if tried:
                    failing = 0
                    continue
                due = self.outbox.next_due()
                if (
                    until_idle
                    and (due is None or due > self.clock())
                    and self.outbox.backlog() == 0
                    and not self.outbox.waiting_first_attempt()
                ):
                    return
            except DeliveryError as exc:
                if until_idle:
                    raise
                # the outbox's database went away for a moment (a shared server restarting,
                # a deadlock between nodes): the calls keep being taken; try again shortly
                failing += 1
                log.error("outbox: %s; trying again in %.0f s", exc, min(30.0, failing))
                await _wait_any(stop, wake, min(30.0, failing))
                continue
            failing = 0
            timeout = poll_interval
            if due is not None:
                # at least a moment: what is due may be being taken by another node right now
                timeout = min(poll_interval, max(0.01, due - self.clock()))
            await _wait_any(stop, wake, timeout)

    async def _pass(self, stop: asyncio.Event) -> int:
        """:meth:`run_once`, cut :attr:`stop_wait` seconds after ``stop`` is set."""
        work = asyncio.ensure_future(self.run_once())
        halt = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, halt}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                await asyncio.wait({work}, timeout=self.stop_wait)
            if work.done():
                return work.result()
            cut = self._sending
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
            log.warning(
                "%d send(s) still in flight were cut by the stop after %g s; they go again, "
                "under the same key, when a worker next starts (VK and webhooks show such a "
                "message once; Telegram and e-mail may show it twice)",
                cut,
                self.stop_wait,
            )
            return 0
        finally:
            halt.cancel()
            work.cancel()  # when the run itself is cancelled


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


__all__ = ["Worker", "idempotency_key"]
