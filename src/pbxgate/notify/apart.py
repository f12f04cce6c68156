"""The delivery worker in a process of its own, beside ``pbxgate serve``'s FastAGI.

A worker on a thread of the FastAGI process shares its interpreter lock: while it renders and
sends a backlog (500 deliveries to a VK that answers in a second), every call in flight waits
for it a few milliseconds at a time, and its transactions hold the outbox's write lock while
they wait for the interpreter lock in turn. In a process of its own the worker has its own
interpreter, and the FastAGI side keeps its loop. :class:`ChildProcess` is what the worker and
the outbox writer (:mod:`pbxgate.notify.writer`) share.

The two talk through two pipes and nothing else:

* the child's standard input: first the settings (length-prefixed pickle, from the service to
  its own child: they may carry secrets, so never the command line), then a byte when a
  commit stored something new (it wakes the worker at once rather than at its next poll; at
  most one every :data:`WAKE_GAP`, the commits meanwhile waking it at the end of the gap),
  and end of file to stop, so a ``pbxgate serve`` that dies, even by SIGKILL, stops its worker
  (it finishes the sends in flight and records them, as when it is stopped: within
  :data:`WORKER_STOP_WAIT` seconds, then the sends still going are cut, to go again);
* the child's standard output: ``ready`` once it holds the outbox's worker lock (the outbox
  writer: once it has opened the outbox), or, when it
  cannot work, one line ``error`` and a JSON record of the reason (the same one-line error a
  worker thread would raise: its kind among pbxgate's errors, its message and hint; nothing the
  parent would run).

The child ignores SIGINT and SIGTERM (from before its module is imported:
:mod:`pbxgate.notify.child`): a Ctrl-C in a terminal or systemd's SIGTERM reach the whole
process group, and the service stops its worker last, after the calls in progress have been
committed. One of them that arrives while the child's interpreter is still starting, before it
can ignore them, ends it: that is a stop when the service was told to stop too (within half a
second), else a failure like any other killed worker. The child runs with ``-P``: the
service's working directory is not on its import path. Its log lines go to the same standard
error, at the service's log level.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import pickle
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

from pbxgate import errors
from pbxgate.config import Settings
from pbxgate.errors import DeliveryError, PbxgateError

log = logging.getLogger(__name__)

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # as the CLI's
_HEADER = struct.Struct("!Q")
# How a stop that reached the child before it could ignore it ends it, and how long the service
# has to see the same stop before that counts as the worker failing.
_STOP_SIGNALS = frozenset({-signal.SIGTERM, -signal.SIGINT})
STOP_GRACE = 0.5
# Seconds a service that is ending anyway waits for a child it gives up on, before it kills it
# and ends without it.
CANCEL_WAIT = 5.0
# Seconds the delivery worker's sends in flight get once it is told to stop (a server that
# does not answer, a rate limit's wait); those still going then are cut: their rows stay
# claimed and go again, under the same idempotency key, when a worker next starts on the outbox
# (at once) or their lease runs out (another node). Here, where the service reads it without
# importing the worker (pbxgate.notify.worker).
WORKER_STOP_WAIT = 10.0
# Wake-ups closer together than this are one (seconds): the first goes at once, the others as
# one at the end of the gap. At thousands of commits a second a wake-up each was a system call
# on the FastAGI loop and a pass of the worker each; a notification waits at most this longer.
WAKE_GAP = 0.005
# The kinds of error a worker's reason may name (anything else comes back as DeliveryError).
_KINDS: dict[str, type[PbxgateError]] = {
    kind.__name__: kind
    for kind in (
        errors.PbxgateError,
        errors.ConfigError,
        errors.SourceError,
        errors.InputError,
        errors.DeliveryError,
    )
}


class ChildProcess:
    """A child of ``pbxgate serve`` (``python -P -m pbxgate.notify.child <module>``: see
    :mod:`pbxgate.notify.child`) that gets the service's
    settings through its standard input and says ``ready`` or why not on its standard output:
    :meth:`start`, :meth:`started` and :attr:`finished` (its end: None, or why it could not
    work). Subclasses name the module and what the child is, and may hand it descriptors."""

    module = __name__
    what = "the delivery worker process"

    def __init__(
        self, settings: Settings, *, uvloop: bool = False, stopping: asyncio.Event | None = None
    ) -> None:
        self.settings = settings
        self.uvloop = uvloop
        self.stopping = stopping  # the service's stop: a stop signal that ended the child too
        self._loop = asyncio.get_running_loop()
        self.finished: asyncio.Future[None] = self._loop.create_future()
        # a failure nobody waited for (the service failed first) is not worth a warning
        self.finished.add_done_callback(_retrieve)
        self._ready: asyncio.Future[None] = self._loop.create_future()
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopped_because = ""  # why the service killed it, when it did

    def _handed(self) -> tuple[int, ...]:
        """Descriptors the child inherits (their numbers follow the module on its command
        line)."""
        return ()

    def _settings_sent(self, fd: int) -> None:
        """The child's input once the settings are in it: closed, unless a subclass keeps it."""
        os.close(fd)

    def _input_lost(self) -> None:
        """The child has ended, or the service gives up on it."""

    def _clean_end(self) -> BaseException | None:
        """What an exit with status 0 means: None when the service asked for it."""
        return None

    def _said(self, line: bytes) -> BaseException | None:
        """One line the child said: ``ready``, ``error`` and why (returned), or another."""
        word, _, rest = line.strip().partition(b" ")
        if word == b"ready" and not self._ready.done():
            self._ready.set_result(None)
        elif word == b"error":
            return _loads_error(rest, self.what)
        elif word != b"ready":
            self._heard(word, rest)
        return None

    def _heard(self, word: bytes, rest: bytes) -> None:
        """Any other line the child says (a FastAGI process's counts as it ends)."""

    async def start(self) -> None:
        read_fd, write_fd = os.pipe()
        handed = self._handed()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",  # not the working directory's modules
                "-m",
                "pbxgate.notify.child",  # stop signals ignored before anything is imported
                self.module,
                *(str(fd) for fd in handed),
                stdin=read_fd,
                stdout=asyncio.subprocess.PIPE,
                pass_fds=handed,
            )
        except BaseException as exc:
            os.close(write_fd)
            if isinstance(exc, OSError):
                raise DeliveryError(f"cannot start {self.what}: {exc}") from exc
            raise
        finally:
            os.close(read_fd)
        self.pid = proc.pid
        self._proc = proc
        self._watch = asyncio.ensure_future(self._follow(proc))
        blob = pickle.dumps(
            {
                # a fresh copy: what the sections parsed stays behind
                "settings": Settings(
                    self.settings.raw, path=self.settings.path, environ=self.settings.environ
                ),
                "level": logging.getLogger().getEffectiveLevel(),
                "uvloop": self.uvloop,
            }
        )
        # larger than the pipe's buffer when the environment is: written off the loop; the
        # descriptor is closed only once that thread is done with it
        writing = self._loop.run_in_executor(
            None, _write_all, write_fd, _HEADER.pack(len(blob)) + blob
        )
        try:
            await asyncio.shield(writing)
        except BrokenPipeError:  # it died at once: _follow says why
            os.close(write_fd)
            return
        except BaseException:
            writing.add_done_callback(lambda _: os.close(write_fd))
            raise
        self._settings_sent(write_fd)

    def kill(self) -> None:
        """End the child at once (SIGKILL), if it is running."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def started(self) -> None:
        """Once the child holds the outbox (or has ended)."""
        await asyncio.wait([self._ready, self.finished], return_when=asyncio.FIRST_COMPLETED)

    async def _follow(self, proc: asyncio.subprocess.Process) -> None:
        """Read the child's word (ready, or why not), then wait for it to end."""
        assert proc.stdout is not None
        error: BaseException | None = None
        try:
            try:
                async for line in proc.stdout:
                    error = self._said(line) or error
            except ValueError:  # a line past the stream's limit: not the worker's word
                error = DeliveryError(f"{self.what} said something unreadable")
                proc.kill()
            code = await proc.wait()
        except asyncio.CancelledError:  # with the service: the child is told to stop
            self._input_lost()
            try:
                await asyncio.wait_for(proc.wait(), CANCEL_WAIT)
            except TimeoutError:  # nor does the service wait for ever (a disk wait)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            self.finished.cancel()
            raise
        finally:
            self._input_lost()
        if error is None and code == 0:
            error = self._clean_end()
        elif error is None and code in _STOP_SIGNALS and await self._told_to_stop():
            log.info("%s was stopped as it started", self.what)
        elif error is None and code != 0:
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            error = DeliveryError(self._stopped_because or f"{self.what} {how}")
        if self.finished.done():  # the service gave up on it first (a writer that was stuck)
            return
        if error is None:
            self.finished.set_result(None)
        else:
            self.finished.set_exception(error)

    async def _told_to_stop(self) -> bool:
        """Whether the service is stopping too (its own handler of the same signal may run a
        moment after the child's end is seen)."""
        if self.stopping is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), STOP_GRACE)
        return self.stopping.is_set()


class WorkerProcess(ChildProcess):
    """``pbxgate serve``'s delivery worker as a child process (``python -m
    pbxgate.notify.apart``): :meth:`wake`, callable from any thread, and :meth:`stop`."""

    def __init__(
        self, settings: Settings, *, uvloop: bool = False, stopping: asyncio.Event | None = None
    ) -> None:
        super().__init__(settings, uvloop=uvloop, stopping=stopping)
        self._wake_fd: int | None = None
        self._wake_lock = threading.Lock()
        self._loop_thread = threading.get_ident()
        self._quiet_until = 0.0  # (monotonic) a wake-up before this waits for it
        self._wake_owed = False  # one is due at _quiet_until
        self._asked = False  # to stop

    def _clean_end(self) -> BaseException | None:
        # the service would go on without delivering, and exit 0: systemd would not restart it
        return None if self._asked else DeliveryError(f"{self.what} ended on its own")

    def _settings_sent(self, fd: int) -> None:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)  # wake() never blocks
        with self._wake_lock:  # from now on wake() may write: the settings are all there
            self._wake_fd = fd

    def wake(self) -> None:
        """Tell the worker something new is in the outbox (any thread; never blocks). The
        first wake-up goes at once; those within :data:`WAKE_GAP` of it go as one at its end."""
        with self._wake_lock:
            fd = self._wake_fd
            if fd is None or self._wake_owed:
                return  # stopped, or a wake-up is on its way
            now = time.monotonic()
            if now >= self._quiet_until:
                self._send_wake(fd, now)
                return
            self._wake_owed = True
            delay = self._quiet_until - now
        try:
            if threading.get_ident() == self._loop_thread:
                self._loop.call_later(delay, self._owed_wake)
            else:  # the fallback commit thread: the gap's end is reckoned on the loop
                self._loop.call_soon_threadsafe(self._owe)
        except RuntimeError:  # the loop has closed: the service has stopped
            with self._wake_lock:
                self._wake_owed = False

    def _owe(self) -> None:
        self._loop.call_later(max(0.0, self._quiet_until - time.monotonic()), self._owed_wake)

    def _owed_wake(self) -> None:
        with self._wake_lock:
            self._wake_owed = False
            if self._wake_fd is not None:
                self._send_wake(self._wake_fd, time.monotonic())

    def _send_wake(self, fd: int, now: float) -> None:
        self._quiet_until = now + WAKE_GAP
        # a full pipe holds wake-ups enough; a worker that has gone is seen by _follow
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(fd, b"w")

    async def stop(self, wait: float | None = None) -> None:
        """Tell the worker to stop (end of its input), and wait for it: its sends in flight
        get :data:`WORKER_STOP_WAIT` seconds, its close a few more (a database that does not
        answer), or ``wait`` seconds in all when that is less; one that has not ended by then
        is killed, and the stop says so."""
        self._asked = True
        self._input_lost()
        if self._watch is None:
            return
        most = WORKER_STOP_WAIT + CANCEL_WAIT
        wait = most if wait is None else min(wait, most)
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), wait)
        except TimeoutError:
            self._stopped_because = f"{self.what} did not stop in {wait:.3g} s; it was killed"
            self.kill()
            await asyncio.shield(self.finished)

    def _input_lost(self) -> None:
        with self._wake_lock:
            if self._wake_fd is not None:
                os.close(self._wake_fd)
                self._wake_fd = None


def _retrieve(finished: asyncio.Future[None]) -> None:
    if not finished.cancelled():
        finished.exception()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            raise EOFError("the service closed its input before the settings")
        chunks += chunk
    return bytes(chunks)


def _dumps_error(exc: BaseException) -> bytes:
    """The reason as one line of JSON: the kind of pbxgate error, its message and hint."""
    if isinstance(exc, PbxgateError):
        # the nearest kind the service knows: a ConfigError of any area exits as one
        kind = next(k for k in type(exc).__mro__ if _KINDS.get(k.__name__) is k)
        record = {
            "kind": kind.__name__,
            "message": exc.message,
            "hint": exc.hint,
            "exit_code": exc.exit_code,
        }
    else:
        record = {"kind": "DeliveryError", "message": str(exc) or type(exc).__name__}
    return json.dumps(record, ensure_ascii=True).encode("ascii")


def _loads_error(data: bytes, what: str = ChildProcess.what) -> BaseException:
    try:
        record = json.loads(data)
        message = str(record["message"])
        hint = record.get("hint")
        kind = _KINDS.get(str(record.get("kind")), DeliveryError)
        code = int(record.get("exit_code", kind.exit_code))
    except (ValueError, KeyError, TypeError, AttributeError):
        return DeliveryError(f"{what} failed (its reason was unreadable)")
    error = kind(message, hint=None if hint is None else str(hint))
    error.exit_code = code  # the area's own (an AGI error exits with 6)
    return error


class _Control(asyncio.Protocol):
    """The child's side of its input: a byte wakes the worker, the end stops it."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop

    def data_received(self, data: bytes) -> None:
        from pbxgate.notify.service import wake_workers  # noqa: PLC0415

        wake_workers()

    def eof_received(self) -> bool:
        self.stop.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop.set()


async def _work(settings: Settings) -> None:
    from pbxgate.notify.service import run_worker  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(
        lambda: _Control(stop), os.fdopen(0, "rb", buffering=0)
    )
    try:
        await run_worker(settings, stop, on_started=lambda: say(b"ready"))
    finally:
        transport.close()


def read_config(what: str) -> dict[str, Any] | None:
    """The child's side: the settings the service wrote to its input (None, said on standard
    error, when they did not come); stop signals are ignored from here on."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        (size,) = _HEADER.unpack(_read_exactly(0, _HEADER.size))
        # from the service that started this process, through a pipe only it holds
        config: dict[str, Any] = pickle.loads(_read_exactly(0, size))  # noqa: S301
    except (EOFError, OSError, pickle.UnpicklingError, struct.error) as exc:
        print(f"error: {what} got no settings: {exc}", file=sys.stderr)
        return None
    logging.basicConfig(level=config["level"], format=LOG_FORMAT)
    return config


def loop_factory(config: dict[str, Any]) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The child's event loop: uvloop's when the service runs on it (and it is installed)."""
    if config["uvloop"]:
        with contextlib.suppress(ImportError):
            import uvloop  # noqa: PLC0415

            new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return new_loop
    return None


def say(line: bytes) -> None:
    """A line to the service (the child's standard output): ``ready``, or ``error`` and why.
    Nobody to say it to when the service has died: it goes nowhere, and so does all that
    follows (not a traceback, nor a second one as the interpreter ends)."""
    out = sys.stdout.buffer
    try:
        out.write(line + b"\n")
        out.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def say_error(exc: BaseException) -> None:
    say(b"error " + _dumps_error(exc))


def main() -> int:
    """The child: read the settings, then deliver until the input ends."""
    config = read_config("the delivery worker")
    if config is None:
        return 2
    return run_child(config, _work(config["settings"]))


def run_child(config: dict[str, Any], work: Coroutine[Any, Any, None]) -> int:
    """Run a child's ``work`` on its loop (:func:`loop_factory`); its exit status, why it
    could not work said to the service (:func:`say_error`)."""
    try:
        with asyncio.Runner(loop_factory=loop_factory(config)) as runner:
            runner.run(work)
    except Exception as exc:
        say_error(exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
