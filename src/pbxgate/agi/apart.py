"""FastAGI in processes of their own, beside ``pbxgate serve`` (``[agi] processes``).

The calls' event loop then shares nothing with what else the service runs: the web console
(a report over a busy PBX's tables is a second of a core), the scheduled reports, the
manager's follower. In one process they take the interpreter lock from the calls for a few
milliseconds at a time, and every call in flight waits. Several FastAGI processes also use
several cores.

How the service runs them:

* it binds the listening socket itself (a port in use is one line, before anything starts)
  and does not listen on it;
* each process inherits that socket and one socket of its own to the outbox writer (the
  writer has one for each, :mod:`pbxgate.notify.writer`), and gets the settings on its
  standard input as the service's other children do (:mod:`pbxgate.notify.apart`);
* a byte on that input, sent once the writer holds the outbox, starts it listening: a node
  that is starting takes no call it cannot commit at once (with ``hagi://`` the other node
  takes them meanwhile); it says ``ready`` once it does;
* the end of that input drains it: it stops accepting, lets the calls in progress finish
  (``[agi] drain_timeout``), waits for the writer's answers, says its counts (``stats`` and
  a JSON record) and exits; so a service that dies, even by SIGKILL, stops them too.

All of them accept on the same socket: the kernel hands a connection to one that is waiting
for one, so a process busy with calls takes fewer. A process that ends on its own (killed, or a
writer that stopped answering) ends the service, as its other children do, and systemd starts
it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import gc
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, fields
from typing import Any

from pbxgate.agi.fastagi import FastAgiServer, ServerStats
from pbxgate.agi.handlers import CallHandler
from pbxgate.agi.settings import AgiSettings
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.errors import ConfigError, DeliveryError
from pbxgate.notify.apart import ChildProcess, read_config, run_child, say
from pbxgate.notify.committer import GroupCommitter
from pbxgate.notify.events import CallEvent
from pbxgate.notify.writer import CLOSE_WAIT, KILL_WAIT, WriterLink

log = logging.getLogger(__name__)

LISTEN = b"l"  # on a FastAGI process's input: start listening
# Seconds beyond its own bounds (the drain's, the writer's answers') that the service waits
# for a FastAGI process to end once told to stop; then it is killed.
STOP_MARGIN = 1.0


def call_handler(settings: Settings, committer: GroupCommitter | WriterLink) -> CallHandler:
    """The FastAGI routes' handler: each call's event to the group commit, unless the caller
    is internal."""
    agi = settings.get(AgiSettings)
    internal = InternalRule.from_settings(settings.get(CdrSettings))

    def commit(event: CallEvent) -> Awaitable[bool]:
        if internal.is_internal(event.caller_number):  # as accept() does
            done = asyncio.get_running_loop().create_future()
            done.set_result(False)
            return done
        return committer.submit(event)

    return CallHandler(
        commit, result_variable=agi.result_variable, commit_timeout=agi.commit_timeout
    )


def bind(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``host``:``port`` (one for each address the host has), not listening
    yet; a port in use or an unknown host is one line. An address this host cannot use is
    left out, as long as one can be: ``localhost`` is ::1 too, and a host with IPv6 disabled
    (Docker's default) has no such address, or no such family at all."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    socks: list[socket.socket] = []
    unusable = "no address of it can be used here"
    for family, kind, proto, _, address in dict.fromkeys(infos):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:  # a family this host has not
            unusable = exc.strerror or str(exc)
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio binds: each family its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL:  # an address this host has not
                unusable = exc.strerror or str(exc)
                continue
            for bound in socks:
                bound.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        socks.append(sock)
    if not socks:
        raise ConfigError(f"cannot listen on {host}:{port}: {unusable}")
    return socks


class FastAgiProcess(ChildProcess):
    """The service's side of one FastAGI process: :meth:`listen`, :meth:`stop`, and its
    :attr:`stats` once it has ended."""

    module = __name__

    def __init__(
        self,
        settings: Settings,
        listeners: Sequence[socket.socket],
        link: socket.socket,
        *,
        number: int = 1,
        uvloop: bool = False,
        stopping: asyncio.Event | None = None,
    ) -> None:
        super().__init__(settings, uvloop=uvloop, stopping=stopping)
        self.what = f"the FastAGI process {number}"
        self.listeners = list(listeners)
        self.link = link
        self.stats = ServerStats()  # what it said as it ended (nothing when it was killed)
        self._input: int | None = None
        self._asked = False

    def _handed(self) -> tuple[int, ...]:
        return (self.link.fileno(), *(sock.fileno() for sock in self.listeners))

    def _settings_sent(self, fd: int) -> None:
        self._input = fd

    def listen(self) -> None:
        """Let it listen (the writer holds the outbox)."""
        if self._input is not None:
            with contextlib.suppress(OSError):  # it has died: _follow says why
                os.write(self._input, LISTEN)

    async def stop(self, wait: float) -> None:
        """Tell it to drain and end; killed when it has not ended within ``wait`` seconds."""
        self._asked = True
        self._input_lost()
        if self._watch is None:
            return
        done, _ = await asyncio.wait([self.finished], timeout=wait)
        if not done:
            self._stopped_because = f"{self.what} did not end {wait:g} s after it was told to stop"
            log.error("%s; it is killed", self._stopped_because)
            self.kill()
            await asyncio.wait([self.finished], timeout=KILL_WAIT)

    @property
    def stopped_because(self) -> str:
        return self._stopped_because or f"{self.what} was stopped"

    def _input_lost(self) -> None:
        if self._input is not None:
            os.close(self._input)
            self._input = None

    def _clean_end(self) -> BaseException | None:
        return None if self._asked else DeliveryError(f"{self.what} ended on its own")

    def _heard(self, word: bytes, rest: bytes) -> None:
        if word != b"stats":
            return
        try:
            counts = json.loads(rest)
            self.stats = ServerStats(**{f.name: int(counts[f.name]) for f in fields(ServerStats)})
        except (ValueError, KeyError, TypeError):
            log.warning("%s gave unreadable counts", self.what)


class FastAgiProcesses:
    """FastAGI in ``count`` processes of their own: what the service needs of a
    :class:`~pbxgate.agi.fastagi.FastAgiServer` (:attr:`address`, :attr:`stats`,
    :meth:`drain`), and the processes themselves."""

    def __init__(
        self,
        settings: Settings,
        listeners: Sequence[socket.socket],
        links: Sequence[socket.socket],
        *,
        uvloop: bool = False,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.agi = settings.get(AgiSettings)
        host, port = listeners[0].getsockname()[:2]
        self.address = (str(host), int(port))
        self.listeners = list(listeners)
        self.processes = [
            FastAgiProcess(settings, listeners, link, number=n, uvloop=uvloop, stopping=stopping)
            for n, link in enumerate(links, 1)
        ]
        self.links = list(links)

    async def start(self) -> None:
        """Start every process; they listen once told to (:meth:`listen`). This process's
        copies of the sockets are closed once handed on: the listening socket must close when
        the last of them stops accepting, and each writer socket when its process ends."""
        try:
            for process in self.processes:
                await process.start()
        finally:
            self._close_sockets()

    def listen(self) -> None:
        """Let them listen: the writer holds the outbox."""
        for process in self.processes:
            process.listen()

    async def abort(self) -> None:
        """Stop at once those started (none listens yet: no call is cut). Until then they
        wait, holding their writer sockets, and the writer with them."""
        self._close_sockets()
        for process in self.processes:
            process.kill()
        await asyncio.gather(*(p.stop(KILL_WAIT) for p in self.processes))

    def _close_sockets(self) -> None:
        for sock in (*self.listeners, *self.links):
            sock.close()

    @property
    def stats(self) -> ServerStats:
        total = ServerStats()
        for process in self.processes:
            for field in fields(ServerStats):
                name = field.name
                setattr(total, name, getattr(total, name) + getattr(process.stats, name))
        return total

    async def drain(self, timeout: float | None = None) -> None:
        """Tell every process to stop accepting and end: each lets its calls finish for its
        ``[agi] drain_timeout`` (``timeout`` does not reach it) and waits for the writer's
        answers; one that has not ended within those bounds is killed."""
        wait = self.agi.drain_timeout + CLOSE_WAIT + STOP_MARGIN
        await asyncio.gather(*(process.stop(wait) for process in self.processes))
        for process in self.processes:  # why one ended badly (the events it logged)
            finished = process.finished
            if not finished.done():  # killed, and still in a disk wait
                raise DeliveryError(f"{process.stopped_because}; it did not end when killed")
            error = None if finished.cancelled() else finished.exception()
            if error is not None:
                raise error


# -- the child -----------------------------------------------------------------------------------


class _Control(asyncio.Protocol):
    """The child's side of its input: a byte lets it listen, the end drains it."""

    def __init__(self, listen: asyncio.Event, stop: asyncio.Event) -> None:
        self.listen = listen
        self.stop = stop

    def data_received(self, data: bytes) -> None:
        self.listen.set()

    def eof_received(self) -> bool:
        self.stop.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def serve(
    settings: Settings, link_sock: socket.socket, listeners: Sequence[socket.socket]
) -> None:
    """Serve FastAGI on ``listeners`` (once told to), committing through ``link_sock``,
    until the input ends; then say the counts."""
    from pbxgate.notify.service import open_outbox  # noqa: PLC0415
    from pbxgate.notify.settings import NotifySettings  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    listen, stop = asyncio.Event(), asyncio.Event()
    stuck: asyncio.Future[None] = loop.create_future()

    def on_stuck(why: str) -> None:
        if not stuck.done():
            stuck.set_exception(DeliveryError(why))

    control, _ = await loop.connect_read_pipe(
        lambda: _Control(listen, stop), os.fdopen(0, "rb", buffering=0)
    )
    # where the calls' events go should the writer end first (the service is ending then)
    fallback = functools.partial(open_outbox, settings.get(NotifySettings))
    link = WriterLink(loop, fallback=fallback, on_stuck=on_stuck)
    server = FastAgiServer(settings.get(AgiSettings), call_handler(settings, link).routes())
    try:
        await link.connect(link_sock)
        await _first(listen, stop)
        if not stop.is_set():
            await _listen(server, listeners)
            # what start-up made lives as long as the process: out of the collector's way
            gc.collect()
            gc.freeze()
            say(b"ready")
            stopped: asyncio.Future[bool] = asyncio.ensure_future(stop.wait())
            waits: list[asyncio.Future[Any]] = [stopped, stuck]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
    finally:
        try:
            await server.drain()
            await link.close()
        finally:
            for sock in listeners:
                sock.close()
            control.close()
            # the calls it served, whatever the writer did with the last of them
            say(b"stats " + json.dumps(asdict(server.stats)).encode("ascii"))
    if stuck.done():
        stuck.result()  # the writer stopped answering: the service ends with this process


async def _listen(server: FastAgiServer, listeners: Sequence[socket.socket]) -> None:
    """Listen on the sockets the service bound (another process may have begun to listen
    on the same port meanwhile: one line)."""
    try:
        await server.start(socks=listeners)
    except OSError as exc:
        host, port = listeners[0].getsockname()[:2]
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


def main() -> int:
    """The child: read the settings, then serve FastAGI until the input ends."""
    config = read_config("a FastAGI process")
    if config is None:
        return 2
    try:
        link = socket.socket(fileno=int(sys.argv[1]))
        listeners = [socket.socket(fileno=int(fd)) for fd in sys.argv[2:]]
        if not listeners:
            raise ValueError("no listening socket")
    except (IndexError, ValueError, OSError) as exc:
        print(f"error: a FastAGI process got no sockets: {exc}", file=sys.stderr)
        return 2
    return run_child(config, serve(config["settings"], link, listeners))


if __name__ == "__main__":
    sys.exit(main())
