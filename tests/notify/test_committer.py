"""Group commit: events that arrive together share a transaction, each is durable when its
future resolves, and one bad event fails only itself."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from pbxgate.errors import DeliveryError
from pbxgate.notify.committer import GroupCommitter
from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox
from tests.notify.helpers import make_event, stored_ids


class SlowOutbox(Outbox):
    """An outbox whose commits take a while (a slow disk) and can refuse one event."""

    delay = 0.05
    refuse: str | None = None
    groups: list[int]

    def enqueue_many(self, events: Sequence[CallEvent]) -> list[bool]:
        self.groups.append(len(events))
        threading.Event().wait(self.delay)
        if any(e.event_id == self.refuse for e in events):
            raise DeliveryError("outbox: database or disk is full")
        return super().enqueue_many(events)


def slow_outbox(path: Path) -> SlowOutbox:
    box = Outbox.open(path)
    box.__class__ = SlowOutbox
    assert isinstance(box, SlowOutbox)
    box.groups = []
    return box


def test_events_that_arrive_during_a_commit_share_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = slow_outbox(path)
    woken: list[int] = []
    committer = GroupCommitter(box, on_commit=lambda: woken.append(1))

    async def main() -> list[bool]:
        futures = [committer.submit(make_event(n)) for n in range(1, 101)]
        return list(await asyncio.gather(*futures))

    results = asyncio.run(main())
    committer.close()
    assert results == [True] * 100
    # 100 events, each committing on a 50 ms disk: far fewer transactions than events
    assert sum(box.groups) == 100 and len(box.groups) <= 3, box.groups
    assert committer.commits == len(box.groups) and woken
    assert len(stored_ids(path)) == 100


def test_a_future_resolves_only_once_its_event_is_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    committer = GroupCommitter(slow_outbox(path))

    async def main() -> None:
        future = committer.submit(make_event(7))
        await asyncio.sleep(0)
        assert not future.done()
        assert await future is True
        assert stored_ids(path) == ["incoming:1700000000.7"]

    asyncio.run(main())
    committer.close()


def test_the_same_event_twice_is_stored_once(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    committer = GroupCommitter(Outbox.open(path))

    async def main() -> list[bool]:
        return list(await asyncio.gather(*(committer.submit(make_event(3)) for _ in range(3))))

    results = asyncio.run(main())
    committer.close()
    assert sorted(results) == [False, False, True]
    assert stored_ids(path) == ["incoming:1700000000.3"]


def test_one_event_that_cannot_be_stored_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    box = slow_outbox(path)
    box.refuse = make_event(5).event_id
    committer = GroupCommitter(box)

    async def main() -> list[object]:
        futures = [committer.submit(make_event(n)) for n in range(1, 11)]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    results = asyncio.run(main())
    committer.close()
    failed = [n for n, r in enumerate(results, 1) if isinstance(r, DeliveryError)]
    assert failed == [5]
    assert [r for r in results if not isinstance(r, DeliveryError)] == [True] * 9
    assert len(stored_ids(path)) == 9


def test_close_commits_what_is_queued_and_then_refuses(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    committer = GroupCommitter(slow_outbox(path))

    async def main() -> None:
        futures = [committer.submit(make_event(n)) for n in range(1, 6)]
        await asyncio.get_running_loop().run_in_executor(None, committer.close)
        assert await asyncio.gather(*futures) == [True] * 5
        with pytest.raises(RuntimeError, match="closed"):
            committer.submit(make_event(9))

    asyncio.run(main())
    assert len(stored_ids(path)) == 5
