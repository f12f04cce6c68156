"""Live calls: the calls in progress and every change of them, for whoever subscribes.

``pbxgate serve`` with ``[ami] enabled`` follows the manager once and publishes each change of
a call here (:class:`LiveHub`). In the same process a subscriber gets an asyncio queue
(:meth:`LiveHub.subscribe`); other processes (``pbxgate ami live``, a wallboard script) read the
same stream from a Unix socket (:func:`serve_socket`), one JSON object per line::

    {"type": "snapshot", "calls": [{...CallState...}, ...]}   first: what is in progress now
    {"type": "call", "call": {...CallState...}}                then each change, as it happens

The socket is its owner's alone (mode 0600: callers' numbers). A subscriber that falls more
than ``backlog`` changes behind is dropped (its stream ends); it may connect again and start
from a fresh snapshot, so a slow reader never holds the manager's events up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pbxgate.ami.calls import ENDED, CallState

log = logging.getLogger(__name__)

_END = None  # the marker that ends a dropped subscriber's stream
SNAPSHOT_LIMIT = 64 * 1024 * 1024  # bytes of one line a reader accepts (the snapshot)


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[CallState | None] = field(default_factory=asyncio.Queue)
    dropped: bool = False


class LiveHub:
    """Thread-safe: :meth:`publish` may run on any thread, subscribers on their own loops."""

    def __init__(self, backlog: int = 1000) -> None:
        self.backlog = backlog
        self._calls: dict[str, CallState] = {}
        self._subscribers: set[_Subscriber] = set()
        self._lock = threading.Lock()

    def publish(self, state: CallState) -> None:
        with self._lock:
            if state.state == ENDED:
                self._calls.pop(state.linkedid, None)
            else:
                self._calls[state.linkedid] = state
            subscribers = list(self._subscribers)
        for sub in subscribers:
            with contextlib.suppress(RuntimeError):  # its loop has closed: it is going away
                sub.loop.call_soon_threadsafe(self._deliver, sub, state)

    def _deliver(self, sub: _Subscriber, state: CallState) -> None:
        if sub.dropped:
            return
        if sub.queue.qsize() >= self.backlog:
            sub.dropped = True
            with self._lock:
                self._subscribers.discard(sub)
            sub.queue.put_nowait(_END)
            log.warning("a live-calls subscriber fell %d changes behind; dropped", self.backlog)
            return
        sub.queue.put_nowait(state)

    def snapshot(self) -> list[CallState]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: (c.started_at, c.linkedid))

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[tuple[list[CallState], AsyncIterator[CallState]]]:
        """The calls in progress now, and the changes from that moment on (none lost between
        the two); the stream ends when this subscriber was dropped."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            snapshot = sorted(self._calls.values(), key=lambda c: (c.started_at, c.linkedid))
            self._subscribers.add(sub)

        async def changes() -> AsyncIterator[CallState]:
            while (state := await sub.queue.get()) is not _END:
                yield state

        try:
            yield snapshot, changes()
        finally:
            with self._lock:
                self._subscribers.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)


def encode(kind: str, payload: object) -> bytes:
    return (
        json.dumps({"type": kind, **_payload(kind, payload)}, ensure_ascii=False).encode() + b"\n"
    )


def _payload(kind: str, payload: object) -> dict[str, object]:
    if kind == "snapshot":
        return {"calls": [asdict(c) for c in payload]}  # type: ignore[attr-defined]
    return {"call": asdict(payload)}  # type: ignore[call-overload]


async def serve_socket(hub: LiveHub, path: Path, stop: asyncio.Event) -> None:
    """Stream the hub on a Unix socket at ``path`` (mode 0600) until ``stop``."""

    clients: set[asyncio.Task[object]] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            clients.add(task)
        try:
            async with hub.subscribe() as (snapshot, changes):
                writer.write(encode("snapshot", snapshot))
                await writer.drain()
                async for state in changes:
                    writer.write(encode("call", state))
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            clients.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    try:
        sock = _bind(path)
        server = await asyncio.start_unix_server(client, sock=sock)
        mine = path.stat().st_ino
    except OSError as exc:  # the calls are still followed and notified; only the stream is off
        log.error("live calls are not streamed: cannot listen on %s: %s", path, exc)
        await stop.wait()
        return
    try:
        async with server:
            await stop.wait()
            server.close()  # no new readers, then end the streams of those there
            for task in list(clients):
                task.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
    finally:
        with contextlib.suppress(OSError):
            if path.stat().st_ino == mine:  # not another serve's that replaced it
                path.unlink()


def _bind(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, its owner's alone from the start. A socket left
    by a process that died is replaced; one that a running process answers on is not."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.path.lexists(path):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise OSError(f"{path} is there and is not a socket; set [ami] live_socket apart")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)  # a serve too busy to accept counts as alive
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            path.unlink()  # nobody there: left by a process that was killed
        except OSError:
            raise OSError("a process holds the socket there; set [ami] live_socket apart") from None
        else:
            raise OSError("another process streams there (another pbxgate serve?); set "
                          "[ami] live_socket apart")  # fmt: skip
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)  # bound 0600: no moment when others could connect
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(16)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def read_socket(path: Path) -> AsyncIterator[dict[str, object]]:
    """The stream of a :func:`serve_socket`, decoded (``pbxgate ami live``)."""
    # the snapshot is one line: as long as the calls in progress need (about 0.5 KiB each)
    reader, writer = await asyncio.open_unix_connection(str(path), limit=SNAPSHOT_LIMIT)
    try:
        while line := await reader.readline():
            yield json.loads(line)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


__all__ = ["LiveHub", "encode", "read_socket", "serve_socket"]
