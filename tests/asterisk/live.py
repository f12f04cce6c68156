"""pbxgate's AMI call tracker following the test office's PBX while its calls run: directly
(:class:`LiveCalls`), and through a ``pbxgate serve``'s live-calls stream (:class:`LiveStream`)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pbxgate.ami.calls import ENDED, CallState, CallTracker
from pbxgate.ami.client import AmiClient
from pbxgate.ami.live import read_socket


class LiveCalls:
    """A thread with its own loop running :func:`pbxgate.ami.client.follow` against the PBX;
    the calls it saw end are kept in ``ended``."""

    def __init__(self, port: int, username: str, secret: str) -> None:
        self.port, self.username, self.secret = port, username, secret
        self.ended: list[dict[str, Any]] = []
        self.changes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._main, name="live-calls", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._up.wait(30):
            raise RuntimeError("pbxgate's AMI client did not connect to the PBX")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _seen(self, state: CallState) -> None:
        self.changes += 1
        if state.state == ENDED:
            self.ended.append(asdict(state))

    def _main(self) -> None:
        async def run() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            await CallTracker(self._seen).follow(
                lambda: AmiClient("127.0.0.1", self.port, self.username, self.secret),
                self._stop,
                caught_up=self._up.set,
                first_delay=0.2,
            )

        asyncio.run(run())


class LiveStream:
    """A thread reading a ``pbxgate serve``'s live-calls socket (as ``pbxgate ami live``
    does); the calls it saw end are kept in ``ended``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ended: list[dict[str, Any]] = []
        self.snapshots = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = threading.Event()
        self._thread = threading.Thread(target=self._main, name="live-stream", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._up.wait(30):
            raise RuntimeError(f"no live-calls stream at {self.path}")

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(30)

    def _main(self) -> None:
        async def read() -> None:
            while True:
                try:
                    async for item in read_socket(self.path):
                        if item["type"] == "snapshot":
                            self.snapshots += 1
                            self._up.set()
                        elif item["call"]["state"] == ENDED:  # type: ignore[index]
                            self.ended.append(item["call"])  # type: ignore[arg-type]
                except OSError:
                    pass
                await asyncio.sleep(0.1)  # not there yet, or reconnecting

        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()  # type: ignore[assignment]
            with contextlib.suppress(asyncio.CancelledError):
                await read()

        asyncio.run(run())
