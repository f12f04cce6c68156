"""Work the console does beside its requests, in threads that live as long as the application."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette


def run_beside(
    app: Starlette, work: Callable[[Starlette, threading.Event], Any], name: str
) -> None:
    """Run ``work(app, stop)`` in a daemon thread (it never holds up the process's exit) while
    the application runs: its lifespan, under ``pbxgate web`` and inside ``pbxgate serve``.
    ``stop`` is set as the application stops."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        async with inner(started) as state:
            stop = threading.Event()
            worker = threading.Thread(target=work, args=(started, stop), name=name, daemon=True)
            worker.start()
            try:
                yield state
            finally:
                stop.set()

    app.router.lifespan_context = lifespan


__all__ = ["run_beside"]
