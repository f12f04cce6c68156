"""What feeds the live page's hub (``livehub.py``): the outbox, and the manager's live calls.

Two setups, one hub:

* inside ``pbxgate serve`` (``[web] enabled``, :func:`in_process`): the outbox is read again as
  soon as this process has queued something (the wake-up the delivery workers get, see
  :func:`pbxgate.notify.service.woken`), and the first manager's calls come straight from the
  service's :class:`pbxgate.ami.live.LiveHub`;
* ``pbxgate web`` on its own (:func:`standalone`): the outbox is read every second, and each
  manager's calls come from the live socket ``pbxgate serve`` streams them on (``[ami]
  live_socket``), connected again whenever it goes away.

Reading the outbox is kept cheap: an outbox file whose file and write-ahead log have not
changed since the last look is not queried (at most every ``FORCE`` seconds anyway); a call's
events are read from ``LAG`` seconds back, the deliveries from the last one seen on (ids only
grow). The outbox is never created here: until ``pbxgate serve`` has made it, it is "absent".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

from pbxgate.ami.live import LiveHub as AmiHub
from pbxgate.ami.live import read_socket
from pbxgate.ami.settings import AmiSettings, ManagerSettings
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.notify.events import KINDS, CallEvent
from pbxgate.notify.logmask import mask
from pbxgate.notify.outbox import DeliveryRow, Outbox
from pbxgate.notify.recipients import redact
from pbxgate.notify.service import open_outbox, woken
from pbxgate.notify.settings import NotifySettings
from pbxgate.web.livehub import LiveHub

log = logging.getLogger(__name__)

POLL = 1.0  # seconds between looks at the outbox
GAP = 0.2  # at least this long between two looks, however often the service wakes us
FORCE = 15.0  # query even an outbox file that looks unchanged this often
LAG = 120.0  # an event is read if queued up to this long after it occurred
RETRY_FIRST, RETRY_MOST = 2.0, 10.0  # seconds before connecting to a live socket again

Signature = tuple[int, ...] | None


class OutboxFollower:
    """What is new in the outbox since the last :meth:`poll` (blocking: run it in a thread)."""

    def __init__(self, ns: NotifySettings, ttl: float, keep: int) -> None:
        self.ns = ns
        self.ttl = ttl
        self.keep = keep
        self.box: Outbox | None = None
        self.seen: dict[str, float] = {}  # event id -> when it occurred, for the last LAG
        self.after = 0  # the newest delivery seen
        self.signature: Signature = None
        self.looked_at = 0.0

    def poll(self, now: float) -> tuple[str, list[CallEvent], list[DeliveryRow]]:
        """How the outbox is followed ("absent", "following" or an error), the call events
        queued since the last poll (oldest first) and the deliveries (newest first)."""
        first = self.box is None
        if self.box is None:
            if not self.ns.database.url and not self.ns.outbox_path().exists():
                return "absent", [], []
            try:
                self.box = open_outbox(self.ns, synchronous="NORMAL")
            except PbxgateError as exc:
                return f"error: {mask(str(exc))}", [], []
        signature = self._signature()
        quiet = signature is not None and signature == self.signature
        if not first and quiet and now - self.looked_at < FORCE:
            return "following", [], []
        self.signature, self.looked_at = signature, now
        since = now - (self.ttl if first else LAG)
        events = [e for e in self.box.events_since(KINDS, since) if e.event_id not in self.seen]
        for event in events:
            self.seen[event.event_id] = event.occurred_at
        for event_id, when in list(self.seen.items()):
            if when < now - max(self.ttl, LAG):
                del self.seen[event_id]
        rows = self.box.recent(self.keep, self.after)
        if rows:
            self.after = rows[0].id
        return "following", events, rows

    def _signature(self) -> Signature:
        """The outbox file's and its log's size and time of change (None: a database)."""
        if self.ns.database.url:
            return None
        path = self.ns.outbox_path()
        found: list[int] = []
        for name in (path, Path(f"{path}-wal")):
            try:
                info = name.stat()
            except OSError:
                found += [0, 0, 0]
            else:
                found += [info.st_ino, info.st_size, info.st_mtime_ns]
        return tuple(found)

    def close(self) -> None:
        if self.box is not None:
            self.box.close()
            self.box = None


def note(hub: LiveHub, row: DeliveryRow) -> dict[str, Any]:
    """A delivery as the live page lists it: the recipient masked as everywhere else."""
    return {
        "id": row.id,
        "event_id": row.event_id,
        "kind": row.kind,
        "channel": row.channel,
        "recipient": mask(redact(row.recipient)),
        "state": row.state,
        "at": row.updated_at,
        "at_text": hub.time_text(row.updated_at),
    }


async def follow_outbox(
    hub: LiveHub,
    settings: Settings,
    stop: asyncio.Event,
    *,
    wake: asyncio.Event | None = None,
    interval: float = POLL,
) -> None:
    """Feed ``hub`` from the outbox until ``stop``: every ``interval`` seconds, and at once
    (after ``GAP``) when ``wake`` is set."""
    keep = hub.notes.maxlen or 1
    follower = OutboxFollower(settings.get(NotifySettings), hub.ttl, keep)
    told = ""
    try:
        while not stop.is_set():
            if wake is not None:
                wake.clear()  # set again by anything queued while we read
            state, events, rows = await asyncio.to_thread(follower.poll, hub.clock())
            if state.startswith("error") and state != told:
                log.error("the live page cannot read the outbox: %s", state[7:])
            told = state
            hub.set_source("outbox", state.partition(":")[0])
            for event in events:
                hub.call_event(event)
            for row in reversed(rows):
                hub.delivery(note(hub, row))
            hub.expire()
            await _pause(stop, None, GAP)
            await _pause(stop, wake, max(0.0, interval - GAP))
    finally:
        await asyncio.to_thread(follower.close)


async def follow_socket(hub: LiveHub, pbx: str, path: Path, stop: asyncio.Event) -> None:
    """Feed ``hub`` with a manager's calls from the live socket of ``pbxgate serve``."""
    name = f"ami:{pbx}"
    delay = RETRY_FIRST
    while not stop.is_set():
        hub.set_source(name, "waiting")
        try:
            if await _until(stop, _read_socket(hub, pbx, path)):
                delay = RETRY_FIRST  # it streamed: try again soon after it ends
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.debug("live socket %s: %s", path, exc)
        hub.manager_gone(pbx)
        if not stop.is_set():
            hub.set_source(name, "waiting")
        await _pause(stop, None, delay)
        delay = min(delay * 2, RETRY_MOST)


async def _read_socket(hub: LiveHub, pbx: str, path: Path) -> bool:
    streamed = False
    async for message in read_socket(path):
        kind, data = message.get("type"), cast(Any, message)
        if kind == "snapshot":
            hub.manager_calls(pbx, list(data["calls"]))
            hub.set_source(f"ami:{pbx}", "connected")
            streamed = True
        elif kind == "call":
            hub.manager_call(pbx, data["call"])
    return streamed


async def follow_hub(hub: LiveHub, pbx: str, calls: AmiHub, stop: asyncio.Event) -> None:
    """Feed ``hub`` with a manager's calls from the service's own live hub (same process)."""
    from dataclasses import asdict  # noqa: PLC0415

    async def read() -> bool:
        async with calls.subscribe() as (snapshot, changes):
            hub.manager_calls(pbx, [asdict(c) for c in snapshot])
            hub.set_source(f"ami:{pbx}", "connected")
            async for state in changes:
                hub.manager_call(pbx, asdict(state))
        return True

    while not stop.is_set():
        await _until(stop, read())  # ends when this reader fell behind: subscribe again
        hub.manager_gone(pbx)


def _managers(settings: Settings) -> list[ManagerSettings]:
    ami = settings.get(AmiSettings)
    if not ami.enabled:
        return []
    try:
        return ami.followed(check=False)
    except PbxgateError as exc:
        log.error("the live page does not follow the manager: %s", exc)
        return []


async def standalone(hub: LiveHub, settings: Settings, stop: asyncio.Event) -> None:
    """``pbxgate web``: the outbox every second, the managers from their live sockets."""
    feeds = [follow_outbox(hub, settings, stop, interval=POLL)]
    feeds += [follow_socket(hub, m.pbx, m.live_socket_path(), stop) for m in _managers(settings)]
    with _streams_end_on_signal(hub):
        await _all(feeds)


async def in_process(
    hub: LiveHub, settings: Settings, stop: asyncio.Event, calls: AmiHub | None
) -> None:
    """Inside ``pbxgate serve``: the outbox as soon as this process queues something, the
    first manager's calls from ``calls`` (the service's live hub), any other's socket."""
    wake = asyncio.Event()
    feeds = [follow_outbox(hub, settings, stop, wake=wake, interval=POLL)]
    for i, manager in enumerate(_managers(settings)):
        if i == 0 and calls is not None:
            feeds.append(follow_hub(hub, manager.pbx, calls, stop))
        else:
            feeds.append(follow_socket(hub, manager.pbx, manager.live_socket_path(), stop))
    with woken(wake):
        await _all(feeds)


async def _all(feeds: Sequence[Awaitable[None]]) -> None:
    """Run the feeds together; one that fails is logged, the others go on."""
    results = await asyncio.gather(*feeds, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.error("a feed of the live page stopped: %s", mask(str(result)))


async def _pause(stop: asyncio.Event, wake: asyncio.Event | None, timeout: float) -> None:
    """Wait ``timeout`` seconds, less when ``stop`` or ``wake`` is set."""
    if timeout <= 0 or stop.is_set():
        return
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def _until(stop: asyncio.Event, work: Awaitable[bool]) -> bool:
    """``work``'s result, or False when ``stop`` came first (``work`` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return False if task.cancelled() else task.result()


@contextlib.contextmanager
def _streams_end_on_signal(hub: LiveHub) -> Iterator[None]:
    """Under ``uvicorn.run``: end the live streams as soon as SIGINT or SIGTERM arrives.

    uvicorn stops by waiting for every open response to finish before it stops the
    application, and an event stream never finishes by itself: without this a stop would hang
    as long as a live page is open. uvicorn's own handler runs after ours, as before."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    before: dict[int, Any] = {}

    def chained(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.close)
        previous = before.get(signum)
        if callable(previous):
            previous(signum, frame)

    for stopping in (signal.SIGINT, signal.SIGTERM):
        before[stopping] = signal.getsignal(stopping)
        signal.signal(stopping, chained)
    try:
        yield
    finally:
        for signum, previous in before.items():
            if signal.getsignal(signum) is chained:
                signal.signal(signum, previous)


__all__ = [
    "OutboxFollower",
    "follow_hub",
    "follow_outbox",
    "follow_socket",
    "in_process",
    "note",
    "standalone",
]
