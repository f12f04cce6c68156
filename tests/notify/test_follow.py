"""The message that follows its call: one message per call and recipient, sent at the first
state and edited to the later ones, in order, coalesced, and never resent once its recipient
deleted it or the channel stopped accepting edits."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from pbxgate.config import Secret
from pbxgate.notify.channels.base import Dead, Gone, Message, Outcome, Retry, Sent
from pbxgate.notify.channels.telegram import TelegramChannel
from pbxgate.notify.channels.vk import VkChannel
from pbxgate.notify.channels.vk import classify as vk_classify
from pbxgate.notify.events import CallEvent
from pbxgate.notify.fakevk import FakeVkServer, FakeVkState
from pbxgate.notify.outbox import Outbox, Plan, State
from pbxgate.notify.retry import RetryPolicy
from pbxgate.notify.routing import Route, Router
from pbxgate.notify.settings import NotifySettings, TelegramSettings, VkSettings
from pbxgate.notify.templates import Renderer, talk_text
from pbxgate.notify.worker import Worker

from .conftest import Place
from .helpers import make_event
from .test_worker import Clock

CALL = "1700000000.1"


def stages(n: int = 1) -> dict[str, CallEvent]:
    """The events of one answered call and of one missed call (the same linkedid)."""
    return {
        "incoming": make_event(n),
        "answered": make_event(n, kind="answered", answered_by="102",
                               answered_name="Анна Смирнова", occurred_at=1700000010.0),
        "ended": make_event(n, kind="ended", answered_by="102", answered_name="Анна Смирнова",
                            talk_seconds=151.0, occurred_at=1700000161.0),
        "missed": make_event(n, kind="missed", dialstatus="NOANSWER"),
    }  # fmt: skip


def plan(box: Outbox, event: CallEvent, targets: list[tuple[str, str]], now: float) -> int:
    box.enqueue(event)
    return box.plan_many(
        [Plan(event.event_id, targets, thread=event.call_id, stage=event.stage)],
        now,
        edit_delay=1.0,
    )


# -- the outbox's thread rules --------------------------------------------------------------


def test_an_edit_waits_for_the_send_before_it_and_carries_its_message_id(
    place: Place,
) -> None:
    box = place.open()
    ev = stages()
    assert plan(box, ev["incoming"], [("vk", "1")], now=100.0) == 1
    (first,) = box.claim(100.0, lease=60.0, limit=10)
    assert (first.thread, first.ref, first.shown_at) == (CALL, "", None)
    assert plan(box, ev["answered"], [("vk", "1")], now=100.2) == 1
    assert box.claim(100.5, 60.0, 10) == []  # not due: it waits for the call's next change
    assert box.claim(102.0, 60.0, 10) == []  # due, but the send is still in flight
    assert box.mark_sent(first.id, 102.5, "VK message id 77", ref="77")
    (edit,) = box.claim(103.0, 60.0, 10)
    assert (edit.event.kind, edit.ref, edit.shown_at) == ("answered", "77", 102.5)
    assert box.mark_sent(edit.id, 103.1, "VK edited the message", ref="")
    answered = ev["answered"].stage
    assert box.thread(CALL) == [("vk", "1", answered, "77", 102.5, "")]  # the first id is kept


def test_a_later_state_supersedes_the_pending_one_and_an_earlier_one_is_never_planned(
    place: Place,
) -> None:
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    (first,) = box.claim(100.0, 60.0, 10)
    box.mark_sent(first.id, 100.1, ref="77")
    plan(box, ev["answered"], [("vk", "1")], now=100.2)
    plan(box, ev["ended"], [("vk", "1")], now=100.6)  # within the answered edit's delay
    assert plan(box, ev["incoming"], [("vk", "1")], now=100.7) == 0  # a late duplicate
    assert plan(box, ev["missed"], [("vk", "1")], now=100.8) == 0  # a final state is final
    (edit,) = box.claim(102.0, 60.0, 10)
    assert edit.event.kind == "ended"
    states = dict(
        box._query("SELECT e.kind, d.state FROM deliveries d JOIN events e USING (event_id)")
    )
    assert states == {
        "incoming": "sent",
        "answered": State.SUPERSEDED.value,
        "ended": "in-flight",
    }


def test_a_first_send_never_tried_is_replaced_by_the_latest_state(place: Place) -> None:
    """A first message that has not gone yet is replaced by the call's latest state, sent
    without waiting: nothing was shown, so there is nothing to coalesce with."""
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    plan(box, ev["missed"], [("vk", "1")], now=100.1)
    (only,) = box.claim(100.1, 60.0, 10)
    assert (only.event.kind, only.ref, only.shown_at) == ("missed", "", None)


def test_a_first_send_that_was_tried_goes_again_before_the_next_state(place: Place) -> None:
    """VK timed out on the first message (it may have shown it): it is sent again under its
    own key (VK shows it once) and the later state edits it; never a second message."""
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    (first,) = box.claim(100.0, 60.0, 10)
    box.mark_retry(first.id, 100.1, next_at=103.0, error="no answer from VK in time")
    plan(box, ev["missed"], [("vk", "1")], now=101.0)
    assert box.claim(102.5, 60.0, 10) == []  # the missed state is due, the first is not yet
    (again,) = box.claim(103.0, 60.0, 10)
    assert (again.id, again.number, again.attempts) == (first.id, first.number, 2)
    box.mark_sent(again.id, 103.2, ref="77")
    (edit,) = box.claim(103.3, 60.0, 10)
    assert (edit.event.kind, edit.ref) == ("missed", "77")


def test_a_revived_first_send_is_not_replaced_by_the_next_state(place: Place) -> None:
    """The first message timed out until it was a dead letter (VK may have shown it); `notify
    retry` revives it with a fresh attempt count. It still goes again under its own key, and
    the next state edits it: a new message under another key would be shown twice."""
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    (first,) = box.claim(100.0, 60.0, 10)
    box.mark_dead(first.id, 110.0, "gave up after 10 attempts: no answer from VK in time")
    assert box.revive(200.0) == 1
    plan(box, ev["missed"], [("vk", "1")], now=200.5)
    (again,) = box.claim(201.0, 60.0, 10)
    assert (again.id, again.number, again.event.kind) == (first.id, first.number, "incoming")
    box.mark_sent(again.id, 201.2, ref="77")
    (edit,) = box.claim(202.0, 60.0, 10)
    assert (edit.event.kind, edit.ref) == ("missed", "77")


def test_a_released_first_send_goes_before_a_later_state_due_earlier(place: Place) -> None:
    """A node died while sending the first state; the next state came due while it was in
    flight. Released at the node's restart, the first goes first (it may have reached VK);
    the next one then edits it."""
    box = place.open()
    box.acquire_worker_lock()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    box.claim(100.0, 60.0, 10)
    plan(box, ev["missed"], [("vk", "1")], now=100.5)
    assert box.release_inflight(110.0) == 1  # due at 110, after the missed state (101.5)
    (again,) = box.claim(110.0, 60.0, 10)
    assert again.event.kind == "incoming"
    box.mark_sent(again.id, 110.1, ref="77")
    (edit,) = box.claim(110.2, 60.0, 10)
    assert (edit.event.kind, edit.ref) == ("missed", "77")


def test_a_call_reaches_everyone_already_shown_its_message(place: Place) -> None:
    """A route for incoming calls alone still edits its message when the call is answered."""
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1"), ("telegram", "5")], now=100.0)
    assert plan(box, ev["answered"], [], now=101.0) == 2
    answered = ev["answered"].stage
    assert [t[:3] for t in box.thread(CALL)] == [("telegram", "5", answered), ("vk", "1", answered)]


def test_a_closed_message_is_not_edited_again(place: Place) -> None:
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    (first,) = box.claim(100.0, 60.0, 10)
    box.mark_sent(first.id, 100.1, ref="77")
    plan(box, ev["answered"], [("vk", "1")], now=101.0)
    (edit,) = box.claim(103.0, 60.0, 10)
    assert box.mark_gone(edit.id, 103.1, "not edited: VK error 100")
    assert plan(box, ev["ended"], [("vk", "1")], now=104.0) == 0
    assert box.claim(200.0, 60.0, 10) == []
    (row,) = box.thread(CALL)
    assert row[1:] == ("1", ev["ended"].stage, "77", 100.1, "not edited: VK error 100")


def test_an_expired_lease_is_taken_again_before_the_next_state(place: Place) -> None:
    """A worker died while sending the first state: it is sent again (same key) before the
    edit, never both at once."""
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=100.0)
    box.claim(100.0, lease=5.0, limit=10)
    plan(box, ev["answered"], [("vk", "1")], now=101.0)
    (again,) = box.claim(110.0, 5.0, 10)  # the lease ran out at 105
    assert again.event.kind == "incoming" and again.attempts == 2
    assert box.claim(111.0, 5.0, 10) == []


def test_an_outbox_of_an_earlier_release_gains_threads(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE events (event_id TEXT PRIMARY KEY, kind TEXT NOT NULL,
            payload TEXT NOT NULL, created_at REAL NOT NULL, planned INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE deliveries (id INTEGER PRIMARY KEY, event_id TEXT NOT NULL, channel TEXT
            NOT NULL, recipient TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL
            DEFAULT 0, next_attempt_at REAL NOT NULL, lease_until REAL, last_error TEXT NOT NULL
            DEFAULT '', updated_at REAL NOT NULL, UNIQUE (event_id, channel, recipient));
        """
    )
    event = make_event(9)
    db.execute(
        "INSERT INTO events VALUES (?, 'incoming', ?, 1.0, 1)", (event.event_id, event.to_json())
    )
    db.execute(
        "INSERT INTO deliveries (event_id, channel, recipient, state, next_attempt_at,"
        " updated_at) VALUES (?, 'vk', '1', 'pending', 0, 0)",
        (event.event_id,),
    )
    db.commit()
    db.close()
    box = Outbox.open(path)
    (old,) = box.claim(10.0, 60.0, 10)
    assert (old.event, old.thread) == (event, "")
    assert plan(box, stages()["incoming"], [("vk", "1")], now=11.0) == 1


# -- the worker -----------------------------------------------------------------------------


class EditingChannel:
    """Records sends and edits; answers from a script of outcomes (default: shown)."""

    name = "vk"

    def __init__(self, *, edits: bool = True, window: float | None = None) -> None:
        self.log: list[tuple[str, str, str]] = []  # (what, recipient, first line)
        self.edit_outcomes: list[Outcome] = []
        self.send_outcomes: list[Outcome] = []
        self.edit_window = window
        self.next_id = 100
        if not edits:
            self.edit = None  # type: ignore[assignment]

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        self.log.append(("send", recipient, message.text.splitlines()[0]))
        if self.send_outcomes:
            return self.send_outcomes.pop(0)
        self.next_id += 1
        return Sent("shown", ref=str(self.next_id))

    async def edit(self, message: Message, recipient: str, ref: str, key: str) -> Outcome:
        self.log.append((f"edit {ref}", recipient, message.text.splitlines()[0]))
        return self.edit_outcomes.pop(0) if self.edit_outcomes else Sent("edited")

    async def aclose(self) -> None:
        return None


def follow_worker(
    tmp_path: Path, channels: dict[str, object], *, follow: bool = True
) -> tuple[Worker, Outbox, Clock]:
    box = Outbox.open(tmp_path / "o.sqlite3")
    clock = Clock()
    worker = Worker(
        box,
        channels,  # type: ignore[arg-type]
        Router([], {name: ["1"] for name in channels}, None),
        Renderer(),
        policy=RetryPolicy(initial=10.0, maximum=100.0, max_attempts=3),
        clock=clock,
        rng=random.Random(7),
        follow=follow,
        edit_delay=1.0,
    )
    return worker, box, clock


def step(worker: Worker, clock: Clock, event: CallEvent | None, advance: float) -> None:
    if event is not None:
        worker.outbox.enqueue(event)
    asyncio.run(worker.run_once())
    clock.now += advance


def each_shown(worker: Worker, clock: Clock, events: list[CallEvent]) -> None:
    """Each event queued and delivered before the next comes."""
    for event in events:
        step(worker, clock, event, 2.0)
        step(worker, clock, None, 0.0)


def test_one_message_follows_the_call_to_its_end(tmp_path: Path) -> None:
    vk, mail = EditingChannel(), EditingChannel(edits=False)
    worker, _, clock = follow_worker(tmp_path, {"vk": vk, "email": mail})
    ev = stages()
    step(worker, clock, ev["incoming"], 5.0)
    step(worker, clock, ev["answered"], 2.0)
    step(worker, clock, None, 150.0)
    step(worker, clock, ev["ended"], 2.0)
    step(worker, clock, None, 0.0)
    assert vk.log == [
        ("send", "1", "Сейчас поступит звонок с номера: +79161234567"),
        ("edit 101", "1", "+79161234567 — разговаривает с Анна Смирнова (102)"),
        ("edit 101", "1", "+79161234567 — разговор 2:31 с Анна Смирнова (102)"),
    ]
    assert mail.log == [("send", "1", "+79161234567 — разговор 2:31 с Анна Смирнова (102)")]


def test_a_call_answered_within_the_edit_delay_costs_one_edit(tmp_path: Path) -> None:
    vk = EditingChannel()
    worker, _, clock = follow_worker(tmp_path, {"vk": vk})
    ev = stages()
    step(worker, clock, ev["incoming"], 0.3)
    step(worker, clock, ev["answered"], 0.4)
    step(worker, clock, ev["ended"], 2.0)
    step(worker, clock, None, 0.0)
    assert [what for what, _, _ in vk.log] == ["send", "edit 101"]
    assert vk.log[-1][2].startswith("+79161234567 — разговор 2:31")


def test_a_deleted_message_is_never_resent(tmp_path: Path) -> None:
    vk = EditingChannel()
    vk.edit_outcomes = [Gone("not edited: VK error 100: deleted")]
    worker, box, clock = follow_worker(tmp_path, {"vk": vk})
    ev = stages()
    step(worker, clock, ev["incoming"], 5.0)
    step(worker, clock, ev["answered"], 5.0)
    step(worker, clock, ev["ended"], 5.0)
    step(worker, clock, None, 0.0)
    assert [what for what, _, _ in vk.log] == ["send", "edit 101"]
    assert box.thread(CALL)[0][5] == "not edited: VK error 100: deleted"
    assert [s.dead for s in box.status()] == [0]


def test_past_the_edit_window_the_message_stays_and_nothing_is_sent(tmp_path: Path) -> None:
    vk = EditingChannel(window=24 * 3600.0)
    vk.edit_outcomes = [Retry("VK error 10")]
    worker, box, clock = follow_worker(tmp_path, {"vk": vk})
    ev = stages()
    step(worker, clock, ev["incoming"], 5.0)
    step(worker, clock, ev["missed"], 2.0)
    step(worker, clock, None, 25 * 3600.0)  # the edit fails; VK comes back a day later
    step(worker, clock, None, 0.0)
    assert [what for what, _, _ in vk.log] == ["send", "edit 101"]
    assert box.thread(CALL)[0][5] == "not edited: vk edits a message within 24 h"


def test_without_a_message_id_only_the_final_state_is_sent_again(tmp_path: Path) -> None:
    vk = EditingChannel()
    vk.send_outcomes = [Sent("VK message id 0", ref="")]  # a chat where VK gives no id
    worker, _, clock = follow_worker(tmp_path, {"vk": vk})
    ev = stages()
    for event in (ev["incoming"], ev["answered"], ev["ended"]):
        step(worker, clock, event, 5.0)
    step(worker, clock, None, 0.0)
    assert [what for what, _, _ in vk.log] == ["send", "send"]
    assert vk.log[-1][2].startswith("+79161234567 — разговор")


def test_without_follow_each_notice_is_its_own_message(tmp_path: Path) -> None:
    vk = EditingChannel()
    worker, _, clock = follow_worker(tmp_path, {"vk": vk}, follow=False)
    ev = stages()
    for event in (ev["incoming"], ev["answered"], ev["ended"]):
        step(worker, clock, event, 5.0)
    step(worker, clock, make_event(2, kind="missed"), 5.0)
    step(worker, clock, None, 0.0)
    assert [(what, line.split(":")[0]) for what, _, line in vk.log] == [
        ("send", "Сейчас поступит звонок с номера"),
        ("send", "Пропущенный звонок с номера"),
    ]


def test_a_route_for_missed_calls_alone_starts_its_message_at_the_miss(tmp_path: Path) -> None:
    vk = EditingChannel()
    box = Outbox.open(tmp_path / "o.sqlite3")
    clock = Clock()
    routes = [
        Route(channels=("vk",), recipients=("boss",), kinds=frozenset({"missed"})),
        Route(channels=("vk",), recipients=("desk",), kinds=frozenset({"incoming"})),
    ]
    worker = Worker(box, {"vk": vk}, Router(routes, {"vk": ["desk", "boss"]}, None), Renderer(),
                    clock=clock, follow=True, edit_delay=1.0)  # fmt: skip
    ev = stages()
    step(worker, clock, ev["incoming"], 5.0)
    step(worker, clock, ev["missed"], 5.0)
    step(worker, clock, None, 0.0)
    assert sorted((what, r) for what, r, _ in vk.log) == [
        ("edit 101", "desk"),
        ("send", "boss"),
        ("send", "desk"),
    ]


# -- the channels ---------------------------------------------------------------------------


@pytest.fixture
def fake_vk() -> FakeVkServer:
    server = FakeVkServer(state=FakeVkState(rate=1000)).start()
    yield server  # type: ignore[misc]
    server.stop()


def vk_channel(server: FakeVkServer) -> VkChannel:
    settings = VkSettings(enabled=True, token=Secret("vk-token"), api_base=server.base_url,
                          rate_limit=1000)  # fmt: skip
    return VkChannel(settings)


def message(kind: str) -> Message:
    return Renderer().render(stages()[kind])


def test_vk_sends_then_edits_the_same_message(fake_vk: FakeVkServer) -> None:
    async def go() -> tuple[Outcome, Outcome]:
        ch = vk_channel(fake_vk)
        try:
            sent = await ch.send(message("incoming"), "1", "k1")
            assert isinstance(sent, Sent)
            return sent, await ch.edit(message("ended"), "1", sent.ref, "k2")
        finally:
            await ch.aclose()

    sent, edited = asyncio.run(go())
    assert sent == Sent("VK message id 1", ref="1")
    assert edited == Sent("VK edited the message")
    (shown,) = fake_vk.state.shown
    assert shown.message.startswith("+79161234567 — разговор 2:31")
    assert shown.edits == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [(lambda s: s.delete(1), 100), (lambda s: setattr(s, "edit_window", 0.0), 909)],
)
def test_vk_edit_of_a_deleted_or_old_message_is_gone(fake_vk: FakeVkServer, setup, code) -> None:  # type: ignore[no-untyped-def]
    async def go() -> Outcome:
        ch = vk_channel(fake_vk)
        try:
            assert isinstance(await ch.send(message("incoming"), "1", "k1"), Sent)
            with fake_vk.state.lock:
                setup(fake_vk.state)
            return await ch.edit(message("missed"), "1", "1", "k2")
        finally:
            await ch.aclose()

    outcome = asyncio.run(go())
    assert isinstance(outcome, Gone) and f"VK error {code}" in outcome.reason
    assert fake_vk.state.shown[0].message.startswith("Сейчас поступит звонок")


def test_vk_edit_errors_sorted() -> None:
    def err(code: int) -> dict[str, object]:
        return {"error": {"error_code": code, "error_msg": "x"}}

    assert isinstance(vk_classify(err(15), editing=True), Gone)
    assert isinstance(vk_classify(err(6), editing=True), Retry)
    assert isinstance(vk_classify(err(5), editing=True), Dead)  # the token: the admin's job
    assert isinstance(vk_classify(err(15)), Dead)  # a send: nothing was shown
    assert vk_classify({"response": 0}) == Sent("VK message id 0", ref="")
    # error 15 with a subcode of the token's (reference/vk.md): the admin's, not a deleted message
    for subcode in (1133, 1134):
        denied = {"error": {"error_code": 15, "error_subcode": subcode, "error_msg": "x"}}
        outcome = vk_classify(denied, editing=True)
        assert isinstance(outcome, Dead)
        assert outcome.reason == "VK error 15: this token may not call messages.edit [VK: x]"


def test_vk_edits_share_the_send_rate_limit(fake_vk: FakeVkServer) -> None:
    """Twenty edits and sends in a burst, at a limit of 5 a second: VK never says error 6."""
    fake_vk.state.rate = 5

    async def go() -> list[Outcome]:
        settings = VkSettings(enabled=True, token=Secret("vk-token"),
                              api_base=fake_vk.base_url, rate_limit=5)  # fmt: skip
        ch = VkChannel(settings)
        try:
            first = await ch.send(message("incoming"), "1", "k0")
            assert isinstance(first, Sent)
            jobs = [ch.edit(message("answered"), "1", first.ref, f"e{i}") for i in range(6)]
            return list(await asyncio.gather(*jobs))
        finally:
            await ch.aclose()

    outcomes = asyncio.run(go())
    assert all(isinstance(o, Sent) for o in outcomes)
    assert fake_vk.state.rate_errors == 0


def test_telegram_edits_and_knows_a_deleted_message() -> None:
    seen: list[httpx.Request] = []
    answers = [
        httpx.Response(200, json={"ok": True, "result": {"message_id": 42}}),
        httpx.Response(400, json={"ok": False, "error_code": 400,
                                  "description": "Bad Request: message is not modified"}),
        httpx.Response(400, json={"ok": False, "error_code": 400,
                                  "description": "Bad Request: message to edit not found"}),
    ]  # fmt: skip

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return answers.pop(0)

    async def go() -> list[Outcome]:
        settings = TelegramSettings(enabled=True, token=Secret("1:tg"), rate_limit=1e6)
        ch = TelegramChannel(settings, transport=httpx.MockTransport(handler))
        try:
            sent = await ch.send(message("incoming"), "-100", "k")
            assert isinstance(sent, Sent)
            same = await ch.edit(message("incoming"), "-100", sent.ref, "k")
            gone = await ch.edit(message("missed"), "-100", sent.ref, "k")
            return [sent, same, gone]
        finally:
            await ch.aclose()

    sent, same, gone = asyncio.run(go())
    assert sent == Sent("Telegram message id 42", ref="42")
    assert isinstance(same, Sent) and isinstance(gone, Gone)
    assert seen[1].url.path == "/bot1:tg/editMessageText"
    body = httpx.Request("POST", "/", content=seen[2].content).read()
    assert b'"message_id":42' in body.replace(b" ", b"")


def test_templates_of_the_middle_and_the_end() -> None:
    r = Renderer()
    ev = stages()
    assert r.render(ev["answered"]).subject == "Разговор: +79161234567"
    assert r.render(ev["ended"]).text.splitlines()[0] == (
        "+79161234567 — разговор 2:31 с Анна Смирнова (102)"
    )
    recorded = make_event(1, kind="ended", answered_by="101", talk_seconds=151.0, recorded=True)
    assert r.render(recorded).text.splitlines()[0] == "+79161234567 — разговор 2:31 с 101, запись"
    nameless = make_event(1, kind="answered", answered_by="101")
    assert r.render(nameless).text.splitlines()[0] == "+79161234567 — разговаривает с 101"
    assert [talk_text(s) for s in (0, 59.6, 151, 3727)] == ["0:00", "1:00", "2:31", "1:02:07"]


@pytest.mark.parametrize(
    ("word", "ami", "follows"),
    [("auto", True, True), ("auto", False, False), ("true", False, True), ("off", True, False)],
)
def test_follow_setting(word: str, ami: bool, follows: bool) -> None:
    assert NotifySettings(follow=word).follows(ami) is follows


def test_follow_setting_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="auto, on or off"):
        NotifySettings(follow="sometimes")


# -- found in review ------------------------------------------------------------------------


def test_states_waiting_behind_a_retried_first_send_never_stall_the_outbox(place: Place) -> None:
    """VK is down: each call's first send waits for a retry, its final state behind it (due
    earlier). However many such calls, the first sends are still claimed when due, and
    the outbox does not report the blocked states as due (no busy loop)."""
    box = place.open()
    for n in range(40):
        ev = stages(n)
        plan(box, ev["incoming"], [("vk", "1")], now=100.0)
        (first,) = box.claim(100.0, 60.0, 1)
        box.mark_retry(first.id, 100.0, next_at=200.0, error="VK error 10", attempt=1)
        plan(box, ev["missed"], [("vk", "1")], now=100.5)
    assert box.claim(150.0, 60.0, 8) == []
    assert box.next_due() == 200.0
    assert not box.waiting_first_attempt()
    taken = box.claim(200.0, 60.0, 8)
    assert [d.event.kind for d in taken] == ["incoming"] * 8


def test_a_late_outcome_of_a_lost_lease_changes_nothing(place: Place) -> None:
    """A node's lease ran out and the delivery was taken again: the first taker's outcome,
    arriving late, no longer counts (the second one's does)."""
    box = place.open()
    plan(box, stages()["incoming"], [("vk", "1")], now=0.0)
    (first,) = box.claim(0.0, lease=5.0, limit=5)
    (again,) = box.claim(10.0, lease=5.0, limit=5)
    assert again.attempts == 2
    assert not box.mark_sent(first.id, 11.0, "late", ref="1", attempt=first.attempts)
    assert not box.mark_retry(first.id, 11.0, 20.0, "late", attempt=first.attempts)
    assert box.mark_sent(again.id, 11.0, "on time", ref="2", attempt=again.attempts)
    assert box.thread(CALL)[0][3] == "2"


def test_retrying_dead_letters_never_takes_a_message_back_in_time(place: Place) -> None:
    box = place.open()
    ev = stages()
    plan(box, ev["incoming"], [("vk", "1")], now=0.0)
    (first,) = box.claim(0.0, 60.0, 5)
    box.mark_dead(first.id, 0.1, "VK error 901", attempt=1)
    plan(box, ev["missed"], [("vk", "1")], now=1.0)
    (final,) = box.claim(1.0, 60.0, 5)
    box.mark_sent(final.id, 1.1, ref="77", attempt=1)
    other = make_event(5)
    box.enqueue(other)
    box.plan(other.event_id, [("vk", "1")], 2.0)
    (lone,) = box.claim(2.0, 60.0, 5)
    box.mark_dead(lone.id, 2.1, "VK error 901", attempt=1)
    assert box.revive(3.0) == 1  # the lone message, not the call's superseded first state
    (revived,) = box.claim(3.0, 60.0, 5)
    assert revived.id == lone.id


def test_the_worker_outlives_an_outbox_that_fails_for_a_moment(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from pbxgate.errors import DeliveryError

    vk = EditingChannel()
    worker, box, _ = follow_worker(tmp_path, {"vk": vk})
    box.enqueue(make_event(1))
    real_claim = box.claim
    calls = {"n": 0}

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise DeliveryError("outbox db: server closed the connection unexpectedly")
        return real_claim(*args, **kwargs)

    box.claim = flaky  # type: ignore[method-assign]

    async def main() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.ensure_future(worker.run(stop, wake, poll_interval=0.01))
        for _ in range(400):
            if vk.log:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await task

    asyncio.run(main())
    assert [what for what, _, _ in vk.log] == ["send"]
    assert "server closed the connection unexpectedly; trying again" in caplog.text


def test_a_missed_call_called_back_later_edits_its_message_but_mails_nothing_more(
    tmp_path: Path,
) -> None:
    vk, mail = EditingChannel(), EditingChannel(edits=False)
    worker, _, clock = follow_worker(tmp_path, {"vk": vk, "email": mail})
    ev = stages()
    back = make_event(1, kind="called_back", dialstatus="CALLBACK", answered_by="101",
                      answered_name="Анна Смирнова", occurred_at=1700000900.0)  # fmt: skip
    each_shown(worker, clock, [ev["incoming"], ev["missed"], back])
    assert [line for _, _, line in vk.log] == [
        "Сейчас поступит звонок с номера: +79161234567",
        "Пропущенный звонок с номера: +79161234567",
        "Пропущенный звонок с номера: +79161234567 — перезвонили: Анна Смирнова (101)",
    ]
    assert [line for _, _, line in mail.log] == ["Пропущенный звонок с номера: +79161234567"]
    got_through = replace(back, dialstatus="GOTTHROUGH", answered_by="102", answered_name="")
    assert Renderer().render(got_through).text.splitlines()[0] == (
        "Пропущенный звонок с номера: +79161234567 — дозвонился позже, ответил 102"
    )


def test_a_transfer_edits_the_message_to_the_new_phone(tmp_path: Path) -> None:
    vk = EditingChannel()
    worker, box, clock = follow_worker(tmp_path, {"vk": vk})
    ev = stages()
    moved = make_event(1, kind="answered", answered_by="103", answered_name="Борис Петров",
                       transfers=1, occurred_at=1700000050.0)  # fmt: skip
    assert (moved.event_id, moved.stage) == (f"answered:{CALL}#1", ev["answered"].stage + 1)
    ended = replace(ev["ended"], answered_by="103", answered_name="Борис Петров", transfers=1)
    each_shown(worker, clock, [ev["incoming"], ev["answered"], moved, ended])
    assert [line for _, _, line in vk.log] == [
        "Сейчас поступит звонок с номера: +79161234567",
        "+79161234567 — разговаривает с Анна Смирнова (102)",
        "+79161234567 — разговаривает с Борис Петров (103), после перевода",
        "+79161234567 — разговор 2:31 с Борис Петров (103), после перевода",
    ]
    each_shown(worker, clock, [replace(moved, transfers=2)])  # told after the call ended
    assert len(vk.log) == 4
    box.close()


def test_an_outbox_of_the_earlier_stage_scale_is_moved_to_the_new_once(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox.open(path)
    ev = stages()
    for event, now in ((ev["incoming"], 1.0), (ev["ended"], 2.0)):
        plan(box, event, [("vk", "1")], now=now)
    box.close()
    db = sqlite3.connect(path)  # as an outbox of the earlier release kept them: ended was 2
    db.execute("UPDATE messages SET stage = 2")
    db.execute("UPDATE deliveries SET stage = stage / 10")
    db.execute("DELETE FROM meta WHERE name = 'stages'")
    db.commit()
    db.close()
    for _ in range(2):  # once: a second open changes nothing
        box = Outbox.open(path)
        box.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT stage FROM messages").fetchall() == [(20,)]
    assert sorted(db.execute("SELECT stage FROM deliveries").fetchall()) == [(0,), (20,)]
    db.close()
    box = Outbox.open(path)  # a late transfer's answered (11) never follows the ended (20)
    late = make_event(1, kind="answered", answered_by="103", transfers=1)
    assert plan(box, late, [("vk", "1")], now=3.0) == 0
    box.close()
