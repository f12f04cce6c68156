"""run_service: FastAGI and the worker in one loop; stop order; a failing worker ends it."""

from __future__ import annotations

import asyncio
import time

import pytest

from pbxgate.agi.runner import loop_factory, run_service
from pbxgate.agi.settings import AgiSettings
from pbxgate.config import Settings
from pbxgate.errors import DeliveryError
from tests.agi.fakes import default_responder, environment, fake_asterisk


def test_worker_stops_after_the_fastagi_drain():
    order: list[str] = []

    async def worker(settings: Settings, stop: asyncio.Event) -> None:
        order.append("worker started")
        await stop.wait()
        order.append("worker stopped")

    async def main() -> None:
        stop = asyncio.Event()
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        service = asyncio.create_task(
            run_service(
                Settings(),
                stop,
                listen=("127.0.0.1", 0),
                worker=worker,
                on_ready=ready.set_result,
            )
        )
        _, port = await ready
        commands = await fake_asterisk(port, environment(), default_responder("R1"))
        assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        assert order == ["worker started"]
        stop.set()
        stats = await service
        assert stats.completed == 1
        assert order == ["worker started", "worker stopped"]

    asyncio.run(main())


def test_the_worker_is_told_to_stop_only_once_the_calls_are_drained():
    """What the calls of the drain queue is still delivered: the worker is told to stop once
    they have ended (its own stop is bounded: its sends get 10 s, a process what is left of
    the stop's budget)."""
    told: list[float] = []

    async def worker(settings: Settings, stop: asyncio.Event) -> None:
        await stop.wait()
        told.append(time.monotonic())

    async def main() -> tuple[float, float]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[tuple[str, int]] = loop.create_future()
        settings = Settings({"agi": {"drain_timeout": 1.0}})
        serving = run_service(
            settings, stop, listen=("127.0.0.1", 0), worker=worker, on_ready=ready.set_result
        )
        service = asyncio.create_task(serving)
        _, port = await ready
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_request: agi://x/notify\n")  # a session open: half its environment
        await writer.drain()
        await asyncio.sleep(0.2)
        began = time.monotonic()
        stop.set()
        await service
        writer.close()
        return began, time.monotonic()

    began, ended = asyncio.run(main())
    assert ended - began >= 0.9  # the open session was waited for
    assert told and told[0] - began >= 0.9  # and only then was the worker told


def test_a_worker_that_fails_ends_the_service_with_its_error():
    async def worker(settings: Settings, stop: asyncio.Event) -> None:
        raise DeliveryError("another worker is already delivering from x")

    async def main() -> None:
        await run_service(Settings(), asyncio.Event(), listen=("127.0.0.1", 0), worker=worker)

    with pytest.raises(DeliveryError, match="another worker"):
        asyncio.run(main())


def test_loop_factory_is_uvloop_only_when_wanted_and_installed():
    assert loop_factory(AgiSettings(uvloop=False)) is None
    factory = loop_factory(AgiSettings())
    try:
        import uvloop
    except ImportError:
        assert factory is None
    else:
        assert factory is uvloop.new_event_loop


def test_a_busy_worker_never_holds_a_call():
    """The worker has a thread and an event loop of its own: while it is busy (a slow template,
    an import, a long answer to parse) a call's session still ends at once."""

    async def worker(settings: Settings, stop: asyncio.Event) -> None:
        while not stop.is_set():
            time.sleep(2)  # blocks the worker's loop, as CPU work does
            await asyncio.sleep(0)

    async def main() -> list[float]:
        stop = asyncio.Event()
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        service = asyncio.create_task(
            run_service(
                Settings(), stop, listen=("127.0.0.1", 0), worker=worker, on_ready=ready.set_result
            )
        )
        _, port = await ready
        holds = []
        for n in range(5):
            began = time.perf_counter()
            commands = await fake_asterisk(port, environment(), default_responder(f"B{n}"))
            holds.append(time.perf_counter() - began)
            assert commands[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
        stop.set()
        await service
        return holds

    holds = asyncio.run(main())
    # on the worker's loop a call would wait for it (2 s) at each of its exchanges; a
    # second's margin is for an outbox commit's fsync on a loaded machine
    assert max(holds) < 1.0, holds
