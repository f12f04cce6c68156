"""The web console inside ``pbxgate serve`` (``[web] enabled = true``).

The console runs as one more task on the service's event loop (``uvicorn.Server.serve``), with
the live page fed in process (:func:`pbxgate.web.livefeed.in_process`): a FastAGI session's
event shows the moment it is queued, the manager's calls come from the service's own live hub.
The listening socket is bound before the service starts (:func:`bind`), so that a port in use
is one line and a non-zero exit, not a traceback from a task. On ``stop`` (SIGTERM, Ctrl-C:
``pbxgate serve`` handles them, uvicorn does not), the live streams end first, then uvicorn
stops; nothing waits for a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections.abc import Iterator

import uvicorn

from pbxgate.ami.live import LiveHub as AmiHub
from pbxgate.config import Settings
from pbxgate.errors import ConfigError
from pbxgate.web import livefeed
from pbxgate.web.app import create_app
from pbxgate.web.livehub import LiveHub

log = logging.getLogger(__name__)

GRACE = 5  # seconds uvicorn waits for responses still running when it stops


def bind(listen: str) -> socket.socket:
    """A listening TCP socket at ``[web] listen`` (``host:port``, ``[::1]:8080``)."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"[web] listen {listen!r} is not host:port", hint="e.g. 127.0.0.1:8080")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, int(port)), family=family)
    except OSError as exc:
        raise ConfigError(
            f"the web console cannot listen on {listen}: {exc.strerror or exc}",
            hint="set [web] listen to a free host:port, or [web] enabled = false",
        ) from exc
    sock.setblocking(False)
    return sock


def address(sock: socket.socket) -> str:
    """``host:port`` the socket listens on (the port chosen when 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pbxgate serve handles SIGINT and SIGTERM itself, and sets ``stop``


async def run_console(
    settings: Settings, stop: asyncio.Event, sock: socket.socket, calls: AmiHub | None
) -> None:
    """Serve the console on ``sock`` until ``stop``; ``calls``: the service's live hub of the
    first manager (None without ``[ami] enabled``)."""
    console = create_app(settings, listen=address(sock))
    if not console.state.users.users():
        log.warning("the web console has no users yet: add one with "
                    "'pbxgate web user add NAME --role admin'")  # fmt: skip
    hub: LiveHub = console.state.live
    console.state.live_feed = functools.partial(livefeed.in_process, hub, settings, calls=calls)
    config = uvicorn.Config(
        console,
        log_level="warning",
        access_log=False,
        # the console reads X-Forwarded-For itself, from [web] trusted_proxies only
        proxy_headers=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACE,
    )
    server = _Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([serving, stopper], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        hub.close()  # the live streams end, so that uvicorn has nothing to wait for
        server.should_exit = True
        try:
            await serving
        except (Exception, SystemExit) as exc:  # uvicorn exits on a failed startup
            log.error("the web console stopped: %s", exc)


__all__ = ["address", "bind", "run_console"]
