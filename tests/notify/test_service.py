from pathlib import Path

from pbxgate.config import Settings
from pbxgate.notify import service
from pbxgate.notify.outbox import Outbox

from .helpers import make_event


def test_accept_filters_internal_callers(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    settings = Settings({"notify": {"outbox": str(path)}})
    try:
        assert service.accept(settings, make_event(1, caller_number="201")) is False
        assert service.accept(settings, make_event(2)) is True
        assert service.accept(settings, make_event(2)) is False  # same event_id
        assert service.accept(settings, make_event(3, caller_number="")) is True
    finally:
        service.close_outboxes()
    box = Outbox.open(path)
    assert [e.linkedid for e in box.unplanned()] == ["1700000000.2", "1700000000.3"]
    box.close()


def test_accept_uses_the_cdr_internal_pattern(tmp_path: Path) -> None:
    settings = Settings(
        {"notify": {"outbox": str(tmp_path / "o.sqlite3")}, "cdr": {"internal_pattern": "5\\d{4}"}}
    )
    try:
        assert service.accept(settings, make_event(1, caller_number="51234")) is False
        assert service.accept(settings, make_event(2, caller_number="201")) is True
    finally:
        service.close_outboxes()


def test_default_outbox_is_in_the_data_dir(isolated_home: Path) -> None:
    try:
        assert service.accept(Settings({}), make_event(1))
    finally:
        service.close_outboxes()
    assert (isolated_home / "data" / "pbxgate" / "outbox.sqlite3").is_file()


def test_accept_does_not_import_http_templates_or_asyncio() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pbxgate.notify.service;"
        "print(sorted(m for m in ('httpx', 'jinja2', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_run_worker_delivers_what_accept_stores_in_the_same_process(tmp_path: Path) -> None:
    import asyncio

    import httpx

    token = tmp_path / "vk.token"
    token.write_text("service-test-token\n")
    settings = Settings(
        {
            "notify": {
                "outbox": str(tmp_path / "o.sqlite3"),
                "poll_interval": 3600,  # only accept()'s wake-up can make this test pass
                "vk": {"enabled": True, "token_file": str(token), "recipients": ["7"]},
            }
        }
    )
    seen: list[bytes] = []

    async def scenario() -> None:
        got = asyncio.Event()

        def handler(req: httpx.Request) -> httpx.Response:
            seen.append(req.content)
            got.set()
            return httpx.Response(200, json={"response": 1})

        stop = asyncio.Event()
        task = asyncio.create_task(
            service.run_worker(settings, stop, transport=httpx.MockTransport(handler))
        )
        await asyncio.sleep(0)
        while not service._wakers:  # the worker registers once it holds the outbox lock
            await asyncio.sleep(0)
        assert service.accept(settings, make_event(1))
        await asyncio.wait_for(got.wait(), 10)
        stop.set()
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(scenario())
    finally:
        service.close_outboxes()
    assert len(seen) == 1 and b"peer_id=7" in seen[0]


def test_a_worker_of_another_process_is_woken_while_registered() -> None:
    """pbxgate serve's worker process: what this process stores (the calls' commits, the
    manager's events) wakes it through the call registered with waking()."""
    calls: list[str] = []
    with service.waking(lambda: calls.append("woken")):
        service.wake_workers()
        service.wake_workers()
    service.wake_workers()
    assert calls == ["woken", "woken"]
