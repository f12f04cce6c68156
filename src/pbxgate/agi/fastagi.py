"""An asyncio FastAGI server: a thin driver over :class:`pbxgate.agi.protocol.AgiSession`.

Asterisk connects for ``AGI(agi://host[:port]/<script>?<query>)`` (res_agi.c
``launch_netscript()``, default port 4573), writes the environment block and waits for
commands; when the server closes the connection the dialplan continues with
``AGISTATUS=SUCCESS`` (captured "Variant B", Asterisk 22.10.1). Each connection is routed by its
script path (``agi://host/notify?x=1`` -> handler ``notify``) to an async handler that talks
through :class:`AgiConnection`.

What the server guarantees, whatever the peer does:

* the environment block must arrive whole within ``idle_timeout`` (a silent peer, or one
  that sends half a header, is dropped without blocking anyone else), and each reply within
  ``idle_timeout`` of its command; one sweep a tenth of ``idle_timeout`` apart (at most a
  second) enforces every session's deadline, rather than a timer for every wait of every
  session;
* lines and the block are capped (``max_line_bytes``, ``max_header_bytes``);
* malformed or dropped peers end their own session only, with one log line;
* beyond ``max_sessions`` open sessions, new connections are closed at once (logged);
* :meth:`FastAgiServer.drain` stops listening, lets open sessions finish for a grace period,
  then cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pbxgate.agi.errors import ProtocolError
from pbxgate.agi.protocol import (
    AgiSession,
    ConnectionClosed,
    Environment,
    Hangup,
    NeedData,
    Reply,
)
from pbxgate.agi.settings import AgiSettings

log = logging.getLogger(__name__)

Handler = Callable[["AgiConnection"], Awaitable[None]]


class PeerClosed(ProtocolError):
    """The peer closed the connection while we waited for it."""


class AgiConnection(asyncio.Protocol):
    """One FastAGI conversation: an asyncio Protocol feeding an :class:`AgiSession`.

    A bare Protocol rather than streams: the server spends its time here, thousands of times
    a second, and the session object already does the buffering and line splitting.
    """

    def __init__(
        self,
        session: AgiSession,
        idle_timeout: float,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.session = session
        self.idle_timeout = idle_timeout
        self.transport: asyncio.Transport | None = None
        self._environment: Environment | None = None
        # the loop, kept (the server passes its own): asyncio.get_running_loop() is a getpid()
        # system call each time
        self._loop = asyncio.get_running_loop() if loop is None else loop
        self._waiter: asyncio.Future[None] | None = None
        self._deadline_at = 0.0  # loop time the current wait ends (the server's sweep)
        self._lost = False
        self._paused = False
        # A peer may not make the session buffer grow beyond what one reply can need.
        self._flood_limit = session.max_header_bytes + session.max_line_bytes

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.session.receive_data(data)
        if self.session.buffered_bytes > self._flood_limit and self.transport is not None:
            self.transport.pause_reading()  # until the handler has read what is buffered
            self._paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.session.receive_data(b"")
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.session.receive_data(b"")
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def expire(self, now: float) -> None:
        """End the current wait with TimeoutError if its deadline has passed (the sweep)."""
        waiter = self._waiter
        if waiter is not None and not waiter.done() and now >= self._deadline_at:
            waiter.set_exception(TimeoutError())

    # -- what handlers use ------------------------------------------------------------------

    @property
    def environment(self) -> Environment:
        if self._environment is None:
            raise RuntimeError("the environment has not been read yet")
        return self._environment

    @property
    def hung_up(self) -> bool:
        return self.session.hung_up

    @property
    def peer(self) -> object:
        return None if self.transport is None else self.transport.get_extra_info("peername")

    async def read_environment(self) -> Environment:
        """The agi_* block; all of it must arrive within ``idle_timeout``."""
        event = await self._next_event(self._deadline())
        if not isinstance(event, Environment):  # pragma: no cover - the table forbids it
            raise PeerClosed("no AGI environment")
        self._environment = event
        return event

    async def command(self, name: str, *args: str | int) -> Reply:
        """Send one command and wait (at most ``idle_timeout``) for its reply."""
        line = self.session.send_command(name, *args)
        if self.transport is None or self._lost:
            raise PeerClosed("connection closed")
        self.transport.write(line)
        deadline = self._deadline()
        while True:
            event = await self._next_event(deadline)
            if isinstance(event, Reply):
                return event
            if isinstance(event, ConnectionClosed):  # pragma: no cover - table: error
                raise PeerClosed("connection closed")
            # Hangup: res_agi.c writes "HANGUP" inline; the reply still follows.

    async def try_command(self, name: str, *args: str | int) -> Reply | None:
        """:meth:`command`, but None when the peer is gone (a hung-up channel may close)."""
        try:
            return await self.command(name, *args)
        except (ProtocolError, ConnectionError, TimeoutError) as exc:
            log.debug("%s failed: %s", name, exc)
            return None

    async def finish(self, name: str, *args: str | int) -> Reply | None:
        """Send the session's last command and end our side of the connection with it.

        Asterisk runs the command, answers, finds the end and goes on with the dialplan at
        once, instead of waiting for us to read the answer and close. The answer is still read
        (within ``idle_timeout``) before the connection is closed, so that it never meets a
        reset. None when the peer is gone or does not answer."""
        try:
            line = self.session.send_command(name, *args)
            if self.transport is None or self._lost:
                raise PeerClosed("connection closed")
            self.transport.write(line)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            deadline = self._deadline()
            while not isinstance(event := await self._next_event(deadline), Reply):
                if isinstance(event, ConnectionClosed):  # pragma: no cover - table: error
                    raise PeerClosed("connection closed")
        except (ProtocolError, ConnectionError, TimeoutError) as exc:
            log.debug("%s failed: %s", name, exc)
            return None
        return event

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _deadline(self) -> float:
        return self._loop.time() + self.idle_timeout

    async def _next_event(self, deadline: float) -> Environment | Reply | Hangup | ConnectionClosed:
        """The next event; TimeoutError once none is complete by ``deadline`` (loop time), as
        the server's sweep (:meth:`expire`) finds it."""
        while isinstance(event := self.session.next_event(), NeedData):
            if self._paused and self.transport is not None and not self._lost:
                self._paused = False
                self.transport.resume_reading()
            waiter = self._waiter = self._loop.create_future()
            self._deadline_at = deadline
            try:
                await waiter
            finally:
                self._waiter = None
        return event


@dataclass
class ServerStats:
    accepted: int = 0
    completed: int = 0
    refused: int = 0
    timed_out: int = 0
    protocol_errors: int = 0
    dropped: int = 0
    unrouted: int = 0
    handler_errors: int = 0


class FastAgiServer:
    """Listens, routes each connection by script path, and drains on request."""

    def __init__(self, settings: AgiSettings, handlers: Mapping[str, Handler]) -> None:
        self.settings = settings
        self.handlers = {name.strip("/").lower(): h for name, h in handlers.items()}
        self.stats = ServerStats()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._open: set[AgiConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        socks: Sequence[socket.socket] = (),
    ) -> None:
        """Listen on ``host``:``port``, or on ``socks`` (bound already, and shared with other
        processes that accept on them too: :mod:`pbxgate.agi.apart`)."""
        loop = self._loop = asyncio.get_running_loop()
        if socks:
            for sock in socks:
                server = await loop.create_server(self._new_connection, sock=sock, backlog=1024)
                self._servers.append(server)
        else:
            server = await loop.create_server(
                self._new_connection,
                host or self.settings.listen_host,
                self.settings.listen_port if port is None else port,
                backlog=1024,
            )
            self._servers.append(server)
        self._sweeper = loop.create_task(self._sweep())

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) actually bound: with port 0 the kernel picks one."""
        if not self._servers or not self._servers[0].sockets:
            raise RuntimeError("the server is not listening")
        host, port = self._servers[0].sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def active(self) -> int:
        return len(self._tasks)

    async def drain(self, timeout: float | None = None) -> None:
        """Stop accepting, give open sessions ``timeout`` seconds, then cancel the rest."""
        for server in self._servers:
            server.close()
        grace = self.settings.drain_timeout if timeout is None else timeout
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        left = list(self._tasks)
        for task in left:
            task.cancel()
        if left:
            log.warning("FastAGI drain: cut %d session(s) still open after %.1fs", len(left), grace)
            await asyncio.gather(*left, return_exceptions=True)
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for server in self._servers:
            await server.wait_closed()

    def _new_connection(self) -> asyncio.Protocol:
        if len(self._tasks) >= self.settings.max_sessions:
            self.stats.refused += 1
            log.warning("FastAGI: %d sessions open, refusing a connection", len(self._tasks))
            return _Refused()
        loop = self._loop
        assert loop is not None  # connections come only once start() has bound
        conn = AgiConnection(self.settings.new_session(), self.settings.idle_timeout, loop)
        self.stats.accepted += 1
        task = loop.create_task(self._serve(conn))
        self._tasks.add(task)
        self._open.add(conn)
        self._idle.clear()
        task.add_done_callback(functools.partial(self._session_done, conn))
        return conn

    def _session_done(self, conn: AgiConnection, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._open.discard(conn)
        if not self._tasks:
            self._idle.set()

    async def _sweep(self) -> None:
        """Every tick, end the waits whose deadline has passed: a session is dropped between
        its deadline and a tick later."""
        loop = asyncio.get_running_loop()
        tick = min(1.0, self.settings.idle_timeout / 10)
        while True:
            await asyncio.sleep(tick)
            now = loop.time()
            for conn in list(self._open):
                conn.expire(now)

    async def _serve(self, conn: AgiConnection) -> None:
        try:
            env = await conn.read_environment()
            handler = self.handlers.get(env.script.lower())
            if handler is None:
                self.stats.unrouted += 1
                log.warning("FastAGI: no handler for script %r from %s", env.script, conn.peer)
                return
            await handler(conn)
            self.stats.completed += 1
        except TimeoutError:
            self.stats.timed_out += 1
            log.info("FastAGI: dropped %s after %.1fs of silence", conn.peer, conn.idle_timeout)
        except ProtocolError as exc:
            self.stats.protocol_errors += 1
            log.info("FastAGI: %s: %s", conn.peer, exc)
        except ConnectionError as exc:
            self.stats.dropped += 1
            log.info("FastAGI: %s went away: %s", conn.peer, exc)
        except asyncio.CancelledError:
            conn.abort()
            raise
        except Exception:
            self.stats.handler_errors += 1
            log.exception("FastAGI: handler failed for %s", conn.peer)
        finally:
            conn.close()


class _Refused(asyncio.Protocol):
    """Closes the connection at once (over ``max_sessions``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


__all__ = ["AgiConnection", "FastAgiServer", "Handler", "PeerClosed", "ServerStats"]
