"""Start the daemon: read the configuration, undo a crashed run, serve the console, run."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from pbxgate.glbp.config import RouterConfig
from pbxgate.glbp.daemon.control import serve
from pbxgate.glbp.daemon.errors import DaemonError
from pbxgate.glbp.daemon.host import Host
from pbxgate.glbp.daemon.ledger import Ledger
from pbxgate.glbp.daemon.runtime import Daemon
from pbxgate.glbp.ios import render_config
from pbxgate.glbp.ios.names import HOST_INTERFACES

DEFAULT_LEDGER = Path("/run/pbxgate/glbp.ledger")


def hold_lock(ledger_path: Path, what: str) -> int:
    """Take the ledger's lock for this process's life (a file descriptor, never closed):
    a second daemon on the same ledger would undo the first one's sysctls and take its
    console socket."""
    ledger_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = ledger_path.with_name(ledger_path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(
            f"another pbxgate glbp run is using {ledger_path}", hint=f"{what} it first"
        ) from None
    return fd


def host_interfaces() -> frozenset[str]:
    return frozenset(name for _, name in socket.if_nameindex())


def configure_logging(debug: bool) -> None:
    """IOS log lines on stderr: bare under systemd (the journal stamps them), else timed (and
    always timed with ``debug``, to the millisecond, for comparing routers' logs)."""
    logger = logging.getLogger("pbxgate.glbp")
    handler = logging.StreamHandler(sys.stderr)
    timed = "%(asctime)s.%(msecs)03d " if sys.stderr.isatty() or debug else ""
    handler.setFormatter(logging.Formatter(timed + "%(message)s", "%b %d %H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def save_to(path: Path) -> Callable[[RouterConfig], None]:
    def save(config: RouterConfig) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(render_config(config))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        logging.getLogger("pbxgate.glbp").info("configuration saved to %s", path)

    return save


def run_daemon(
    config_path: Path,
    read: Callable[[Path], RouterConfig],
    *,
    control: Path,
    ledger_path: Path,
    debug: bool = False,
) -> None:
    """Run until SIGTERM. ``read`` parses the configuration file (again on SIGHUP)."""
    if os.geteuid() != 0:
        raise DaemonError("pbxgate glbp run needs root (netlink, packet sockets, sysctls)")
    configure_logging(debug)
    hold_lock(ledger_path, "stop")
    HOST_INTERFACES.set(host_interfaces())
    config = read(config_path)
    daemon = Daemon(
        config,
        ledger=Ledger(ledger_path),
        save=save_to(config_path),
        reload=lambda: _reread(read, config_path),
    )
    asyncio.run(_main(daemon, control))


def _reread(read: Callable[[Path], RouterConfig], path: Path) -> RouterConfig:
    HOST_INTERFACES.set(host_interfaces())
    return read(path)


async def _main(daemon: Daemon, control: Path) -> None:
    server = await serve(daemon, control)
    log = logging.getLogger("pbxgate.glbp")
    try:
        async with Host(daemon.ledger) as host:
            await daemon.run(host, ready=lambda: log.info("running; console on %s", control))
    finally:
        server.close()
        control.unlink(missing_ok=True)


def cleanup(ledger_path: Path) -> str:
    """Undo a ledger left behind; returns what was undone, in words ("" when nothing)."""
    if os.geteuid() != 0:
        raise DaemonError("pbxgate glbp cleanup needs root (netlink, sysctls)")
    hold_lock(ledger_path, "a daemon is running on it: stop")
    ledger = Ledger(ledger_path)
    links, sysctls = ledger.items("link"), ledger.sysctls()
    if ledger.empty():
        return ""

    async def undo() -> None:
        async with Host(ledger) as host:
            await host.undo()

    asyncio.run(undo())
    parts = [*links, *(f"{path.replace('/', '.')}={value}" for path, value in sysctls.items())]
    return ", ".join(parts)


__all__ = ["DEFAULT_LEDGER", "cleanup", "run_daemon"]
