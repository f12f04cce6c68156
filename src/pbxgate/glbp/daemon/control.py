"""The daemon's control socket: the IOS console of the running router, over a Unix socket.

One JSON object per line each way. A client sends ``{"line": "show glbp brief"}`` and gets
``{"output": "...", "prompt": "R2#"}``; the connection keeps its console mode, so ``configure
terminal`` / ``interface eth0`` / ``glbp 1 priority 150`` / ``end`` work as on a router, each
change reaching the engines when its line has run, and ``write memory`` saves the running
configuration to the daemon's file. The socket is owner-only (0600 in a 0700 directory): the
console changes the network, so only root (or the daemon's user) may open it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from pbxgate.glbp.daemon.errors import ControlError, DaemonError
from pbxgate.glbp.ios import EXEC, Mode, run
from pbxgate.glbp.ios.names import HOST_INTERFACES

if TYPE_CHECKING:
    from pbxgate.glbp.daemon.runtime import Daemon

DEFAULT_SOCKET = Path("/run/pbxgate/glbp.sock")
MAX_LINE = 4096


async def serve(daemon: Daemon, path: Path) -> asyncio.AbstractServer:
    """Listen on ``path`` (replacing a stale socket) until the returned server is closed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _answers(path):
        raise ControlError(
            f"a GLBP daemon already answers on {path}", hint="give this one another --control"
        )
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a stale socket of a daemon that is gone
    old = os.umask(0o177)
    try:
        server = await asyncio.start_unix_server(
            lambda r, w: _session(daemon, r, w), path=str(path), limit=MAX_LINE
        )
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return server


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def _session(
    daemon: Daemon, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    mode: Mode = EXEC
    try:
        while line := await reader.readline():
            try:
                request = json.loads(line)
                text = str(request["line"])
            except (ValueError, KeyError, TypeError):
                reply = {"error": "a request is one JSON object with a 'line'"}
            else:
                try:
                    output, mode = await _execute(daemon, mode, text)
                except Exception as exc:  # one bad line must not end the console
                    reply = {"error": f"{text!r} failed: {exc}"}
                else:
                    reply = {"output": output, "prompt": daemon.ios.prompt(mode)}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
    except (ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _execute(daemon: Daemon, mode: Mode, text: str) -> tuple[str, Mode]:
    """One console line. A change the host cannot carry out (an interface it does not have)
    is undone, so the running configuration never holds what the engines do not run."""
    if not daemon.started:
        return "% The router is starting or stopping; try again\n", mode
    # Interface names as the host has them now (an interface made after start included).
    HOST_INTERFACES.set(frozenset(daemon.links))
    config, startup, debugs = daemon.ios.config, daemon.ios.startup, set(daemon.ios.debugs)
    result = run(daemon.ios, mode, text)
    if daemon.ios.config is not config or daemon.ios.debugs != debugs:
        try:
            await daemon.apply_config()
        except DaemonError as exc:
            daemon.ios.config, daemon.ios.debugs = config, debugs
            await daemon.apply_config()
            return f"% {exc}\n", mode
    if daemon.ios.startup is not startup:
        daemon.saved()
    return result.output, result.mode or EXEC


class Client:
    """A blocking client of the control socket (``pbxgate glbp show``, the console)."""

    def __init__(self, path: Path, timeout: float = 5.0) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise ControlError(
                f"no GLBP daemon answers on {path}: {exc.strerror or exc}",
                hint="is 'pbxgate glbp run' running, and are you root?",
            ) from exc
        self._buffer = self.sock.makefile("rb")

    def execute(self, line: str) -> tuple[str, str]:
        """Run one console line; returns (output, prompt)."""
        try:
            self.sock.sendall(json.dumps({"line": line}).encode() + b"\n")
            raw = self._buffer.readline()
        except OSError as exc:
            raise ControlError(f"the GLBP daemon on {self.path}: {exc}") from exc
        if not raw:
            raise ControlError(f"the GLBP daemon on {self.path} closed the connection")
        reply = json.loads(raw)
        if "error" in reply:
            raise ControlError(str(reply["error"]))
        return str(reply["output"]), str(reply["prompt"])

    def close(self) -> None:
        self._buffer.close()
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_SOCKET", "Client", "serve"]
