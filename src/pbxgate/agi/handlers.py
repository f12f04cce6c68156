"""The FastAGI handlers for call notifications: ``agi://host/notify`` and ``agi://host/missed``.

One handler serves both routes. It reads what the request did not pass (``GET VARIABLE
CHANNEL(linkedid)``; several names in one ``GET FULL VARIABLE``, see
:class:`pbxgate.agi.calls.VariableReads`), builds the event
(:func:`pbxgate.agi.calls.build_event`), hands it to ``commit`` (the durable outbox commit:
``pbxgate serve`` groups the events of calls in flight into one transaction, see
:mod:`pbxgate.notify.committer`), then sets the result variable and closes: Asterisk continues
the dialplan at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from pbxgate.agi.calls import ROUTES, Skip, VariableReads, build_event, parse_request
from pbxgate.agi.fastagi import AgiConnection, Handler
from pbxgate.agi.protocol import State
from pbxgate.notify.events import CallEvent

log = logging.getLogger(__name__)

QUEUED = "queued"
SKIPPED = "skipped"
FAILED = "failed"

Accept = Callable[[CallEvent], bool]
# Stores the event durably: True once stored, False when it is not to be (an internal caller,
# or stored before).
Commit = Callable[[CallEvent], Awaitable[bool]]


def in_thread(accept: Accept, executor: Executor | None = None) -> Commit:
    """A :data:`Commit` from a blocking ``accept``, run in ``executor`` (default: asyncio's)."""

    def commit(event: CallEvent) -> Awaitable[bool]:
        return asyncio.get_running_loop().run_in_executor(executor, accept, event)

    return commit


class CallHandler:
    """Build the call event of one FastAGI session and enqueue it before the session ends."""

    def __init__(
        self,
        commit: Commit,
        *,
        result_variable: str = "PBXGATE_EVENT",
        commit_timeout: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.commit = commit
        self.result_variable = result_variable
        self.commit_timeout = commit_timeout
        self.clock = clock

    def routes(self) -> dict[str, Handler]:
        return dict.fromkeys(ROUTES, self)

    async def __call__(self, conn: AgiConnection) -> None:
        env = conn.environment
        request = parse_request(env)
        reads = VariableReads(request.missing(env))
        try:
            while (command := reads.next()) is not None:
                reads.answer(command, await conn.try_command(*command))
        except asyncio.CancelledError:
            # the service's stop cut the call while Asterisk was being asked: the event is
            # not stored (what was not read may be wrong; the dialplan's fallback reads it
            # again), but it is logged whole
            cut = build_event(env, request, reads.variables, self.clock())
            if not isinstance(cut, Skip):
                log.error("the service stopped before %s was queued (Asterisk had not "
                          "answered); event: %s", cut.event_id, cut.to_json())  # fmt: skip
            raise
        built = build_event(env, request, reads.variables, self.clock())
        outcome = await self._enqueue(built)
        if self.result_variable and conn.session.state is State.IDLE:
            await conn.finish("SET VARIABLE", self.result_variable, outcome)

    async def _enqueue(self, built: CallEvent | Skip) -> str:
        if isinstance(built, Skip):
            log.debug("no event: %s", built.reason)
            return SKIPPED
        try:
            # The call waits for this; a stuck disk must not hold it longer than the timeout.
            # The commit itself goes on (in the outbox writer, or a thread) and lands later
            # (same event id).
            pending = asyncio.ensure_future(self.commit(built))
            queued = await _within(pending, self.commit_timeout)
        except asyncio.CancelledError:  # the service's stop cut the call: the commit goes on
            pending.add_done_callback(functools.partial(_late, built.event_id))
            log.error(
                "the service stopped while %s was being queued; the commit continues; event: %s",
                built.event_id,
                built.to_json(),
            )
            raise
        except TimeoutError:
            pending.add_done_callback(functools.partial(_late, built.event_id))
            log.error(
                "queueing %s takes over %.1fs; the call goes on (the commit continues); event: %s",
                built.event_id,
                self.commit_timeout,
                built.to_json(),
            )
            return FAILED
        except Exception as exc:
            # One line with the whole event: nothing is lost silently.
            log.error("could not queue %s (%s); event: %s", built.event_id, exc, built.to_json())
            return FAILED
        return QUEUED if queued else SKIPPED


def _late(event_id: str, commit: asyncio.Future[bool]) -> None:
    """How a commit the call stopped waiting for ended: the admin who read its timeout learns
    whether the event is in the outbox after all."""
    if commit.cancelled():
        return
    error = commit.exception()
    if error is not None:
        log.error("queueing %s failed after its call went on: %s", event_id, error)
    else:
        log.warning("%s was queued after its call went on", event_id)


async def _within(future: asyncio.Future[bool], timeout: float | None) -> bool:
    """The result of ``future`` if it comes within ``timeout`` seconds, else TimeoutError; the
    future itself is left to run (asyncio.wait_for with shield, for one timer, no task)."""
    if timeout is None or future.done():
        return await future
    loop = future.get_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    future.add_done_callback(wake)
    timer = loop.call_later(timeout, wake)
    try:
        await waiter
    finally:
        timer.cancel()
        future.remove_done_callback(wake)
    if not future.done():
        raise TimeoutError
    return future.result()


__all__ = ["FAILED", "QUEUED", "SKIPPED", "Accept", "CallHandler", "Commit", "in_thread"]
