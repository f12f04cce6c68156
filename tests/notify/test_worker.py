import asyncio
import random
from pathlib import Path

import pytest

from pbxgate.notify.channels.base import Dead, Message, Outcome, Retry, Sent
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.retry import RetryPolicy
from pbxgate.notify.routing import Router
from pbxgate.notify.templates import Renderer
from pbxgate.notify.worker import PLAN_BATCH, PLAN_BATCHES, Worker

from .helpers import make_event


class FakeChannel:
    name = "vk"

    def __init__(self, outcomes: list[Outcome | Exception]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, str, str]] = []
        self.called = asyncio.Event()

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        self.calls.append((message.text.splitlines()[0], recipient, key))
        self.called.set()
        outcome = self.outcomes.pop(0) if self.outcomes else Sent()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_worker(
    tmp_path: Path, channel: FakeChannel, recipients: list[str], max_attempts: int = 3
) -> tuple[Worker, Outbox, Clock]:
    box = Outbox.open(tmp_path / "o.sqlite3")
    clock = Clock()
    worker = Worker(
        box,
        {"vk": channel},
        Router([], {"vk": recipients}, None),
        Renderer(),
        policy=RetryPolicy(initial=10.0, maximum=100.0, max_attempts=max_attempts),
        clock=clock,
        rng=random.Random(7),
        lease=60.0,
    )
    return worker, box, clock


def test_policy_delay_is_jittered_and_capped() -> None:
    policy = RetryPolicy(initial=5.0, maximum=60.0, max_attempts=5)
    rng = random.Random(1)
    for attempts, nominal in [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0), (5, 60.0), (9, 60.0)]:
        for _ in range(50):
            assert nominal / 2 <= policy.delay(attempts, rng) < nominal
    assert policy.next_attempt_at(5, 0.0, rng) is None
    assert policy.next_attempt_at(1, 100.0, rng, at_least=300.0) == 400.0
    a, b = random.Random(3), random.Random(3)
    assert [policy.delay(2, a) for _ in range(5)] == [policy.delay(2, b) for _ in range(5)]
    # "retry for ever" as a very large budget: 2.0 ** 1024 would overflow
    forever = RetryPolicy(initial=5.0, maximum=60.0, max_attempts=100_000)
    assert 30.0 <= forever.delay(5_000, rng) < 60.0


def test_a_text_that_cannot_be_made_is_retried_and_the_worker_goes_on(tmp_path: Path) -> None:
    class Broken(Renderer):
        def render(self, event, extra=None):  # type: ignore[no-untyped-def]
            if event.uniqueid.endswith(".1"):
                raise RuntimeError("a bug in a text")
            return super().render(event, extra)

    ch = FakeChannel([])
    worker, box, _ = make_worker(tmp_path, ch, ["1"])
    worker.renderer = Broken()
    box.enqueue(make_event(1))
    box.enqueue(make_event(2))
    assert asyncio.run(worker.run_once()) == 2  # the worker is still there
    assert [recipient for _, recipient, _ in ch.calls] == ["1"]  # the other call's message
    (row,) = box.status()
    assert (row.sent, row.retrying) == (1, 1)
    assert row.last_error == "unexpected RuntimeError in channel vk"


def test_delivers_every_recipient_with_stable_keys(tmp_path: Path) -> None:
    ch = FakeChannel([])
    worker, box, _ = make_worker(tmp_path, ch, ["1", "chat:2"])
    box.enqueue(make_event(1))
    assert asyncio.run(worker.run_once()) == 2
    assert sorted(ch.calls) == [
        ("Сейчас поступит звонок с номера: +79161234567", "1", "incoming:1700000000.1|vk|1"),
        (
            "Сейчас поступит звонок с номера: +79161234567",
            "chat:2",
            "incoming:1700000000.1|vk|chat:2",
        ),
    ]
    assert box.status()[0].sent == 2
    assert asyncio.run(worker.run_once()) == 0


def test_retry_backs_off_then_dead_letter_keeps_reason(tmp_path: Path) -> None:
    ch = FakeChannel([Retry("VK error 10"), Retry("VK error 10"), Retry("VK error 10")])
    worker, box, clock = make_worker(tmp_path, ch, ["1"], max_attempts=3)
    box.enqueue(make_event(1))
    asyncio.run(worker.run_once())
    expected = RetryPolicy(10.0, 100.0, 3).delay(1, random.Random(7))
    assert box.next_due() == pytest.approx(clock.now + expected)
    clock.now += expected - 0.01
    assert asyncio.run(worker.run_once()) == 0  # not yet due
    clock.now = box.next_due() or 0
    asyncio.run(worker.run_once())
    clock.now = box.next_due() or 0
    asyncio.run(worker.run_once())
    (dead,) = box.dead_letters()
    assert dead.reason == "gave up after 3 attempts: VK error 10"
    assert len(ch.calls) == 3


def test_permanent_failure_and_channel_bug(tmp_path: Path) -> None:
    ch = FakeChannel([Dead("VK error 901: not allowed"), RuntimeError("boom")])
    worker, box, _ = make_worker(tmp_path, ch, ["1", "2"])
    box.enqueue(make_event(1))
    asyncio.run(worker.run_once())
    (st,) = box.status()
    assert (st.dead, st.pending) == (1, 1)
    assert box.dead_letters()[0].reason == "VK error 901: not allowed"


def test_disabled_channel_is_a_dead_letter(tmp_path: Path) -> None:
    worker, box, _ = make_worker(tmp_path, FakeChannel([]), ["1"])
    box.enqueue(make_event(1))
    worker.plan_new()
    worker.channels.clear()
    asyncio.run(worker.run_once())
    assert "not enabled" in box.dead_letters()[0].reason


def test_run_wakes_on_new_event_and_stops(tmp_path: Path) -> None:
    ch = FakeChannel([])
    worker, box, _ = make_worker(tmp_path, ch, ["1"])

    async def scenario() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker.run(stop, wake, poll_interval=3600.0))
        await asyncio.sleep(0)
        box.enqueue(make_event(1))
        wake.set()
        await asyncio.wait_for(ch.called.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert box.status()[0].sent == 1


def test_a_stop_cuts_sends_that_do_not_end_and_they_go_again_with_their_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A send that hangs (a server that never answers, a rate limit's wait) does not hold the
    stop past ``stop_wait``: it is cut, its row stays claimed, and the next run sends it
    again with the same idempotency key; a send that ends within the wait is kept."""

    class Hanging(FakeChannel):
        async def send(self, message: Message, recipient: str, key: str) -> Outcome:
            self.calls.append((message.text.splitlines()[0], recipient, key))
            self.called.set()
            if recipient == "2":  # quick
                await asyncio.sleep(0.05)
                return Sent("ok")
            await asyncio.sleep(3600)
            raise AssertionError("not cut")

    ch = Hanging([])
    worker, box, _ = make_worker(tmp_path, ch, ["1", "2"])
    worker.stop_wait = 0.3
    box.enqueue(make_event(1))

    async def scenario() -> float:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker.run(stop, wake, poll_interval=3600.0))
        await asyncio.wait_for(ch.called.wait(), 5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        stop.set()
        await asyncio.wait_for(task, 5)
        return loop.time() - began

    took = asyncio.run(scenario())
    assert 0.25 <= took < 4.0  # cut, not waited for (the task has 5 s)
    (row,) = box.status()
    assert (row.sent, row.in_flight) == (1, 1)
    assert "1 send(s) still in flight were cut by the stop" in caplog.text
    first_key = next(key for _, who, key in ch.calls if who == "1")
    # the next start sends it again, under the key it had
    box.close()
    again = FakeChannel([Sent("ok")])
    worker2, box2, _ = make_worker(tmp_path, again, ["1", "2"])

    async def restart() -> None:
        stop, wake = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker2.run(stop, wake, poll_interval=3600.0))
        await asyncio.wait_for(again.called.wait(), 5)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(restart())
    assert [(who, key) for _, who, key in again.calls] == [("1", first_key)]
    assert box2.status()[0].sent == 2
    box2.close()


def test_a_busy_second_is_planned_in_short_transactions(tmp_path: Path) -> None:
    """The outbox's write lock is also the calls' commits': the worker plans a batch of events
    a transaction, several batches a pass, the rest in the next pass."""
    worker, box, _ = make_worker(tmp_path, FakeChannel([Sent("ok")] * 1000), ["1"])
    many = PLAN_BATCH * PLAN_BATCHES + 7
    box.enqueue_many([make_event(n) for n in range(many)])
    groups: list[int] = []
    plan_many = box.plan_many

    def recorded(plans, now, **kw):  # type: ignore[no-untyped-def]
        groups.append(len(plans))
        return plan_many(plans, now, **kw)

    box.plan_many = recorded  # type: ignore[method-assign]
    asyncio.run(worker.run_once())
    assert groups == [PLAN_BATCH] * PLAN_BATCHES
    assert len(box.unplanned(1000)) == 7
    asyncio.run(worker.run_once())
    assert groups[-1] == 7 and box.unplanned(1000) == []
