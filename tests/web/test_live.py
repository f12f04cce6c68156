"""The Live page: its hub (calls and notifications, readers, the slow reader's drop), the
server-sent events as the browser reads them, the feeds (the outbox, the manager's live socket
and hub), and ``pbxgate serve`` with ``[web] enabled`` showing a FastAGI call as it arrives."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxgate.ami.calls import CallState
from pbxgate.ami.live import LiveHub as AmiHub
from pbxgate.ami.live import serve_socket
from pbxgate.cli.main import main
from pbxgate.config import Settings
from pbxgate.notify.events import ANSWERED, INCOMING, MISSED, CallEvent
from pbxgate.notify.fakevk import FakeVkServer
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.service import accept, close_outboxes
from pbxgate.notify.settings import NotifySettings
from pbxgate.web import live as live_page
from pbxgate.web import livefeed, livehub
from pbxgate.web import users as users_module
from pbxgate.web.livehub import AMI, CAME_IN, OUTBOX, RINGING, TALKING, Busy, LiveHub
from pbxgate.web.users import Role, UserStore
from tests.agi.fakes import default_responder, environment, fake_asterisk
from tests.web.conftest import PASSWORDS, Clock, client, log_in, run

PBXGATE = Path(sys.executable).with_name("pbxgate")
T0 = 1_700_000_000.0


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before ``console`` makes its users: cheap password hashes for the logins here."""
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", {"time_cost": 1, "memory_cost": 8,
                                                         "parallelism": 1})  # fmt: skip


class Wall:
    """A Unix-time clock the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(kind: str, linkedid: str, *, at: float = T0, caller: str = "+79161234567",
          pbx: str = "", answered_by: str = "") -> CallEvent:  # fmt: skip
    return CallEvent(
        kind=kind,
        uniqueid=linkedid,
        linkedid=linkedid,
        caller_number=caller,
        caller_name="Иван",
        did="74951234567",
        channel="PJSIP/trunk-00000001",
        context="from-trunk",
        extension="74951234567",
        occurred_at=at,
        dialstatus="NOANSWER" if kind == MISSED else "",
        answered_by=answered_by,
        pbx=pbx,
    )


def state(linkedid: str, status: str = RINGING, *, caller: str = "+79160000001") -> dict[str, Any]:
    return {"linkedid": linkedid, "caller_number": caller, "caller_name": "", "did": "101",
            "state": status, "started_at": T0, "answered_by": "", "talking_to": ""}  # fmt: skip


def drain(reader: livehub.Reader) -> list[Any]:
    found = []
    while not reader.queue.empty():
        found.append(reader.queue.get_nowait())
    return found


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds, failing after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """The events of a server-sent stream: (event, data), ("retry", ms), ("comment", text)."""
    found: list[tuple[str, Any]] = []
    assert text.endswith("\n\n") or not text
    for block in text.split("\n\n")[:-1]:
        if block.startswith(":"):
            found.append(("comment", block[1:].strip()))
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        if "retry" in fields:
            found.append(("retry", int(fields["retry"])))
        else:
            assert set(fields) == {"event", "data"}, block
            found.append((fields["event"], json.loads(fields["data"])))
    return found


# -- the hub ----------------------------------------------------------------------------------


def test_a_reader_gets_the_snapshot_then_each_change_in_order() -> None:
    async def go() -> None:
        hub = LiveHub(clock=Wall())
        hub.call_event(event(INCOMING, "A"))
        snapshot, reader = hub.subscribe()
        assert [c["key"] for c in snapshot["calls"]] == ["A"]
        assert snapshot["calls"][0]["state"] == CAME_IN
        hub.call_event(event(INCOMING, "B", at=T0 + 5))
        hub.call_event(event(ANSWERED, "B", answered_by="102"))
        hub.call_event(event(MISSED, "A"))
        hub.delivery({"id": 7, "channel": "vk", "recipient": "42"})
        changes = drain(reader)
        assert [(kind, data.get("key", data.get("id"))) for kind, data in changes] == [
            ("call", "B"), ("call", "B"), ("gone", "A"), ("notification", 7)
        ]  # fmt: skip
        talking = changes[1][1]
        assert talking["state"] == TALKING and talking["answered_by"] == "102"
        assert talking["since"] == T0 + 5  # when the call came in, not when it was answered
        assert [c["key"] for c in hub.snapshot()["calls"]] == ["B"]

    run(go())


def test_the_manager_knows_better_than_the_outbox() -> None:
    async def go() -> None:
        hub = LiveHub(clock=Wall())
        hub.call_event(event(INCOMING, "C"))  # the AGI first: learnt from the outbox
        _, reader = hub.subscribe()
        hub.manager_call("", state("C", TALKING))  # the manager's view replaces it
        hub.call_event(event(INCOMING, "C"))  # a queued event changes nothing it shows
        assert [(k, d["source"]) for k, d in drain(reader)] == [("call", AMI)]
        hub.manager_call("", {**state("C"), "state": "ended"})
        hub.call_event(event(ANSWERED, "C"))  # late news of a call that ended
        assert drain(reader) == [("gone", {"key": "C"})]
        assert hub.snapshot()["calls"] == []

    run(go())


def test_a_managers_snapshot_replaces_its_calls_and_only_its_own() -> None:
    async def go() -> None:
        hub = LiveHub(clock=Wall())
        hub.manager_calls("office", [state("1"), state("2")])
        hub.manager_calls("branch", [state("1")])
        hub.call_event(event(INCOMING, "9", pbx="office"))
        _, reader = hub.subscribe()
        hub.manager_calls("office", [state("2", TALKING), state("3")])  # after a reconnection
        changes = [(k, d["key"]) for k, d in drain(reader)]
        assert changes == [("gone", "office/1"), ("call", "office/2"), ("call", "office/3")]
        keys = {c["key"]: c["source"] for c in hub.snapshot()["calls"]}
        assert keys == {"office/2": AMI, "office/3": AMI, "branch/1": AMI, "office/9": OUTBOX}
        hub.manager_gone("office")
        assert {c["key"] for c in hub.snapshot()["calls"]} == {"branch/1", "office/9"}

    run(go())


def test_a_call_known_from_the_outbox_alone_leaves_after_the_ttl() -> None:
    async def go() -> None:
        wall = Wall()
        hub = LiveHub(clock=wall, ttl=600)
        hub.call_event(event(INCOMING, "D", at=T0))
        hub.manager_call("", state("E"))
        wall.now = T0 + 599
        hub.expire()
        assert {c["key"] for c in hub.snapshot()["calls"]} == {"D", "E"}
        wall.now = T0 + 601
        hub.expire()
        assert {c["key"] for c in hub.snapshot()["calls"]} == {"E"}  # the manager's stays

    run(go())


def test_a_slow_reader_is_dropped_and_the_others_go_on() -> None:
    async def go() -> None:
        hub = LiveHub(clock=Wall(), backlog=3)
        _, slow = hub.subscribe()
        _, fast = hub.subscribe()
        got = []
        for i in range(5):
            hub.call_event(event(INCOMING, f"L{i}"))
            got += drain(fast)  # this one keeps up
        assert [d["key"] for _, d in got] == ["L0", "L1", "L2", "L3", "L4"]
        assert slow.dropped and drain(slow) == [None]  # its stream ends, nothing stale in it
        assert hub.readers == 1
        snapshot, again = hub.subscribe()  # EventSource connects again: a fresh snapshot
        assert len(snapshot["calls"]) == 5 and not again.dropped

    run(go())


def test_readers_are_limited_and_closing_ends_every_stream(monkeypatch) -> None:
    monkeypatch.setattr(livehub, "MAX_READERS", 2)

    async def go() -> None:
        hub = LiveHub()
        readers = [hub.subscribe()[1], hub.subscribe()[1]]
        with pytest.raises(Busy):
            hub.subscribe()
        hub.close()
        assert [await r.next(1.0) for r in readers] == [None, None]
        assert await hub.subscribe()[1].next(1.0) is None  # a stopping console streams nothing

    run(go())


def test_one_user_holds_at_most_six_readers() -> None:
    async def go() -> None:
        hub = LiveHub()
        veras = [hub.subscribe("vera")[1] for _ in range(livehub.MAX_PER_USER)]
        with pytest.raises(Busy) as busy:
            hub.subscribe("vera")
        assert busy.value.mine is True
        anna = hub.subscribe("anna")[1]  # the others still get the page
        assert hub.readers == livehub.MAX_PER_USER + 1 and anna.owner == "anna"
        hub.unsubscribe(veras[0])
        assert hub.subscribe("vera")[1].owner == "vera"

    run(go())


# -- the page and its API ----------------------------------------------------------------------


def test_roles_anonymous_and_viewer_up(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            page = await http.get("/live")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/live"
            for path in ("/api/live", "/api/live/events"):
                answer = await http.get(path)
                assert answer.status_code == 401 and answer.json() == {"error": "log in first"}
        for name in ("vera", "lena", "anna"):
            async with client(app) as http:
                await log_in(http, name)
                page = await http.get("/live")
                assert page.status_code == 200 and 'id="live-calls"' in page.text
                assert page.headers["cache-control"] == "no-store"
                api = await http.get("/api/live")
                assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
                assert set(api.json()) == {"calls", "notifications", "sources"}

    run(go())


def test_the_page_shows_the_snapshot_escaped_and_in_the_menu(console: tuple[Any, Clock]) -> None:
    app, _ = console
    hub: LiveHub = app.state.live
    hub.manager_call("", {**state("X1"), "caller_name": "<script>alert(1)</script>"})
    note = {"id": 3, "event_id": "incoming:X1", "kind": "incoming", "channel": "vk",
            "recipient": "42", "state": "pending", "at": T0, "at_text": "01:13:20"}  # fmt: skip
    hub.delivery(note)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            page = (await http.get("/live", headers={"accept-language": "en"})).text
        assert '<a href="/live"' in page  # the menu entry, for a viewer
        row = re.search(r'<tr data-call="X1" data-state="ringing" data-source="ami"[^>]*>', page)
        assert row is not None and 'data-caller="+79160000001"' in row[0]
        assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert '<li data-delivery="3" data-channel="vk" data-kind="incoming"' in page
        assert '<script src="/static/live.js" defer></script>' in page
        assert '<meta http-equiv="refresh" content="10">' in page  # inside <noscript>
        words = json.loads(re.search(r"data-words='([^']*)'", page)[1])  # type: ignore[index]
        assert words["ringing"] == "ringing" and "{caller}" in words["new_call"]

    run(go())


async def _stream(http: httpx.AsyncClient, hub: LiveHub, during: Any = None) -> httpx.Response:
    """GET the event stream, do ``during`` once it is open, then end it (close the hub):
    httpx's ASGI transport hands the response over only once its body is complete."""
    answer = asyncio.ensure_future(http.get("/api/live/events"))
    await until(lambda: hub.readers == 1)
    if during is not None:
        await during()
    hub.close()
    return await answer


def test_the_event_stream_is_framed_for_event_source(console: tuple[Any, Clock]) -> None:
    app, _ = console
    hub: LiveHub = app.state.live
    hub.call_event(event(INCOMING, "S1"))

    async def changes() -> None:
        hub.call_event(event(INCOMING, "S2", caller="+7 (916) 000"))
        hub.call_event(event(MISSED, "S1"))

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            answer = await _stream(http, hub, changes)
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-accel-buffering"] == "no"
        assert answer.text.startswith("retry: 2000\n\nevent: snapshot\ndata: {")
        found = parse_sse(answer.text)
        assert [kind for kind, _ in found] == ["retry", "snapshot", "call", "gone"]
        assert [c["key"] for c in found[1][1]["calls"]] == ["S1"]
        assert found[2][1]["caller"] == "+7 (916) 000" and found[2][1]["state"] == CAME_IN
        assert found[3][1] == {"key": "S1"}
        assert hub.readers == 0

    run(go())


def test_heartbeats_and_a_removed_user_ends_the_stream(console: tuple[Any, Clock],
                                                       monkeypatch) -> None:  # fmt: skip
    app, _ = console
    app.state.live_heartbeat = 0.01
    looked: list[int] = []
    real = live_page.current_user

    def counted(request: Any) -> Any:
        looked.append(1)
        return real(request)

    monkeypatch.setattr(live_page, "current_user", counted)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            looked.clear()  # the login's and the request's own look are not heartbeats
            answer = asyncio.ensure_future(http.get("/api/live/events"))
            await until(lambda: len(looked) >= 3)
            app.state.users.remove("vera")
            body = (await asyncio.wait_for(answer, 10)).text
        kinds = [kind for kind, _ in parse_sse(body)]
        assert kinds[:2] == ["retry", "snapshot"] and "comment" in kinds
        assert app.state.live.readers == 0

    run(go())


def test_a_removed_user_is_cut_off_on_a_busy_pbx_too(console: tuple[Any, Clock]) -> None:
    """Calls change more often than the heartbeat: no wait ever times out, and the user must
    still be looked up again every heartbeat (it once was only on a timeout)."""
    app, _ = console
    app.state.live_heartbeat = 0.5  # calls come before it, on a loaded machine too
    hub: LiveHub = app.state.live

    async def go() -> tuple[str, int]:
        async with client(app) as http:
            await log_in(http, "vera")
            answer = asyncio.ensure_future(http.get("/api/live/events"))
            await until(lambda: hub.readers == 1)
            app.state.users.remove("vera")
            loop = asyncio.get_running_loop()
            deadline, sent = loop.time() + 5.0, 0
            while not answer.done() and loop.time() < deadline:  # a change every 20 ms
                hub.manager_call("", state(f"B{sent}", caller=f"+7916{sent:07d}"))
                sent += 1
                await asyncio.sleep(0.02)
            assert answer.done(), "the removed user's stream went on"
            return (await answer).text, sent

    body, sent = run(go())
    calls = [data for kind, data in parse_sse(body) if kind == "call"]
    assert 0 < len(calls) <= sent < 100  # it ended about a heartbeat in, the calls still coming
    assert hub.readers == 0


def test_one_viewer_cannot_lock_the_page_for_everyone(console: tuple[Any, Clock]) -> None:
    app, _ = console
    hub: LiveHub = app.state.live
    mine = livehub.MAX_PER_USER

    async def go() -> None:
        async with client(app) as vera, client(app) as anna:
            await log_in(vera, "vera")
            await log_in(anna, "anna")
            streams = [asyncio.ensure_future(vera.get("/api/live/events")) for _ in range(mine)]
            await until(lambda: hub.readers == mine)
            refused = await vera.get("/api/live/events")
            assert refused.status_code == 503 and refused.json() == {
                "error": f"you have {mine} live pages open; close one and reload"
            }
            other = asyncio.ensure_future(anna.get("/api/live/events"))
            await until(lambda: hub.readers == mine + 1)  # anna still gets the page
            hub.close()
            answers = await asyncio.gather(*streams, other)
        assert [a.status_code for a in answers] == [200] * (mine + 1)

    run(go())


def test_too_many_live_pages_is_503(console: tuple[Any, Clock], monkeypatch) -> None:
    monkeypatch.setattr(livehub, "MAX_READERS", 0)
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            answer = await http.get("/api/live/events")
        assert answer.status_code == 503 and "too many live pages" in answer.json()["error"]

    run(go())


# -- the feeds ---------------------------------------------------------------------------------


def test_the_outbox_follower_reads_what_is_new_and_never_makes_the_outbox(tmp_path) -> None:
    ns = NotifySettings(outbox=tmp_path / "outbox.sqlite3")
    follower = livefeed.OutboxFollower(ns, ttl=600, keep=5)
    assert follower.poll(T0) == ("absent", [], [])
    assert not ns.outbox_path().exists()
    box = Outbox.open(ns.outbox_path())
    try:
        box.enqueue(event(INCOMING, "F1", at=T0 - 700))  # before the ttl: not a call now
        box.enqueue(event(INCOMING, "F2", at=T0 - 10))
        box.plan("incoming:F2", [("vk", "42"), ("webhook", "https://crm.example.org/h?k=s3cr3t")],
                 T0)  # fmt: skip
        state_, events, rows = follower.poll(T0)
        assert state_ == "following" and [e.event_id for e in events] == ["incoming:F2"]
        assert [(r.channel, r.kind) for r in rows] == [("webhook", "incoming"), ("vk", "incoming")]
        assert follower.poll(T0 + 1) == ("following", [], [])  # nothing new, nothing twice
        box.enqueue(event(MISSED, "F2", at=T0 + 2))
        box.plan("missed:F2", [("vk", "42")], T0 + 2)
        _, events, rows = follower.poll(T0 + 3)
        assert [e.event_id for e in events] == ["missed:F2"] and len(rows) == 1
        (webhook,) = [r for r in box.recent(5) if r.channel == "webhook"]
        shown = livefeed.note(LiveHub(), webhook)
        assert shown["recipient"] == "https://crm.example.org/***?***"
        assert shown["kind"] == "incoming" and shown["state"] == "pending"
    finally:
        follower.close()
        box.close()


def test_inside_serve_a_queued_event_shows_at_once(tmp_path, monkeypatch) -> None:
    """The in-process feed is woken by the commit itself, not by its once-a-second look."""
    monkeypatch.setattr(livefeed, "POLL", 60.0)
    settings = Settings({"notify": {"outbox": str(tmp_path / "outbox.sqlite3")}})

    async def go() -> None:
        hub, stop = LiveHub(), asyncio.Event()
        now = time.time()
        accept(settings, event(INCOMING, "W0", at=now))  # the outbox exists: the first look
        feed = asyncio.ensure_future(livefeed.in_process(hub, settings, stop, None))
        await until(lambda: "W0" in hub.calls)
        _, reader = hub.subscribe()
        new = event(INCOMING, "W1", at=now + 1, caller="+79169999999")
        await asyncio.to_thread(accept, settings, new)
        kind, data = await asyncio.wait_for(reader.queue.get(), 5)  # type: ignore[misc]
        assert kind == "call" and data["key"] == "W1" and data["caller"] == "+79169999999"
        stop.set()
        await feed

    try:
        run(go())
    finally:
        close_outboxes()


def test_the_managers_calls_come_from_its_live_socket(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(livefeed, "RETRY_FIRST", 0.02)
    path = tmp_path / "live.sock"

    def call(status: str) -> CallState:
        return CallState("M1", "+79160000002", "", "101", "from-trunk", "PJSIP/trunk-1",
                         status, T0, answered_by="102" if status == TALKING else "")  # fmt: skip

    async def go() -> None:
        hub, stop, calls = LiveHub(), asyncio.Event(), AmiHub()
        feed = asyncio.ensure_future(livefeed.follow_socket(hub, "", path, stop))
        await until(lambda: hub.sources.get("ami:") == "waiting")  # no pbxgate serve yet
        calls.publish(call(RINGING))
        server = asyncio.ensure_future(serve_socket(calls, path, stop))
        await until(lambda: hub.sources.get("ami:") == "connected")
        assert hub.snapshot()["calls"][0]["key"] == "M1"
        calls.publish(call(TALKING))
        await until(lambda: hub.calls["M1"].state == TALKING)
        assert hub.calls["M1"].answered_by == "102"
        calls.publish(call("ended"))
        await until(lambda: not hub.calls)
        stop.set()
        await asyncio.gather(feed, server)

    run(go())


def test_inside_serve_the_managers_calls_come_from_its_hub() -> None:
    async def go() -> None:
        hub, stop, calls = LiveHub(), asyncio.Event(), AmiHub(backlog=2)
        calls.publish(CallState("H1", "+7916", "", "101", "c", "ch", RINGING, T0))
        feed = asyncio.ensure_future(livefeed.follow_hub(hub, "", calls, stop))
        await until(lambda: "H1" in hub.calls)
        await until(lambda: calls.subscribers == 1)
        for i in range(5):  # more than its backlog at once: dropped, it subscribes again
            calls.publish(CallState(f"H{i + 2}", "+7916", "", "101", "c", "ch", RINGING, T0))
        await until(lambda: len(hub.calls) == 6)
        stop.set()
        await feed

    run(go())


# -- pbxgate serve with [web] enabled ----------------------------------------------------------


async def _events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    kind = ""
    async for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


async def _next(events: AsyncIterator[tuple[str, Any]], kind: str) -> Any:
    async for found, data in events:
        if found == kind:
            return data
    raise AssertionError(f"the stream ended before a {kind} event")


def test_serve_with_the_console_shows_a_fastagi_call_live(tmp_path, monkeypatch) -> None:
    shown = threading.Event()
    vk = FakeVkServer(0, echo=lambda _: shown.set()).start()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[web]\nenabled = true\nlisten = "127.0.0.1:0"\ndatabase = "{tmp_path}/web.sqlite3"\n'
        '[notify.vk]\nenabled = true\ntoken = "test-token-123"\nrecipients = ["42"]\n'
        f'api_base = "{vk.base_url}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    with UserStore(tmp_path / "web.sqlite3") as users:
        users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    proc = subprocess.Popen([str(PBXGATE), "serve", "--listen", "127.0.0.1:0"],
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stderr is not None
        lines = ""  # other pages may warn first (a CDR store not made yet)
        while "web console on" not in lines and len(lines.splitlines()) < 20:
            lines += proc.stderr.readline().decode()
        agi = re.search(r"FastAGI on 127\.0\.0\.1:(\d+)", lines)
        web = re.search(r"web console on (http://\S+)/", lines)
        assert agi and web, lines
        run(_watch(int(agi[1]), web[1], proc))
        assert proc.wait(timeout=30) == 0
        assert b"test-token-123" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
        vk.stop()
    assert len(vk.state.shown) == 1


async def _watch(agi_port: int, base: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=20) as http:
        assert (await log_in(http, "vera")).status_code == 303
        async with http.stream("GET", "/api/live/events") as answer:
            assert answer.status_code == 200
            assert answer.headers["cache-control"] == "no-store"
            events = _events(answer.aiter_lines())
            assert (await _next(events, "snapshot"))["calls"] == []
            env = environment("notify", callerid="+79161112233", extension="74950001122")
            session = asyncio.ensure_future(
                fake_asterisk(agi_port, env, default_responder("E2E.7"))
            )
            call = await asyncio.wait_for(_next(events, "call"), 10)
            assert call["key"] == "E2E.7" and call["caller"] == "+79161112233"
            assert call["called"] == "74950001122" and call["state"] == CAME_IN
            assert (await session)[-1] == b'SET VARIABLE "PBXGATE_EVENT" "queued"\n'
            note = await asyncio.wait_for(_next(events, "notification"), 10)
            assert note["channel"] == "vk" and note["recipient"] == "42"
            assert note["event_id"] == "incoming:E2E.7"
            proc.send_signal(signal.SIGTERM)  # a page still open must not hold the stop up
            rest = [item async for item in events]
            assert all(kind != "snapshot" for kind, _ in rest)


def test_a_console_port_in_use_is_one_line(tmp_path, capsys) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "config.toml"
        config.write_text(f'[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
        assert main(["--config", str(config), "serve", "--listen", "127.0.0.1:0"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: the web console cannot listen on 127.0.0.1:{port}: ")


def test_pbxgate_web_alone_follows_the_outbox_and_stops_with_a_page_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    outbox = tmp_path / "outbox.sqlite3"
    config = tmp_path / "config.toml"
    text = f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n[notify]\noutbox = "{outbox}"\n'
    config.write_text(text, encoding="utf-8")
    monkeypatch.setenv("PBXGATE_CONFIG", str(config))
    with UserStore(tmp_path / "web.sqlite3") as users:
        users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    box = Outbox.open(outbox)
    box.enqueue(event(INCOMING, "P1", at=time.time()))
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    proc = subprocess.Popen([str(PBXGATE), "web", "--listen", f"127.0.0.1:{port}"],
                            stderr=subprocess.DEVNULL)  # fmt: skip

    async def watch() -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as http:
            await _until_up(http)
            await log_in(http, "vera")
            async with http.stream("GET", "/api/live/events") as answer:
                events = _events(answer.aiter_lines())
                snapshot = await _next(events, "snapshot")
                if not snapshot["calls"]:  # the first look at the outbox may come after it
                    assert (await asyncio.wait_for(_next(events, "call"), 10))["key"] == "P1"
                else:
                    assert [c["key"] for c in snapshot["calls"]] == ["P1"]
                box.enqueue(event(MISSED, "P1", at=time.time()))
                assert await asyncio.wait_for(_next(events, "gone"), 10) == {"key": "P1"}
                proc.send_signal(signal.SIGTERM)
                assert [kind async for kind, _ in events] == []  # the stream ends at once

    try:
        run(watch())
        # uvicorn hands the SIGTERM it caught back to the default handler once it has stopped
        assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        box.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _until_up(http: httpx.AsyncClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            await http.get("/health")
            return
        except httpx.TransportError:
            assert loop.time() < deadline, "pbxgate web did not start"
            await asyncio.sleep(0.1)
