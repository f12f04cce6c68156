"""The notify side's two entry points: ``accept`` (the AGI side) and ``run_worker``.

``accept`` is on the call path: it applies the internal-number rule and commits the event to the
outbox, nothing more (no HTTP client, no templates are imported here), so ``pbxgate-agi``
starts fast and returns control to the dialplan at once. ``run_worker`` runs inside
``pbxgate serve`` (or ``pbxgate notify worker``) and delivers until ``stop`` is set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.notify.events import INCOMING, CallEvent
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.settings import NotifySettings

if TYPE_CHECKING:  # not imported at run time: pbxgate-agi starts faster without them
    import asyncio

    import httpx

_outboxes: dict[str, Outbox] = {}
_outboxes_lock = threading.Lock()
# Workers running in this process: accept() wakes them so an in-process event goes out at once.
_wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
_elsewhere: set[Callable[[], None]] = set()  # workers of other processes (waking())


def open_outbox(ns: NotifySettings, *, synchronous: str = "FULL") -> Outbox:
    """A new connection to the configured outbox: the shared database of ``[notify.database]``
    when it has a URL, else the SQLite file of ``[notify] outbox``."""
    db = ns.database
    if db.url:
        password = db.password.reveal() if db.password else None
        return Outbox.connect(db.url, password=password, node=db.node, timeout=db.timeout)
    return Outbox.open(ns.outbox_path(), synchronous=synchronous, mode=ns.outbox_file_mode)


def outbox_for(ns: NotifySettings) -> Outbox:
    """The process-wide open outbox of these settings (opened once, kept open)."""
    with _outboxes_lock:
        key = ns.outbox_place()
        box = _outboxes.get(key)
        if box is None:
            box = _outboxes[key] = open_outbox(ns)
        return box


def close_outboxes() -> None:
    with _outboxes_lock:
        for box in _outboxes.values():
            box.close()
        _outboxes.clear()


def admitted(settings: Settings, event: CallEvent) -> bool:
    """Whether ``event`` is one to notify about: not from an internal caller."""
    rule = InternalRule.from_settings(settings.get(CdrSettings))
    return not rule.is_internal(event.caller_number)


def wake_workers() -> None:
    """Tell the workers of this process, and those it started (:func:`waking`), that something
    new is in the outbox."""
    for loop, wake in list(_wakers):
        if not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)
    for call in list(_elsewhere):
        call()


@contextlib.contextmanager
def waking(call: Callable[[], None]) -> Iterator[None]:
    """While the block runs, ``call`` (any thread; it must not block) whenever this process
    stores something new in the outbox: how ``pbxgate serve`` wakes its worker process."""
    _elsewhere.add(call)
    try:
        yield
    finally:
        _elsewhere.discard(call)


@contextlib.contextmanager
def woken(wake: asyncio.Event) -> Iterator[None]:
    """While the block runs, set ``wake`` (on the running loop) whenever this process stores
    something new in the outbox, as the workers are woken (the web console's live page inside
    ``pbxgate serve`` follows the outbox so)."""
    import asyncio  # noqa: PLC0415 - keep accept()'s imports lean

    entry = (asyncio.get_running_loop(), wake)
    _wakers.add(entry)
    try:
        yield
    finally:
        _wakers.discard(entry)


def accept(settings: Settings, event: CallEvent) -> bool:
    """Commit ``event`` to the outbox unless the caller is internal.

    True when the event was stored now; False when it was filtered (internal caller) or an event
    with the same ``event_id`` is already in the outbox.
    """
    if not admitted(settings, event):
        return False
    box = outbox_for(settings.get(NotifySettings))
    if _stored_by_its_channel(box, event):
        return False
    stored = box.enqueue(event)
    if stored:
        wake_workers()
    return stored


def _stored_by_its_channel(box: Outbox, event: CallEvent) -> bool:
    """Whether the incoming call's event of this AGI run's channel is in the outbox already,
    under the channel's uniqueid rather than the call's linkedid: a FastAGI session whose
    linkedid read Asterisk did not answer (``[agi] idle_timeout``) stored it so and closed
    without a result, and the dialplan's fallback (this run, on the same channel) would show
    the call a second time."""
    if event.kind != INCOMING or not event.uniqueid or event.linkedid in ("", event.uniqueid):
        return False
    return box.has_event(dataclasses.replace(event, linkedid=event.uniqueid).event_id)


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    until_idle: bool = False,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Deliver from the configured outbox until ``stop`` is set (``transport``: a test seam).

    ``until_idle`` also returns when nothing is left to deliver (``notify worker --until-idle``);
    ``on_started`` is called once the worker holds the outbox's worker lock.
    """
    import asyncio  # noqa: PLC0415 - keep accept()'s imports lean

    from pbxgate.notify.build import build_worker  # noqa: PLC0415

    worker, channels = build_worker(settings, transport=transport)
    box = worker.outbox
    box.acquire_worker_lock()
    wake = asyncio.Event()
    entry = (asyncio.get_running_loop(), wake)
    _wakers.add(entry)
    try:
        if on_started is not None:
            on_started()
        poll = settings.get(NotifySettings).poll_interval
        await worker.run(stop, wake, poll, until_idle=until_idle)
    finally:
        _wakers.discard(entry)
        for channel in channels.values():
            await channel.aclose()
        box.close()


__all__ = [
    "accept",
    "admitted",
    "close_outboxes",
    "open_outbox",
    "outbox_for",
    "run_worker",
    "wake_workers",
    "waking",
    "woken",
]
