"""pbxgate's AMI call tracker following the test office's PBX while its calls run."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import asdict
from typing import Any

from pbxgate.ami.calls import ENDED, CallState, CallTracker
from pbxgate.ami.client import AmiClient


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
