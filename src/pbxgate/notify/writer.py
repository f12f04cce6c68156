"""The outbox writer: ``pbxgate serve``'s group commit in a process of its own.

Every call's event must be on disk before its FastAGI session ends. A commit thread in the
FastAGI process does that, but it shares the interpreter lock with the calls: each of its
statements gives the lock away and takes it back while the loop is busy, and the two threads
hand it to each other thousands of times a second. At 200 calls in flight that cost the loop a
third of its time (a session took 118 us of the loop's CPU with the thread, 89-95 us with this
process). Here the commits run in a child with its own interpreter, and the loop's side of a
call is one line written to a socket and one line read back.

The two talk through one socket pair, a line each way per event:

* service to writer: ``<seq>``, the event's id (a JSON string), kind, time and payload (its
  JSON, as the outbox stores it), tab-separated (:func:`line_of`); the lines written in one
  pass of the loop go in one write, and the writer stores the rows as they come;
* writer to service: ``<seq> 1`` once the event is on disk, ``<seq> 0`` when an event with its
  id was there already, ``<seq> E <message as a JSON string>`` when it could not be stored.

With FastAGI in processes of its own (``[agi] processes``, :mod:`pbxgate.agi.apart`) the writer
has one such socket for each of them besides the service's own, and commits what has come on
all of them together; a group that stored events of theirs is told to the service too, on its
own socket (``* 1``), since the service wakes the delivery worker and the web console's live
page. A socket's end is answered by the writer closing it; the writer ends once every one has
ended.

The writer commits whatever has arrived together in one transaction (one fsync; a group that
fails is retried event by event, so that one bad event fails alone: :func:`commit_group`), then
answers. End of input (the service closing its side, or dying, even by SIGKILL) makes it
commit what it has, answer and exit. The settings, its ``ready`` line and the reason it could
not work go as for the delivery worker (:mod:`pbxgate.notify.apart`), and it ignores SIGINT
and SIGTERM in the same way: the service stops it after the calls in progress are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import selectors
import socket
import sys
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring
from typing import TypeVar

from pbxgate.config import Settings
from pbxgate.errors import DeliveryError
from pbxgate.notify.apart import ChildProcess, read_config, say, say_error
from pbxgate.notify.committer import MAX_GROUP, GroupCommitter, after_commit, commit_group
from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox, Row, row_of

log = logging.getLogger(__name__)

T = TypeVar("T")

_RECEIVE = 1 << 18
STORED, THERE, FAILED = b"1", b"0", b"E"
# the line that tells the service that events another process sent were stored
ELSEWHERE = b"* 1\n"
_QUOTE = encode_basestring
_UNREADABLE = DeliveryError("the outbox writer got a line that is not an event")
# Seconds a stop waits for the writer to answer the last events, once the calls are drained:
# longer than a SQLite writer waits for another's lock (backends.WRITE_LOCK_WAIT), and within
# systemd's stop timeout (examples/systemd: 30 s) after the drain (5 s); then, once killed
CLOSE_WAIT = 15.0
KILL_WAIT = 3.0
# While the service runs: a writer whose oldest unanswered event has waited this long (a disk
# that does not return) is stopped, and the service ends with it (systemd starts it again).
# Meanwhile every call waited its commit_timeout and had its event logged; without a bound
# they would go on doing so, and the unanswered events pile up in memory. Checked every
# STUCK_CHECK seconds.
STUCK_AFTER = 60.0
STUCK_CHECK = 5.0


class WriterLink:
    """One socket to the outbox writer, from the side that sends it events: :meth:`submit` an
    event (on the loop that made this), get a future; :meth:`close` once no more will come.
    ``pbxgate serve`` holds one (:class:`WriterProcess`), and each FastAGI process of its own
    (:mod:`pbxgate.agi.apart`) another.

    ``fallback`` is where events go once the writer has ended (killed, or by a stop signal as
    it started): a commit thread of this process on that outbox (or on the one it opens, when
    it is a function), so that the calls of the drain, and those the writer had not answered,
    are still stored. ``on_stuck`` runs when the writer has left an event unanswered for
    :data:`STUCK_AFTER` (the events it had not answered are logged whole and fail first)."""

    what = "the outbox writer process"

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        on_commit: Callable[[], None] | None = None,
        fallback: Outbox | Callable[[], Outbox] | None = None,
        on_stuck: Callable[[str], None] | None = None,
    ) -> None:
        self._loop = loop
        self.on_commit = on_commit  # after an answer that stored something new
        self.fallback = fallback
        self.on_stuck = on_stuck
        self._thread: GroupCommitter | None = None
        self._opening: asyncio.Future[Outbox] | None = None  # the fallback, being opened
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, tuple[CallEvent, asyncio.Future[bool]]] = {}
        self._outgoing: list[bytes] = []
        self._numbers = itertools.count()
        self._closing = False
        self._gone = False
        self._abandoned = False  # stopped for not answering: no fallback
        self._answered: asyncio.Future[None] = loop.create_future()
        self._oldest: int | None = None  # the oldest unanswered event's number, and since when
        self._oldest_since = 0.0
        self._watchdog: asyncio.TimerHandle | None = None

    async def connect(self, sock: socket.socket) -> None:
        """Talk to the writer through ``sock`` (its other end is the writer's)."""
        transport, _ = await self._loop.connect_accepted_socket(lambda: _Answers(self), sock)
        self._transport = transport
        self._flush()
        self._watchdog = self._loop.call_later(STUCK_CHECK, self._watch_answers)

    def _watch_answers(self) -> None:
        """Give up on a writer whose oldest unanswered event has waited :data:`STUCK_AFTER`."""
        self._watchdog = None
        if self._gone or self._closing:
            return
        oldest = next(iter(self._pending), None)
        now = self._loop.time()
        if oldest is None or oldest != self._oldest:
            self._oldest, self._oldest_since = oldest, now
        elif now - self._oldest_since >= STUCK_AFTER:
            self._stuck()
            return
        self._watchdog = self._loop.call_later(STUCK_CHECK, self._watch_answers)

    def _stuck(self) -> None:
        self._stop_unanswering(f"has not answered for {STUCK_AFTER:g} s")
        self._drop_answers()
        if self.on_stuck is not None:
            self.on_stuck(f"{self.what} did not answer for {STUCK_AFTER:g} s")

    def submit(self, event: CallEvent) -> asyncio.Future[bool]:
        """Queue ``event``; the future is True once it is on disk, False when an event with its
        id was there already, or fails with why it could not be stored."""
        if self._closing:
            raise RuntimeError("the committer is closed")
        if self._gone:
            return self._instead(event)
        number = next(self._numbers)
        line = line_of(number, event)
        future: asyncio.Future[bool] = self._loop.create_future()
        self._pending[number] = (event, future)
        if not self._outgoing:
            self._loop.call_soon(self._flush)  # once a pass: one write for all its calls
        self._outgoing.append(line)
        return future

    async def close(self, wait: float = CLOSE_WAIT) -> None:
        """Send what is queued, end this side, and wait (at most ``wait`` seconds) for the
        writer to answer it; what it has not answered by then is logged whole and fails, and
        so does the close, in one line."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._flush()
        transport = self._transport
        if transport is None:
            self._never_connected()
            self._lost()
        elif not self._gone:
            transport.write_eof()
            try:
                async with asyncio.timeout(wait):
                    await asyncio.shield(self._answered)
            except TimeoutError:
                await self._abandon(wait)
        await self._ended()
        if self._opening is not None:  # the events waiting for it go to its thread first
            await asyncio.wait([self._opening])
            await asyncio.sleep(0)
        if self._thread is not None:
            await self._loop.run_in_executor(None, self._thread.close)

    def _never_connected(self) -> None:
        """A close before :meth:`connect`."""

    async def _ended(self) -> None:
        """Once the writer has answered everything (or been given up on) at a close."""

    async def _abandon(self, wait: float) -> None:
        """The writer has not answered the last events within ``wait`` seconds of the close."""
        unanswered = self._stop_unanswering(f"has not answered in {wait:g} s")
        self._drop_answers()
        raise DeliveryError(
            f"{self.what} did not answer in {wait:g} s; "
            f"{unanswered} event(s) logged, perhaps not stored"
        )

    def _drop_answers(self) -> None:
        """Its answers, should any come, are not read; what it had not answered fails now."""
        if self._transport is not None:
            self._transport.abort()
        self._lost()

    def _stop_unanswering(self, how: str) -> int:
        """Give up on a writer that does not answer: each event it has not answered is
        logged whole (and fails, not handed to the fallback: the same disk or server); how
        many."""
        self._abandoned = True
        unanswered = [event for event, future in self._pending.values() if not future.done()]
        log.error("%s %s; it is stopped", self.what, how)
        for event in unanswered:
            log.error(
                "%s may not have been stored (%s did not answer); event: %s",
                event.event_id,
                self.what,
                event.to_json(),
            )
        return len(unanswered)

    def _flush(self) -> None:
        transport = self._transport
        if self._outgoing and transport is not None and not transport.is_closing():
            transport.write(b"".join(self._outgoing))
            self._outgoing.clear()

    def _answer(self, line: bytes) -> bool:
        """Resolve one event's future; True when it was stored now."""
        number, _, rest = line.partition(b" ")
        if number == b"*":  # events of another FastAGI process were stored
            return True
        try:
            _, future = self._pending.pop(int(number))
        except (ValueError, KeyError):
            log.error("%s answered an event it was not given: %r", self.what, line[:40])
            return False
        if future.done():  # the call went on without it (its commit timeout)
            return rest == STORED
        if rest == STORED:
            future.set_result(True)
            return True
        if rest == THERE:
            future.set_result(False)
        else:
            future.set_exception(DeliveryError(_message(rest)))
        return False

    def _lost(self) -> None:
        """The writer's side is closed: what it had not answered goes to the fallback (stored
        once whoever stores it first: the events' ids), else fails."""
        self._gone = True
        self._outgoing.clear()
        pending, self._pending = self._pending, {}
        for event, future in pending.values():
            if future.done():
                continue
            if self._abandoned:
                future.set_exception(DeliveryError(f"{self.what} was stopped before it answered"))
            else:
                _chain(self._instead(event), future)
        if not self._answered.done():
            self._answered.set_result(None)

    def _instead(self, event: CallEvent) -> asyncio.Future[bool]:
        """``event`` committed by the fallback thread, or failed when there is none, or when
        the writer was stopped for not answering (the fallback's disk is the same)."""
        failed: asyncio.Future[bool] = self._loop.create_future()
        if self._abandoned:
            failed.set_exception(DeliveryError(f"{self.what} was stopped for not answering"))
            return failed
        if self.fallback is None:
            failed.set_exception(DeliveryError(f"{self.what} ended before it answered"))
            return failed
        fallback = self.fallback
        if self._thread is None and isinstance(fallback, Outbox):
            self._commit_here(fallback)
        if self._thread is not None:
            return self._thread.submit(event)
        # an outbox to open (a database server's connection takes its time): off the loop,
        # where the calls wait for it and nothing else does
        if self._opening is None and not isinstance(fallback, Outbox):
            self._opening = self._loop.run_in_executor(None, fallback)
        assert self._opening is not None
        self._opening.add_done_callback(functools.partial(self._opened, event, failed))
        return failed

    def _opened(
        self, event: CallEvent, result: asyncio.Future[bool], opening: asyncio.Future[Outbox]
    ) -> None:
        if self._thread is None:
            error = opening.exception()
            if error is not None:
                if not result.done():
                    result.set_exception(
                        DeliveryError(
                            f"{self.what} ended, and the outbox cannot be opened: {error}"
                        )
                    )
                return
            self._commit_here(opening.result())
        assert self._thread is not None
        _chain(self._thread.submit(event), result)

    def _commit_here(self, box: Outbox) -> None:
        log.warning("%s has ended: this process commits the calls' events", self.what)
        self._thread = GroupCommitter(box, self.on_commit)


class WriterProcess(WriterLink, ChildProcess):
    """The service's side: the writer's process, and the service's own :class:`WriterLink` to
    it (:meth:`submit`, :meth:`close`); :attr:`finished` as for any child. With ``links``,
    the writer gets that many more sockets: :attr:`links` holds their other ends, one for each
    FastAGI process (the service closes its copies once they are handed on)."""

    module = __name__
    what = "the outbox writer process"

    def __init__(
        self,
        settings: Settings,
        *,
        stopping: asyncio.Event | None = None,
        on_commit: Callable[[], None] | None = None,
        fallback: Outbox | None = None,
        links: int = 0,
    ) -> None:
        ChildProcess.__init__(self, settings, stopping=stopping)
        WriterLink.__init__(self, self._loop, on_commit=on_commit, fallback=fallback)
        self._ours, self._theirs = socket.socketpair()
        self._end_by = 0.0  # (loop time) when a close gives up waiting for its end
        pairs = [socket.socketpair() for _ in range(links)]
        self.links = [ours for ours, _ in pairs]
        self._their_links = [theirs for _, theirs in pairs]

    def _handed(self) -> tuple[int, ...]:
        return (self._theirs.fileno(), *(s.fileno() for s in self._their_links))

    async def start(self) -> None:
        try:
            await ChildProcess.start(self)
        finally:
            for theirs in (self._theirs, *self._their_links):
                theirs.close()  # the child's ends are the child's alone
        await self.connect(self._ours)

    def close_links(self) -> None:
        """Close this process's copies of :attr:`links` (handed on, or never to be)."""
        for link in self.links:
            link.close()

    async def close(self, wait: float = CLOSE_WAIT) -> None:
        """Send what is queued, let the writer commit and answer it, and wait for its end
        (:meth:`_abandon` when it does not answer)."""
        self.close_links()  # never handed on, they would keep it waiting
        self._end_by = self._loop.time() + wait
        await super().close(wait)

    def _stuck(self) -> None:
        """Stop a writer that does not answer; the service ends with it."""
        self._stop_unanswering(f"has not answered for {STUCK_AFTER:g} s")
        self._stopped_because = f"{self.what} did not answer for {STUCK_AFTER:g} s"
        self.kill()
        self._drop_answers()
        # the service ends with it, whether or not it ends when killed (a process in a
        # disk wait ends only when the disk returns)
        self._loop.call_later(KILL_WAIT, self._given_up)

    def _given_up(self) -> None:
        if not self.finished.done():
            log.error("%s did not end when killed (pid %s); the service ends", self.what, self.pid)
            self.finished.set_exception(DeliveryError(self._stopped_because))

    def _never_connected(self) -> None:
        self._ours.close()  # the child did not start

    async def _ended(self) -> None:
        """It ends once every sender has: a FastAGI process that does not end even when
        killed (a disk wait) would keep it, and the service, for ever."""
        if self._watch is None or self._abandoned:
            return
        # its end (the outbox closed: a checkpoint of the WAL, an fsync) is not an answer:
        # a few seconds of its own, whatever the answers took
        left = max(KILL_WAIT, self._end_by - self._loop.time())
        if not (await asyncio.wait([self.finished], timeout=left))[0]:
            log.error("%s has answered everything but does not end; it is killed", self.what)
            self.kill()
            await asyncio.wait([self.finished], timeout=KILL_WAIT)

    async def _abandon(self, wait: float) -> None:
        """A writer that has not answered within ``wait`` seconds of the close (a disk that
        does not return) is killed so that the service can end, and waited for a little
        more (a process in a disk wait ends only when the disk returns); each event it had
        not answered is logged whole, not handed to the fallback (whose disk, or database
        server, is the same), and the close fails in one line, so that the service does not
        end as if all was well."""
        unanswered = self._stop_unanswering(f"has not answered in {wait:g} s")
        self.kill()
        await asyncio.wait([self.finished], timeout=KILL_WAIT)
        if not self.finished.done():
            log.error("%s did not end when killed (pid %s); the service ends", self.what, self.pid)
        self._drop_answers()  # what it had not answered fails now, before the close does
        raise DeliveryError(
            f"{self.what} did not answer in {wait:g} s; "
            f"{unanswered} event(s) logged, perhaps not stored"
        )

    def _input_lost(self) -> None:
        """The service gives up on the writer (cancelled): the end of its input ends it."""
        transport = self._transport
        with contextlib.suppress(OSError, RuntimeError):  # closed already
            if transport is None:
                self._ours.shutdown(socket.SHUT_WR)
            elif not transport.is_closing():
                transport.write_eof()

    def _clean_end(self) -> BaseException | None:
        return None if self._closing else DeliveryError(f"{self.what} ended on its own")


def _chain(source: asyncio.Future[bool], target: asyncio.Future[bool]) -> None:
    def copy(done: asyncio.Future[bool]) -> None:
        if target.done():
            return
        if done.exception() is not None:
            target.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)


class _Answers(asyncio.Protocol):
    def __init__(self, writer: WriterLink) -> None:
        self.writer = writer
        self.partial = b""

    def data_received(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        answer = self.writer._answer
        stored = False
        for line in lines:
            stored = answer(line) or stored
        if stored:
            after_commit(self.writer.on_commit)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.writer._lost()


def _message(rest: bytes) -> str:
    text = rest[len(FAILED) + 1 :]
    try:
        return str(json.loads(text))
    except ValueError:
        return "the outbox writer could not store the event"


# -- the child -----------------------------------------------------------------------------------


def serve(socks: socket.socket | Sequence[socket.socket], box: Outbox) -> None:
    """Commit and answer what comes on ``socks`` until each has ended (the child's main loop):
    the first is the service's own, the others the FastAGI processes'. What has come on all of
    them meanwhile is one group. A sender's end, however it comes (EOF, or a reset when it died
    with answers unread), still has what it sent committed; answers nobody reads are dropped,
    and the writer closes that socket."""
    socks = [socks] if isinstance(socks, socket.socket) else list(socks)
    own = socks[0]
    partial = dict.fromkeys(socks, b"")
    answering = dict.fromkeys(socks, True)
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while partial:
            batch: list[tuple[socket.socket, bytes]] = []
            for key, _ in selector.select():
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(_RECEIVE)
                except ConnectionResetError:
                    data = b""
                if not data:
                    selector.unregister(sock)
                    _ended(sock, partial.pop(sock), socks.index(sock))
                    answering[sock] = False
                    continue
                lines = (partial[sock] + data).split(b"\n")
                partial[sock] = lines.pop()
                batch.extend((sock, line) for line in lines)
            for at in range(0, len(batch), MAX_GROUP):  # each group answered once on disk
                group = batch[at : at + MAX_GROUP]
                stored_elsewhere = False
                for sock, (answers, stored) in answer_each(box, group).items():
                    stored_elsewhere = stored_elsewhere or (stored and sock is not own)
                    _send(sock, answers, answering)
                if stored_elsewhere and answering.get(own):
                    # a wake-up only: dropped rather than waited for when the service is not
                    # reading (the worker polls as well), so that no call waits for it
                    with contextlib.suppress(
                        BlockingIOError, BrokenPipeError, ConnectionResetError
                    ):
                        own.send(ELSEWHERE, socket.MSG_DONTWAIT)


def _send(sock: socket.socket, data: bytes, answering: dict[socket.socket, bool]) -> None:
    if data and answering.get(sock):
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            answering[sock] = False  # that side has gone: commit what it sent, answer nobody


def _ended(sock: socket.socket, partial: bytes, number: int) -> None:
    """One sender's end (the service's, or the FastAGI process ``number``'s): everything it
    sent is answered; closing its socket says so."""
    if partial:
        who = f"the FastAGI process {number}" if number else "the service"
        log.error("%s's last line was cut short (%d bytes); it was not stored", who, len(partial))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def line_of(number: int, event: CallEvent) -> bytes:
    """What the service sends for one event: its number and its row, tab-separated (the id
    as a JSON string; the payload is JSON, whose strings carry no raw tab or line break)."""
    event_id, kind, payload, created_at = row_of(event)
    return f"{number}\t{_QUOTE(event_id)}\t{kind}\t{created_at!r}\t{payload}\n".encode()


def answer(box: Outbox, lines: list[bytes]) -> bytes:
    """Commit the events of ``lines`` as one group; the answers, a line each. The rows go in
    as the service made them: the writer neither parses the events nor writes them again."""
    return answer_each(box, [(None, line) for line in lines]).get(None, (b"", False))[0]


def answer_each(box: Outbox, lines: Sequence[tuple[T, bytes]]) -> dict[T, tuple[bytes, bool]]:
    """Commit the events of ``lines`` (each with whom it came from) as one group; for each
    sender, its answers (a line each) and whether any of its events was stored now."""
    senders: list[T] = []
    numbers: list[bytes] = []
    rows: list[Row] = []
    answers: dict[T, list[bytes]] = {}
    for sender, line in lines:
        number, _, rest = line.partition(b"\t")
        if not number.isdigit():  # nobody to answer
            log.error("the outbox writer got a line without a number (%d bytes)", len(line))
            continue
        try:
            ident, kind, created_at, payload = rest.split(b"\t", 3)
            event_id = json.loads(ident)
            if not isinstance(event_id, str):
                raise ValueError(event_id)
            rows.append((event_id, kind.decode(), payload.decode(), float(created_at)))
        except ValueError:  # UnicodeDecodeError too
            answers.setdefault(sender, []).append(
                number + b" " + FAILED + b" " + _quoted(_UNREADABLE)
            )
            continue
        senders.append(sender)
        numbers.append(number)
    stored: set[T] = set()
    if rows:
        outcomes = commit_group(box.enqueue_rows, rows)
        for sender, number, outcome in zip(senders, numbers, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                reply = number + b" " + FAILED + b" " + _quoted(outcome)
            else:
                reply = number + b" " + (STORED if outcome else THERE)
                if outcome:
                    stored.add(sender)
            answers.setdefault(sender, []).append(reply)
    return {
        sender: (b"".join(line + b"\n" for line in told), sender in stored)
        for sender, told in answers.items()
    }


def _quoted(exc: BaseException) -> bytes:
    return json.dumps(str(exc) or type(exc).__name__, ensure_ascii=True).encode("ascii")


def main() -> int:
    """The child: read the settings, open the outbox, commit until every sender has ended."""
    config = read_config("the outbox writer")
    if config is None:
        return 2
    from pbxgate.notify.service import open_outbox  # noqa: PLC0415
    from pbxgate.notify.settings import NotifySettings  # noqa: PLC0415

    try:
        socks = [socket.socket(fileno=int(fd)) for fd in sys.argv[1:]]
        if not socks:
            raise ValueError("none given")
    except (ValueError, OSError) as exc:
        print(f"error: the outbox writer got no socket: {exc}", file=sys.stderr)
        return 2
    try:
        box = open_outbox(config["settings"].get(NotifySettings))
    except Exception as exc:
        say_error(exc)
        return 1
    say(b"ready")
    try:
        serve(socks, box)
    except OSError as exc:
        log.warning("the outbox writer stops: %s", exc)
    finally:
        box.close()
        for sock in socks:
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
