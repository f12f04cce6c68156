"""The long-running service behind ``pbxgate serve``: FastAGI and the delivery worker, one loop.

Shutdown order matters: on ``stop`` the FastAGI listener closes first and open sessions get
``[agi] drain_timeout`` seconds to finish (each commits its event before it ends); only then
is the worker told to stop, so nothing queued during the drain waits for the next start.
``accept`` (the SQLite commit) runs in one dedicated thread: the loop keeps serving other
calls while the disk syncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import ipaddress
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pbxgate.agi.fastagi import FastAgiServer, ServerStats
from pbxgate.agi.handlers import CallHandler
from pbxgate.agi.settings import AgiSettings
from pbxgate.config import Settings
from pbxgate.errors import ConfigError, InputError
from pbxgate.notify.service import accept, close_outboxes, run_worker

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
) -> ServerStats:
    """Serve FastAGI (and deliver, unless ``worker`` is None) until ``stop`` is set."""
    agi = settings.get(AgiSettings)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pbxgate-outbox")
    handler = CallHandler(
        functools.partial(accept, settings),
        executor=executor,
        result_variable=agi.result_variable,
        commit_timeout=agi.commit_timeout,
    )
    server = FastAgiServer(agi, handler.routes())
    host, port = listen or (agi.listen_host, agi.listen_port)
    if not _loopback(host):
        log.warning(
            "FastAGI listens on %s, not on loopback: it has no authentication, so allow only "
            "the PBX to reach port %d (firewall)",
            host,
            port,
        )
    try:
        await server.start(host, port)
    except OSError as exc:
        executor.shutdown()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    worker_stop = asyncio.Event()
    worker_task = asyncio.create_task(worker(settings, worker_stop)) if worker else None
    if on_ready is not None:
        on_ready(server.address)
    try:
        await _until_stopped(stop, worker_task)
    finally:
        await server.drain()
        worker_stop.set()
        try:
            if worker_task is not None:
                await worker_task
        finally:
            await asyncio.get_running_loop().run_in_executor(executor, close_outboxes)
            executor.shutdown(wait=True)
    return server.stats


async def _until_stopped(stop: asyncio.Event, worker_task: asyncio.Task[None] | None) -> None:
    """Wait for ``stop``; a worker that ends early (bad settings, lock held) ends the service."""
    stopper = asyncio.create_task(stop.wait())
    waiting: set[asyncio.Task[Any]] = {stopper}
    if worker_task is not None:
        waiting.add(worker_task)
    try:
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
    if worker_task is not None and worker_task.done() and not stop.is_set():
        worker_task.result()  # raises the worker's error
        log.warning("the delivery worker stopped on its own")


__all__ = ["WorkerFactory", "loop_factory", "parse_listen", "run_service"]
