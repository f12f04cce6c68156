"""An asyncio AMI client over :mod:`pbxgate.ami.protocol`: login, actions (list actions too),
events to subscribers, and :func:`follow`, which keeps a session up with back-off.

The secret goes to Asterisk in the Login action and nowhere else: never into a log line, an
error message or a repr.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pbxgate.ami.protocol import AmiProtocolError, AmiSession, Greeting, Message, format_action
from pbxgate.errors import PbxgateError

log = logging.getLogger(__name__)


class AmiError(PbxgateError):
    """The manager refused an action (login included) or could not be reached."""


@dataclass(frozen=True)
class Mark:
    """In the subscribers' queues, where the response to a list action, or to an action sent
    with ``mark``, came. Asterisk writes events and answers on one stream, and the events that
    happened before it took the action up come before its answer (main/manager.c
    ``do_message``: the queued events are written before each action is read), so the events
    before a mark are older than what its action saw; those of the moments its list was being
    written come after the list."""

    action_id: str


Queued = Message | Mark | None  # None: the session has ended


class AmiClient:
    """One manager session. Use :meth:`connect`, then :meth:`action` / :meth:`list_action`;
    events go to every queue from :meth:`subscribe`."""

    def __init__(
        self, host: str, port: int, username: str, secret: str, *, timeout: float = 10.0
    ) -> None:
        self.host, self.port, self.username = host, port, username
        self._secret = secret
        self.timeout = timeout
        self.version = ""
        self._session = AmiSession()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, list[Message]] = {}
        self._marked: set[str] = set()  # actions whose response is marked among the events
        self._subscribers: list[asyncio.Queue[Queued]] = []
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.closed: asyncio.Future[BaseException | None] | None = None

    def __repr__(self) -> str:
        return f"AmiClient({self.username}@{self.host}:{self.port})"

    async def connect(self) -> None:
        """Connect, read the greeting, log in (events on)."""
        where = f"the manager at {self.host}:{self.port}"
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
                greeting = await self._first()
        except (OSError, TimeoutError, AmiProtocolError) as exc:
            if self._writer is not None:
                self._writer.close()
            raise AmiError(f"cannot reach {where}: {exc or 'no answer'}") from None
        self.version = greeting.version
        self.closed = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._read(), name="ami-reader")
        reply = await self.action("Login", Username=self.username, Secret=self._secret, Events="on")
        if reply.response != "Success":
            await self.close()
            raise AmiError(
                f"{where} refused the login of {self.username!r}: {reply.get('Message')}"
            )

    async def _first(self) -> Greeting:
        assert self._reader is not None
        while True:
            event = self._session.next_event()
            if isinstance(event, Greeting):
                return event
            data = await self._reader.read(65536)
            if not data:
                raise OSError("closed before its greeting")
            self._session.receive_data(data)

    def subscribe(self) -> asyncio.Queue[Queued]:
        """A queue of every event from now on, with a :class:`Mark` where each list action's
        response, or a marked action's, came (None once the session ends)."""
        queue: asyncio.Queue[Queued] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    async def action(self, name: str, *, mark: bool = False, **fields: str | int) -> Message:
        """Send an action and wait for its response (with ``mark``, a :class:`Mark` where it
        came, among the events)."""
        action_id = f"pbxgate-{next(self._ids)}"
        if mark:
            self._marked.add(action_id)
        try:
            return await self._send(name, action_id, fields)
        finally:
            self._marked.discard(action_id)

    async def list_action(self, name: str, **fields: str | int) -> list[Message]:
        """An action that answers with a list of events (``CoreShowChannels``): the events,
        once the one that says the list is complete has come."""
        action_id = f"pbxgate-{next(self._ids)}"
        self._lists[action_id] = []
        done: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[f"{action_id}/complete"] = done
        try:
            reply = await self._send(name, action_id, fields)
            if reply.response != "Success":
                raise AmiError(f"AMI {name}: {reply.get('Message')}")
            try:
                async with asyncio.timeout(self.timeout):
                    await done
            except TimeoutError:
                raise AmiError(
                    f"AMI {name}: the list did not end in {self.timeout:.0f} s"
                ) from None
            return self._lists[action_id]
        finally:
            self._lists.pop(action_id, None)
            self._pending.pop(f"{action_id}/complete", None)

    async def _send(self, name: str, action_id: str, fields: dict[str, str | int]) -> Message:
        if self._writer is None or self.closed is None or self.closed.done():
            raise AmiError(f"AMI {name}: not connected")
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = future
        try:
            self._writer.write(format_action(name, action_id, fields))
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            raise AmiError(f"AMI {name}: no answer in {self.timeout:.0f} s") from None
        finally:
            self._pending.pop(action_id, None)

    async def _read(self) -> None:
        assert self._reader is not None
        error: BaseException | None = None
        try:
            while True:
                for message in self._session.events():
                    if isinstance(message, Message):
                        self._dispatch(message)
                data = await self._reader.read(65536)
                self._session.receive_data(data)
                if not data:
                    for message in self._session.events():
                        if isinstance(message, Message):
                            self._dispatch(message)
                    break
        except (OSError, AmiProtocolError) as exc:
            error = exc
        finally:
            self._finish(error)

    def _dispatch(self, message: Message) -> None:
        action_id = message.action_id
        if "Event" in message:
            if action_id in self._lists:
                if message.get("EventList").lower() == "complete":
                    done = self._pending.get(f"{action_id}/complete")
                    if done is not None and not done.done():
                        done.set_result(message)
                else:
                    self._lists[action_id].append(message)
                return
            for queue in self._subscribers:
                queue.put_nowait(message)
            return
        if action_id in self._lists or action_id in self._marked:
            for queue in self._subscribers:
                queue.put_nowait(Mark(action_id))
        future = self._pending.get(action_id)
        if future is not None and not future.done():
            future.set_result(message)

    def _finish(self, error: BaseException | None) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(AmiError("the manager connection closed"))
        for queue in self._subscribers:
            queue.put_nowait(None)
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(error)
        if self._writer is not None:
            self._writer.close()

    async def close(self) -> None:
        """Log off and close."""
        if self._writer is not None and self.closed is not None and not self.closed.done():
            try:
                async with asyncio.timeout(2):
                    await self.action("Logoff")
            except (AmiError, TimeoutError):
                pass
            self._writer.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


Handler = Callable[[Message], None]
# A session up this long (seconds, after its catch-up) was a working one: the wait after it
# fails starts again at its shortest.
STEADY = 10.0
# What on_connect is given beside the client: hands the events queued so far to the handler,
# up to the next Mark (the response of a list action, or of a marked action).
Earlier = Callable[[], None]
OnConnect = Callable[[AmiClient, Earlier], Awaitable[None]]


async def follow(
    make: Callable[[], AmiClient],
    on_event: Handler,
    stop: asyncio.Event,
    *,
    on_connect: OnConnect | None = None,
    first_delay: float = 1.0,
    max_delay: float = 60.0,
    rng: random.Random | None = None,
    fail_first: bool = False,
) -> None:
    """Keep a manager session until ``stop``: every event goes to ``on_event``, in order; after
    each (re)connection ``on_connect`` runs (to resynchronise: the events of the gap are
    lost), given the client and a function that hands on the events that came before the next
    :class:`Mark` (:data:`Earlier`): those older than a list go to ``on_event`` before it is
    read;
    a failure waits ``first_delay`` doubling up to ``max_delay`` (with jitter), and only a
    session that stayed up :data:`STEADY` seconds after ``on_connect`` resets the wait (a
    session that fails at once, as a catch-up the user may not run, backs off like a refused
    login). One log line per failure, never the secret. With ``fail_first`` a first
    connection that fails, ``on_connect`` included, raises its :class:`AmiError` (a command
    that an admin runs wants to hear of a wrong address or secret at once)."""
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    delay = first_delay
    connected = False
    while not stop.is_set():
        client = make()
        up_since: float | None = None
        failure: tuple[int, str] | None = None
        try:
            queue = client.subscribe()  # before the login: no event falls between
            await client.connect()
            log.info("AMI: connected to %s:%d (Asterisk %s)", client.host, client.port,
                     client.version)  # fmt: skip
            if on_connect is not None:
                await on_connect(client, functools.partial(_earlier, queue, on_event))
            connected = True
            up_since = loop.time()
            await _relay(queue, on_event, stop)
        except AmiError as exc:
            if fail_first and not connected:
                raise
            failure = (logging.WARNING, str(exc))
        except (PbxgateError, OSError) as exc:  # an error from on_event, a broken peer
            failure = (logging.ERROR, str(exc))
        finally:
            await client.close()
        if stop.is_set():
            return
        if up_since is not None and loop.time() - up_since >= STEADY:
            delay = first_delay  # it was up a while: this is a new failure, tried again soon
        if failure is not None:
            log.log(failure[0], "AMI: %s; again in %.0f s", failure[1], delay)
        try:
            async with asyncio.timeout(delay * (0.8 + 0.4 * rng.random())):
                await stop.wait()
        except TimeoutError:
            pass
        delay = min(max_delay, delay * 2)


def _earlier(queue: asyncio.Queue[Queued], on_event: Handler) -> None:
    """Hand what ``queue`` holds to ``on_event`` up to the next :class:`Mark`; the end of the
    session is left for :func:`_relay`."""
    while not queue.empty():
        item = queue.get_nowait()
        if item is None:
            queue.put_nowait(None)  # nothing comes after it
            return
        if isinstance(item, Mark):
            return
        on_event(item)


async def _relay(queue: asyncio.Queue[Queued], on_event: Handler, stop: asyncio.Event) -> None:
    """Hand the session's events to ``on_event`` until ``stop``; AmiError when it ends."""
    while not stop.is_set():
        get = asyncio.ensure_future(queue.get())
        halt = asyncio.ensure_future(stop.wait())
        await asyncio.wait({get, halt}, return_when=asyncio.FIRST_COMPLETED)
        halt.cancel()
        if not get.done():
            get.cancel()
            return
        message = get.result()
        if message is None:
            raise AmiError("the manager closed the connection")
        if not isinstance(message, Mark):
            on_event(message)


__all__ = ["AmiClient", "AmiError", "Earlier", "Mark", "follow"]
