"""Group commit: the FastAGI side's events reach the outbox's disk together.

Every call's event must be on disk before its AGI session ends, and an fsync takes a
millisecond or more whatever it carries. One transaction per event makes calls that arrive
together wait for each other's fsync in turn (at 50 calls in flight: p50 31 ms); here one thread
commits, and every event that arrives while a commit runs goes into the next one. A call then
waits for at most two commits, whatever the load.

The thread resolves each event's asyncio future on its own loop, one wake-up per loop and
commit. A commit that fails is retried event by event, so that one bad event cannot fail the
others of its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox

log = logging.getLogger(__name__)

# The most events in one transaction: a burst beyond it is committed in several.
MAX_GROUP = 512

T = TypeVar("T")
_Item = tuple[CallEvent, asyncio.AbstractEventLoop, "asyncio.Future[bool]"]


class GroupCommitter:
    """Commits events to ``outbox`` from one thread, in groups; ``on_commit`` runs (in that
    thread) after a commit that stored anything new."""

    def __init__(self, outbox: Outbox, on_commit: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self.on_commit = on_commit
        self.commits = 0  # transactions that carried events (for tests and benchmarks)
        # A C queue rather than a Condition around a list: the loop's side of each call is a
        # put (and a wake-up only when the thread waits), with no Python-level notify.
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()  # a submit and close() never interleave
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="pbxgate-commit", daemon=True)
        self._thread.start()

    def submit(self, event: CallEvent) -> asyncio.Future[bool]:
        """Queue ``event``; the future (of the running loop) is True once it is on disk, False
        when an event with its id was there already, or fails with the outbox's error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._lock:
            if self._closing:
                raise RuntimeError("the committer is closed")
            self._queue.put((event, loop, future))
        return future

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        with self._lock:
            if not self._closing:
                self._closing = True
                self._queue.put(None)  # the last item: nothing is queued after it
        self._thread.join()

    def _run(self) -> None:
        pending = self._queue
        last = False
        while not last:
            group: list[_Item] = []
            item = pending.get()
            while True:  # everything queued meanwhile, up to MAX_GROUP
                if item is None:
                    last = True
                    break
                group.append(item)
                if len(group) >= MAX_GROUP:
                    break
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._deliver(group)

    def _deliver(self, group: list[_Item]) -> None:
        """Commit ``group`` and resolve its futures, each on its own loop."""
        outcomes = self._commit([event for event, _, _ in group])
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[bool], object]]]
        by_loop = {}
        for (_, loop, future), outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                loop.call_soon_threadsafe(_resolve, results)
        if any(outcome is True for outcome in outcomes):
            after_commit(self.on_commit)

    def _commit(self, events: Sequence[CallEvent]) -> list[object]:
        self.commits += 1
        return commit_group(self.outbox.enqueue_many, events)


def after_commit(on_commit: Callable[[], None] | None) -> None:
    """Run ``on_commit`` (it wakes the workers) after a commit that stored something new; a
    wake-up that fails must not stop the commits."""
    if on_commit is None:
        return
    try:
        on_commit()
    except Exception:
        log.exception("after a commit")


def commit_group(store: Callable[[Sequence[T]], list[bool]], items: Sequence[T]) -> list[object]:
    """``store`` ``items`` (events, or their rows) in one transaction; each one's outcome:
    stored (True), there already (False), or the error. A group that fails is retried one by
    one, so that the error stays with the item that causes it."""
    try:
        return list(store(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
    outcomes: list[object] = []
    for item in items:
        try:
            outcomes.append(store([item])[0])
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _resolve(results: list[tuple[asyncio.Future[bool], object]]) -> None:
    for future, outcome in results:
        if future.done():  # the caller stopped waiting (its call went on)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(bool(outcome))


__all__ = ["MAX_GROUP", "GroupCommitter", "after_commit", "commit_group"]
