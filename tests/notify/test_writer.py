"""The outbox writer's process (pbxgate.notify.writer): each event is on disk when its answer
comes, one bad event fails alone, and an end of the writer fails what it had not answered."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pbxgate.config import Settings
from pbxgate.errors import DeliveryError
from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.writer import WriterLink, WriterProcess, answer, line_of, serve
from tests.notify.helpers import make_event, stored_ids

T = TypeVar("T")


def with_writer(
    path: Path, body: Callable[[WriterProcess], Awaitable[T]], **kw: object
) -> tuple[T, WriterProcess]:
    async def main() -> tuple[T, WriterProcess]:
        settings = Settings({"notify": {"outbox": str(path)}})
        writer = WriterProcess(settings, **kw)  # type: ignore[arg-type]
        await writer.start()
        try:
            await asyncio.wait_for(writer.started(), 60)
            return await body(writer), writer
        finally:
            await asyncio.wait_for(writer.close(), 60)

    return asyncio.run(main())


def test_each_event_is_on_disk_when_its_future_resolves(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox.open(path).close()
    commits: list[int] = []

    async def body(writer: WriterProcess) -> list[bool]:
        # the settings came through a pipe, never the command line
        assert str(path).encode() not in Path(f"/proc/{writer.pid}/cmdline").read_bytes()
        first = await writer.submit(make_event(1))
        assert stored_ids(path) == ["incoming:1700000000.1"]  # before anything else happens
        futures = [writer.submit(make_event(n)) for n in (1, 2, 3, 2)]  # one pass of the loop
        return [first, *await asyncio.gather(*futures)]

    results, writer = with_writer(path, body, on_commit=lambda: commits.append(1))
    assert results == [True, False, True, True, False]  # repeats answer "there already"
    assert stored_ids(path) == [f"incoming:1700000000.{n}" for n in (1, 2, 3)]
    assert commits  # a commit that stored something says so (it wakes the worker)
    assert writer.finished.done() and writer.finished.exception() is None


def test_fastagi_processes_share_the_writer_and_the_service_hears_of_their_commits(
    tmp_path: Path,
) -> None:
    """Each FastAGI process has a socket of its own to the writer: its events are committed
    with everyone's and answered to it alone; the service, which wakes the worker and the
    live page, is told that something was stored; one process's end leaves the others
    served, and the writer ends once every socket has."""
    path = tmp_path / "outbox.sqlite3"
    heard: list[int] = []

    async def body(writer: WriterProcess) -> list[object]:
        loop = asyncio.get_running_loop()
        first, second = WriterLink(loop), WriterLink(loop)
        await first.connect(writer.links[0])
        await second.connect(writer.links[1])
        together = await asyncio.gather(
            first.submit(make_event(1)), second.submit(make_event(2)), first.submit(make_event(3))
        )
        again = await second.submit(make_event(1))  # stored by the other: there already
        for _ in range(500):
            if heard:
                break
            await asyncio.sleep(0.01)
        await first.close()
        later = await second.submit(make_event(4))  # the other process goes on
        await second.close()
        assert not writer.finished.done()  # the service's own socket is still open
        return [*together, again, later]

    results, writer = with_writer(path, body, links=2, on_commit=lambda: heard.append(1))
    assert results == [True, True, True, False, True]
    assert heard  # the service submitted nothing itself, and heard of the commits
    assert stored_ids(path) == [f"incoming:1700000000.{n}" for n in (1, 2, 3, 4)]
    assert writer.finished.exception() is None


def test_one_event_that_cannot_be_stored_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    Outbox.open(path).close()
    refused = make_event(5).event_id
    with sqlite3.connect(path) as db:  # a disk that refuses one row
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.event_id = "
            f"'{refused}' BEGIN SELECT RAISE(ABORT, 'disk refused the row'); END"
        )

    async def body(writer: WriterProcess) -> list[object]:
        futures = [writer.submit(make_event(n)) for n in range(1, 9)]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    results, _ = with_writer(path, body)
    failed = {n: r for n, r in enumerate(results, 1) if isinstance(r, BaseException)}
    assert list(failed) == [5]
    assert isinstance(failed[5], DeliveryError) and "disk refused the row" in str(failed[5])
    assert len(stored_ids(path)) == 7


def test_close_commits_what_is_queued_and_then_refuses(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"

    async def main() -> None:
        writer = WriterProcess(Settings({"notify": {"outbox": str(path)}}))
        await writer.start()
        futures = [writer.submit(make_event(n)) for n in range(1, 51)]  # before it is ready
        await asyncio.wait_for(writer.close(), 60)
        assert [f.result() for f in futures] == [True] * 50
        with pytest.raises(RuntimeError, match="closed"):
            writer.submit(make_event(99))
        assert writer.finished.exception() is None

    asyncio.run(main())
    assert len(stored_ids(path)) == 50


def test_a_killed_writer_fails_what_it_had_not_answered(tmp_path: Path) -> None:
    """The call goes on (its handler logs the whole event): nothing waits for ever."""
    path = tmp_path / "outbox.sqlite3"

    async def body(writer: WriterProcess) -> tuple[BaseException | None, BaseException | None]:
        assert writer.pid is not None
        assert await writer.submit(make_event(1)) is True
        os.kill(writer.pid, signal.SIGSTOP)  # it can take no more
        pending = writer.submit(make_event(2))
        await asyncio.sleep(0.2)
        assert not pending.done()
        os.kill(writer.pid, signal.SIGKILL)
        await asyncio.wait_for(asyncio.wait([pending, writer.finished]), 30)
        late = writer.submit(make_event(3))  # after its end: fails at once
        return pending.exception(), late.exception()

    (pending, late), writer = with_writer(path, body)
    assert isinstance(pending, DeliveryError)
    assert str(pending) == "the outbox writer process ended before it answered"
    assert isinstance(late, DeliveryError)
    assert str(writer.finished.exception()) == "the outbox writer process was killed by signal 9"
    assert stored_ids(path) == ["incoming:1700000000.1"]


def test_a_writer_that_cannot_open_the_outbox_says_why(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("", encoding="utf-8")

    async def main() -> BaseException | None:
        writer = WriterProcess(Settings({"notify": {"outbox": str(blocked / "outbox.sqlite3")}}))
        await writer.start()
        await asyncio.wait_for(writer.started(), 60)
        await asyncio.wait_for(writer.close(), 60)
        return writer.finished.exception()

    error = asyncio.run(main())
    assert error is not None
    assert "outbox" in str(error) and "\n" not in str(error)


def test_the_writer_answers_each_line(tmp_path: Path) -> None:
    """The child's side, line by line: stored, there already, lines that are no event; and
    what it stores is the event as the service sent it."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)
    event = make_event(1, caller_name="Олег \t«Иванов»\n")
    try:
        got = answer(
            box,
            [
                line_of(7, event)[:-1],
                line_of(8, event)[:-1],
                b"9\t{not json",
                b'10\t"id"\tincoming\tnot a time\t{}',
                b"11 no tabs at all",
            ],
        )
    finally:
        box.close()
    lines = sorted(got.decode().splitlines())  # answers come in any order
    unreadable = '"the outbox writer got a line that is not an event"'
    assert lines == [f"10 E {unreadable}", "7 1", "8 0", f"9 E {unreadable}"]
    with sqlite3.connect(path) as db:
        rows = list(db.execute("SELECT event_id, kind, payload, created_at FROM events"))
    assert rows == [(event.event_id, "incoming", event.to_json(), event.occurred_at)]
    assert CallEvent.from_json(rows[0][2]) == event


def test_a_killed_writer_hands_its_events_to_this_process(tmp_path: Path) -> None:
    """With a fallback (as pbxgate serve has: its own open outbox), what the writer had not
    answered, and every call after it, is committed by a thread of the service."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)

    async def body(writer: WriterProcess) -> list[bool]:
        assert writer.pid is not None
        first = await writer.submit(make_event(1))
        os.kill(writer.pid, signal.SIGSTOP)
        pending = writer.submit(make_event(2))
        await asyncio.sleep(0.2)
        os.kill(writer.pid, signal.SIGKILL)
        await asyncio.wait_for(asyncio.wait([writer.finished]), 30)
        later = writer.submit(make_event(3))
        return [first, await asyncio.wait_for(pending, 30), await asyncio.wait_for(later, 30)]

    try:
        results, writer = with_writer(path, body, fallback=box)
    finally:
        box.close()
    assert results == [True, True, True]
    assert stored_ids(path) == [f"incoming:1700000000.{n}" for n in (1, 2, 3)]
    assert str(writer.finished.exception()) == "the outbox writer process was killed by signal 9"


@pytest.mark.parametrize("killable", [True, False])
def test_a_writer_that_does_not_answer_at_close_is_stopped_and_its_events_logged(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    killable: bool,
) -> None:
    """A stop waits for the writer's last answers a bounded time (a disk that does not
    return would hold the service's end for ever): then the writer is killed, each event it
    had not answered is logged whole, none goes to the fallback (the same disk), and the
    close fails in one line. A writer that does not end when killed (in a disk wait) is left
    after a few seconds more."""
    monkeypatch.setattr("pbxgate.notify.writer.KILL_WAIT", 0.5)
    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)

    async def main() -> tuple[BaseException | None, BaseException | None, float, int]:
        settings = Settings({"notify": {"outbox": str(path)}})
        writer = WriterProcess(settings, fallback=box)
        await writer.start()
        await asyncio.wait_for(writer.started(), 60)
        assert writer.pid is not None and await writer.submit(make_event(1))
        os.kill(writer.pid, signal.SIGSTOP)  # as in a write the disk never returns from
        if not killable:
            monkeypatch.setattr(writer, "kill", lambda: None)
        pending = writer.submit(make_event(2, caller_name="Анна"))
        started = time.monotonic()
        closing = None
        try:
            await asyncio.wait_for(writer.close(wait=0.5), 30)
        except DeliveryError as exc:
            closing = exc
        took = time.monotonic() - started
        if not killable:
            os.kill(writer.pid, signal.SIGKILL)  # the one left running
        return closing, pending.exception(), took, writer.pid

    try:
        closing, error, took, _ = asyncio.run(main())
    finally:
        box.close()
    assert str(closing) == (
        "the outbox writer process did not answer in 0.5 s; 1 event(s) logged, perhaps not stored"
    )
    assert str(error) == "the outbox writer process was stopped before it answered"
    assert 0.5 <= took < 10
    assert stored_ids(path) == ["incoming:1700000000.1"]  # the fallback stored nothing
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert lines[0] == "the outbox writer process has not answered in 0.5 s; it is stopped"
    assert lines[1].startswith(
        "incoming:1700000000.2 may not have been stored (the outbox writer process did not "
        "answer); event: {"
    )
    assert '"caller_name":"Анна"' in lines[1]
    if not killable:
        assert lines[2].startswith("the outbox writer process did not end when killed (pid ")


@pytest.mark.parametrize("killable", [True, False])
def test_a_writer_stuck_while_the_service_runs_is_stopped_and_the_service_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
    killable: bool,
) -> None:  # fmt: skip
    """A disk that does not return while calls come: each call waits its commit timeout and
    has its event logged, and the unanswered events used to pile up for as long as the
    writer stayed stuck. Past STUCK_AFTER it is stopped, each event it had not answered is
    logged whole, and its end (which ends the service: systemd starts it again) says why,
    whether or not it ends when killed (a disk wait); later events fail at once, not handed
    to this process's own commit thread (the same disk)."""
    monkeypatch.setattr("pbxgate.notify.writer.STUCK_AFTER", 0.5)
    monkeypatch.setattr("pbxgate.notify.writer.STUCK_CHECK", 0.1)
    monkeypatch.setattr("pbxgate.notify.writer.KILL_WAIT", 0.3)
    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)

    async def body(writer: WriterProcess) -> BaseException | None:
        assert writer.pid is not None and await writer.submit(make_event(1))
        os.kill(writer.pid, signal.SIGSTOP)  # as in a write the disk never returns from
        if not killable:
            monkeypatch.setattr(writer, "kill", lambda: None)
        pending = writer.submit(make_event(2, caller_name="Анна"))
        await asyncio.wait_for(asyncio.wait([pending]), 30)
        later = writer.submit(make_event(3))
        await asyncio.wait_for(asyncio.wait([writer.finished]), 30)
        assert str(later.exception()) == "the outbox writer process was stopped for not answering"
        if not killable:
            os.kill(writer.pid, signal.SIGKILL)  # the one left running
        return pending.exception()

    try:
        error, writer = with_writer(path, body, fallback=box)
    finally:
        box.close()
    assert str(error) == "the outbox writer process was stopped before it answered"
    assert str(writer.finished.exception()) == (
        "the outbox writer process did not answer for 0.5 s"
    )
    assert stored_ids(path) == ["incoming:1700000000.1"]
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert lines[0] == "the outbox writer process has not answered for 0.5 s; it is stopped"
    assert lines[1].startswith("incoming:1700000000.2 may not have been stored")
    assert '"caller_name":"Анна"' in lines[1]


def test_a_writer_that_ends_unasked_is_a_failure(tmp_path: Path) -> None:
    """Its input ended without the service closing it: the service must not go on (nor exit 0
    as if stopped) with nobody to commit its calls."""
    path = tmp_path / "outbox.sqlite3"

    async def body(writer: WriterProcess) -> None:
        writer._ours.shutdown(socket.SHUT_WR)  # as if the service's side had gone
        await asyncio.wait_for(asyncio.wait([writer.finished]), 30)

    _, writer = with_writer(path, body)
    assert str(writer.finished.exception()) == "the outbox writer process ended on its own"


def test_the_service_gone_with_answers_unread_still_has_its_events_committed(
    tmp_path: Path,
) -> None:
    """A service killed with SIGKILL leaves answers unread: its end reaches the writer as a
    reset, not an end of input, and what it sent is committed all the same."""
    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)
    ours, theirs = socket.socketpair()
    serving = threading.Thread(target=serve, args=(theirs, box))
    serving.start()
    try:
        ours.sendall(line_of(1, make_event(1)))
        deadline = time.monotonic() + 30
        while stored_ids(path) != ["incoming:1700000000.1"] and time.monotonic() < deadline:
            time.sleep(0.01)  # its answer waits, unread
        ours.sendall(line_of(2, make_event(2)) + line_of(3, make_event(3)))
        ours.close()
        serving.join(30)
        assert not serving.is_alive()
    finally:
        theirs.close()
        box.close()
    assert stored_ids(path) == [f"incoming:1700000000.{n}" for n in (1, 2, 3)]


def test_a_fastagi_process_opens_its_fallback_off_the_loop(tmp_path: Path) -> None:
    """When the writer has gone, a FastAGI process opens the outbox itself to commit its calls'
    events: on a thread (a database server's connection can take seconds), never on the loop
    its calls are served on (here the opening waits for the loop to turn, which it could never
    do on the loop); the events that wait for it are stored once it is open."""
    path = tmp_path / "outbox.sqlite3"
    opened_on: list[int] = []

    async def main() -> list[object]:
        loop = asyncio.get_running_loop()
        turned = threading.Event()

        def open_outbox() -> Outbox:
            opened_on.append(threading.get_ident())
            loop.call_soon_threadsafe(turned.set)
            if not turned.wait(10):  # the loop did not turn: this blocked it
                raise RuntimeError("opened on the loop")
            return Outbox.open(path)

        ours, theirs = socket.socketpair()
        link = WriterLink(loop, fallback=open_outbox)
        await link.connect(ours)
        theirs.close()  # the writer has gone
        await asyncio.sleep(0.05)
        futures = [link.submit(make_event(n)) for n in (1, 2)]
        results = list(await asyncio.gather(*futures, return_exceptions=True))
        await link.close()
        return results

    results = asyncio.run(main())
    assert results == [True, True]
    assert len(opened_on) == 1 and opened_on[0] != threading.get_ident()
    assert stored_ids(path) == ["incoming:1700000000.1", "incoming:1700000000.2"]
