"""The long-running service behind ``pbxgate serve``: FastAGI and the delivery worker.

FastAGI runs on this thread's event loop and does nothing else there. Each call's event goes to
the group commit (one fsync for every event that arrived while the previous commit ran): in
``pbxgate serve`` the outbox writer, a process of its own (:mod:`pbxgate.notify.writer`),
elsewhere a thread (:class:`pbxgate.notify.committer.GroupCommitter`). The delivery worker runs
in a process of its own too (``pbxgate serve``: :mod:`pbxgate.notify.apart`; neither child
shares an interpreter lock with the calls) or on a thread with its own event loop
(``run_service(apart=False)``, everything it imports imported before the first call is taken),
so that HTTP clients, templates and slow recipients never stall a call's session.

Shutdown order matters: on ``stop`` the FastAGI listener closes first and open sessions get
``[agi] drain_timeout`` seconds to finish (each commits its event before it ends); then the
committer writes what is queued, and only then is the worker told to stop, so nothing queued
during the drain waits for the next start. Its sends in flight get 10 s
(:data:`pbxgate.notify.apart.WORKER_STOP_WAIT`); a worker process still there when the stop has
taken :data:`STOP_BUDGET` seconds in all is killed: the stop ends within systemd's.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import ipaddress
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from pbxgate.agi.apart import FastAgiProcesses, bind, call_handler
from pbxgate.agi.fastagi import FastAgiServer, ServerStats
from pbxgate.agi.settings import AgiSettings
from pbxgate.ami.live import LiveHub
from pbxgate.ami.notices import run_notices
from pbxgate.ami.settings import AmiSettings
from pbxgate.config import Settings
from pbxgate.errors import ConfigError, InputError
from pbxgate.notify.apart import ChildProcess, WorkerProcess
from pbxgate.notify.committer import GroupCommitter
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.service import (
    close_outboxes,
    outbox_for,
    run_worker,
    wake_workers,
    waking,
)
from pbxgate.notify.settings import NotifySettings
from pbxgate.notify.writer import CLOSE_WAIT, KILL_WAIT, WriterProcess

log = logging.getLogger(__name__)

WorkerFactory = Callable[[Settings, asyncio.Event], Coroutine[Any, Any, None]]


def loop_factory(agi: AgiSettings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed and wanted, else None (the standard loop)."""
    if not agi.uvloop:
        return None
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:4573`` for IPv6) into a host and a port."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"--listen {text!r} is not HOST:PORT", hint="e.g. 127.0.0.1:4573")
    return host, int(port)


def _loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this host only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


async def run_service(
    settings: Settings,
    stop: asyncio.Event,
    *,
    listen: tuple[str, int] | None = None,
    worker: WorkerFactory | None = run_worker,
    on_ready: Callable[[tuple[str, int]], None] | None = None,
    live: LiveHub | None = None,
    apart: bool = False,
    processes: int = 0,
) -> ServerStats:
    """Serve FastAGI (and deliver, unless ``worker`` is None) until ``stop`` is set; with
    ``[ami] enabled``, follow the manager, publishing the live calls to ``live``.

    ``apart`` runs the delivery worker (:func:`run_worker` only) and the group commit in
    processes of their own (:mod:`pbxgate.notify.apart`, :mod:`pbxgate.notify.writer`), as
    ``pbxgate serve`` does; else they run on threads. ``processes`` (with ``apart``) serves
    FastAGI in that many processes of its own (:mod:`pbxgate.agi.apart`); 0 here, on this
    loop."""
    if apart and worker not in (run_worker, None):
        raise ValueError("only run_worker runs apart")
    if processes and not apart:
        raise ValueError("FastAGI processes commit through the outbox writer process (apart)")
    agi = settings.get(AgiSettings)
    ns = settings.get(NotifySettings)
    ami_on = _ami_on(settings)
    box = outbox_for(ns)  # a bad outbox says so here, before anything listens
    try:
        started = await _calls_served(
            settings, stop, box, listen or (agi.listen_host, agi.listen_port), apart, processes
        )
    except BaseException:
        close_outboxes()
        raise
    if started is None:  # told to stop while the writer started: nothing to listen for
        close_outboxes()
        return ServerStats()
    committer, server = started
    try:
        delivery = await _delivery(worker, settings, apart, stop)
    except BaseException as failure:  # why the worker could not start is the error to tell
        await _shut_down(server, None, committer, None, grace=0, failure=failure)
        raise
    # what this process stores (the calls' commits, the manager's events) wakes the worker's
    # process too
    apart_wake = delivery.wake if isinstance(delivery, WorkerProcess) else _nothing
    children: list[ChildProcess] = [c for c in (committer, delivery) if isinstance(c, ChildProcess)]
    if isinstance(server, FastAgiProcesses):
        children.extend(server.processes)
    notices: _WorkerThread | None = None
    with waking(apart_wake):
        try:
            if isinstance(delivery, _WorkerThread):  # its imports done before calls come
                await delivery.started()
            if ami_on:
                notices = await _following(settings, live)
            if children:
                # ready once the children are (an interpreter and its imports each: most of a
                # core for a second); calls and the manager are served meanwhile, a stop is
                # heard
                await _first(_all_started(children), stop.wait())
            ends = _ends(children, delivery)
            if on_ready is not None and not stop.is_set() and not any(e.done() for _, e in ends):
                on_ready(server.address)
            await _until_stopped(stop, ends)
        except BaseException as failure:  # the first error is the one to tell
            await _shut_down(server, notices, committer, delivery, failure=failure)
            raise
        await _shut_down(server, notices, committer, delivery)
    return server.stats


Committer = GroupCommitter | WriterProcess


async def _calls_served(
    settings: Settings,
    stop: asyncio.Event,
    box: Outbox,
    address: tuple[str, int],
    apart: bool,
    processes: int,
) -> tuple[Committer, FastAgiServer | FastAgiProcesses] | None:
    """The group commit, then FastAGI on this loop or in ``processes`` of its own; None when
    ``stop`` came while the writer started."""
    if processes:
        return await _served_apart(settings, stop, box, _bound(address), processes)
    committer = await _new_committer(settings, box, apart, stop)
    if stop.is_set():
        await _close(committer)
        return None
    try:
        server = await _listening(settings, committer, address)
    except BaseException:
        await _close(committer)
        raise
    return committer, server


async def _served_apart(
    settings: Settings,
    stop: asyncio.Event,
    box: Outbox,
    listeners: Sequence[socket.socket],
    processes: int,
) -> tuple[WriterProcess, FastAgiProcesses] | None:
    """The outbox writer and ``processes`` FastAGI processes on ``listeners`` (bound already:
    a port in use was one line before anything started), started together, their
    interpreters at once; the FastAGI processes listen once the writer holds the outbox (a
    node just restarted refuses calls until then: with hagi:// the other node takes them)."""
    writer = WriterProcess(
        settings, stopping=stop, on_commit=wake_workers, fallback=box, links=processes
    )
    callers = FastAgiProcesses(
        settings,
        listeners,
        writer.links,
        uvloop=loop_factory(settings.get(AgiSettings)) is not None,
        stopping=stop,
    )
    try:
        await writer.start()
        await callers.start()
        await _first(writer.started(), stop.wait())
        if writer.finished.done():
            writer.finished.result()  # why it could not start, in one line
    except BaseException:
        await callers.abort()
        await _close(writer)
        raise
    if stop.is_set():
        await callers.abort()  # none of them listens yet: no call to let finish
        await _close(writer)
        return None
    callers.listen()
    return writer, callers


async def _listening(
    settings: Settings, committer: Committer, address: tuple[str, int]
) -> FastAgiServer:
    """The FastAGI server, listening on ``address``."""
    server = FastAgiServer(settings.get(AgiSettings), call_handler(settings, committer).routes())
    host, port = address
    _warn_beyond_loopback(host, port)
    try:
        await server.start(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return server


def _bound(address: tuple[str, int]) -> list[socket.socket]:
    """The FastAGI processes' listening sockets, bound here."""
    host, port = address
    _warn_beyond_loopback(host, port)
    return bind(host, port)


def _warn_beyond_loopback(host: str, port: int) -> None:
    if not _loopback(host):
        log.warning(
            "FastAGI listens on %s, not on loopback: it has no authentication, so allow only "
            "the PBX to reach port %d (firewall)",
            host,
            port,
        )


async def _new_committer(
    settings: Settings, box: Outbox, apart: bool, stop: asyncio.Event
) -> Committer:
    """The group commit: a process of its own (``apart``), else a thread of this one."""
    if not apart:
        return GroupCommitter(box, wake_workers)
    writer = WriterProcess(settings, stopping=stop, on_commit=wake_workers, fallback=box)
    try:
        await writer.start()
        # ready before FastAGI listens: a node just (re)started would otherwise take calls and
        # hold each of them until its writer's interpreter is up (a third of a second); with
        # hagi:// they go to the other node meanwhile
        await _first(writer.started(), stop.wait())
        if writer.finished.done():
            writer.finished.result()  # why it could not start, in one line
    except BaseException:
        await _close(writer)
        raise
    return writer


async def _following(settings: Settings, live: LiveHub | None) -> _WorkerThread:
    """The manager followed on a thread of its own (its failures logged, not fatal)."""
    follow = functools.partial(run_notices, hub=live) if live is not None else run_notices
    notices = _WorkerThread(follow, settings, None)
    await notices.started()
    notices.finished.add_done_callback(_log_failure)
    return notices


def _ends(
    children: Sequence[ChildProcess], delivery: _WorkerThread | WorkerProcess | None
) -> list[tuple[str, asyncio.Future[None]]]:
    """What ends the service when it ends: its children, and a worker thread."""
    ends = [(child.what, child.finished) for child in children]
    if isinstance(delivery, _WorkerThread):
        ends.append(("the delivery worker", delivery.finished))
    return ends


async def _close(committer: Committer, wait: float = CLOSE_WAIT) -> None:
    """The committer's queue written, then it stops (a thread's close blocks: off the loop);
    a writer process gets ``wait`` seconds to answer the last events."""
    if isinstance(committer, WriterProcess):
        await committer.close(wait)
    else:
        await asyncio.get_running_loop().run_in_executor(None, committer.close)


async def _all_started(children: Sequence[ChildProcess]) -> None:
    for child in children:
        await child.started()


def _nothing() -> None:
    pass


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Until the first of ``waits`` is done; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        task.result()  # what failed says so


async def _delivery(
    worker: WorkerFactory | None, settings: Settings, apart: bool, stop: asyncio.Event
) -> _WorkerThread | WorkerProcess | None:
    """The delivery worker, started: a process of its own (``apart``), a thread, or none."""
    if worker is None:
        return None
    new_loop = loop_factory(settings.get(AgiSettings))
    if not apart:
        return _WorkerThread(worker, settings, new_loop)
    process = WorkerProcess(settings, uvloop=new_loop is not None, stopping=stop)
    await process.start()
    return process


# Seconds the service's stop may take in all: a worker process still there by then is killed
# (the example unit's TimeoutStopSec=30 would kill everything a moment later).
STOP_BUDGET = 29.0

# What the delivery worker imports as it starts and sends: imported before FastAGI serves.
WORKER_IMPORTS = (
    "httpx",
    "pbxgate.notify.build",
    "pbxgate.notify.channels.email",
    "pbxgate.notify.channels.telegram",
    "pbxgate.notify.channels.vk",
    "pbxgate.notify.channels.webhook",
)


def _ami_on(settings: Settings) -> bool:
    """Whether to follow the manager; its settings are checked before the service starts."""
    ami = settings.get(AmiSettings)
    if ami.enabled:
        ami.followed()
    return ami.enabled


class _WorkerThread:
    """The delivery worker on a thread of its own, with its own event loop."""

    def __init__(
        self,
        factory: WorkerFactory,
        settings: Settings,
        new_loop: Callable[[], asyncio.AbstractEventLoop] | None,
    ) -> None:
        self.factory = factory
        self.settings = settings
        self.new_loop = new_loop or asyncio.new_event_loop
        outer = asyncio.get_running_loop()
        self._outer = outer
        self._running: asyncio.Future[None] = outer.create_future()
        self.finished: asyncio.Future[None] = outer.create_future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        # Set by stop() before it looks for the loop; _serve sets its event when it finds it
        # set: a stop that comes before the thread's loop runs is not lost.
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name="pbxgate-worker", daemon=True)
        self._thread.start()

    async def started(self) -> None:
        """Once the worker's loop runs (or the worker has already failed)."""
        await asyncio.wait([self._running, self.finished], return_when=asyncio.FIRST_COMPLETED)

    async def stop(self, wait: float | None = None) -> None:
        """Tell the worker to stop, and wait for it (a thread cannot be killed: ``wait`` is
        for a worker process; this one's sends in flight are cut after their own wait)."""
        self._stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop has just ended
                loop.call_soon_threadsafe(stop.set)
        await asyncio.shield(self.finished)

    def _main(self) -> None:
        loop = self.new_loop()
        error: BaseException | None = None
        try:
            loop.run_until_complete(self._serve(loop))
        except BaseException as exc:  # handed to the service's loop, which raises it
            error = exc
        finally:
            with contextlib.suppress(Exception):  # as asyncio.run ends a loop
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
            with contextlib.suppress(RuntimeError):  # the service's loop has ended already
                self._outer.call_soon_threadsafe(self._finish, error)

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stop = asyncio.Event()
        self._loop = loop
        if self._stopping.is_set():
            self._stop.set()
        for name in WORKER_IMPORTS:  # before the first call: an import holds the GIL a while
            importlib.import_module(name)
        self._outer.call_soon_threadsafe(_set_done, self._running)
        await self.factory(self.settings, self._stop)

    def _finish(self, error: BaseException | None) -> None:
        if error is None:
            self.finished.set_result(None)
        else:
            self.finished.set_exception(error)


async def _shut_down(
    server: FastAgiServer | FastAgiProcesses,
    notices: _WorkerThread | None,
    committer: Committer,
    delivery: _WorkerThread | WorkerProcess | None,
    *,
    grace: float | None = None,
    failure: BaseException | None = None,
) -> None:
    """FastAGI drained first (open sessions get ``grace`` seconds, else ``[agi]
    drain_timeout``), then AMI, then the committer writes what is queued, then the worker
    stops (a worker process within what is left of :data:`STOP_BUDGET`); each step runs
    whatever the one before it raised. One error is told: the
    ``failure`` that stops the service, else the first the stop meets (a FastAGI process that
    logged the events the writer did not answer says so; the writer's close after it has
    nothing left to tell); the others are logged (a child's end, met again as it is stopped,
    is the same error)."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    errors: list[Exception] = []

    async def step(work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            errors.append(exc)

    try:
        await step(server.drain(grace))
    finally:
        try:
            if notices is not None:
                with contextlib.suppress(Exception):  # logged by _log_failure
                    await notices.stop()
        finally:
            try:
                try:
                    await step(_close(committer, _writer_wait(server, loop.time() - began)))
                finally:
                    if delivery is not None:
                        left = STOP_BUDGET - (loop.time() - began)
                        await step(delivery.stop(max(KILL_WAIT, left)))
            finally:
                await loop.run_in_executor(None, close_outboxes)
    told = failure if failure is not None or not errors else errors[0]
    for error in errors:
        if error is not told:
            log.error("while stopping: %s", error)
    if failure is None and errors:
        raise errors[0]


def _writer_wait(server: FastAgiServer | FastAgiProcesses, drained_in: float) -> float:
    """How long the writer may take to answer the last events once FastAGI has drained: the
    FastAGI processes have waited for its answers already, within the same bound, so what is
    left of it (the service's stop stays within systemd's stop timeout)."""
    if not isinstance(server, FastAgiProcesses):
        return CLOSE_WAIT
    return max(0.5, CLOSE_WAIT - max(0.0, drained_in - server.agi.drain_timeout))


def _log_failure(finished: asyncio.Future[None]) -> None:
    if not finished.cancelled() and finished.exception() is not None:
        log.error("following the manager (AMI) stopped: %s", finished.exception())


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _until_stopped(stop: asyncio.Event, ends: list[tuple[str, asyncio.Future[None]]]) -> None:
    """Wait for ``stop``; a worker or writer that ends early (bad settings, lock held, killed)
    ends the service."""
    stopper = asyncio.create_task(stop.wait())
    waiting: set[asyncio.Future[Any]] = {stopper, *(end for _, end in ends)}
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
    if stop.is_set():
        return
    for what, end in ends:
        if end.done():
            end.result()  # raises its error
            log.warning("%s stopped on its own", what)
            return


__all__ = ["WorkerFactory", "loop_factory", "parse_listen", "run_service"]
