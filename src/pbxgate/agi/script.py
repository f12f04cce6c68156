"""``pbxgate-agi``: the process-AGI script, for ``AGI(/usr/local/bin/pbxgate-agi,notify)``.

Asterisk forks the script with the environment block on stdin and reads commands from its
stdout; **the dialplan waits until the script exits** (res_agi.c ``run_agi()`` then a blocking
``waitpid``). So the script does the least it can: read the block, ask for what the dialplan did
not pass (``GET VARIABLE``, several names in one ``GET FULL VARIABLE``), commit the event to the
outbox (``pbxgate.notify.service.accept``: a local SQLite commit, never a network call), set
``PBXGATE_EVENT`` and exit. ``pbxgate serve`` delivers later.

Rules it keeps (reference/agi.md §2, §5, §6):

* SIGHUP is ignored: Asterisk sends it on hangup, and its default action would kill the
  script between the event and the commit;
* stdout carries AGI commands only: ``sys.stdout`` is pointed at stderr, so a stray ``print``
  cannot become a ``510`` reply; diagnostics go to stderr (Asterisk's console) and, for
  failures, to syslog;
* imports stay lean (no click, httpx, jinja2, sqlalchemy): interpreter start-up is most of the
  time the call is held;
* an event that cannot be queued is not lost silently: one line with the event's JSON goes to
  stderr and syslog, ``PBXGATE_EVENT`` is ``failed`` and the exit status is 1, which Asterisk
  turns into ``AGISTATUS=FAILURE`` (the dialplan can fall back, see docs/agi.md).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType

from pbxgate.agi.calls import Skip, VariableReads, build_event, parse_request
from pbxgate.agi.errors import AgiError, ProtocolError
from pbxgate.agi.protocol import AgiSession, ConnectionClosed, Environment, NeedData, Reply, State
from pbxgate.agi.settings import AgiSettings
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.notify.events import CallEvent

PROG = "pbxgate-agi"
HELP = f"""\
usage: {PROG} [notify|missed] [key=value ...]

Process-AGI script for Asterisk: queues a call event in pbxgate's outbox and returns to the
dialplan at once. Asterisk runs it; it reads the AGI environment on stdin. Settings come from
$PBXGATE_CONFIG, ~/.config/pbxgate/config.toml or /etc/pbxgate/config.toml.

Example (extensions.conf):
  exten => _X.,1,AGI(/usr/local/bin/{PROG},notify)
  exten => h,1,AGI(/usr/local/bin/{PROG},missed,dialstatus=${{DIALSTATUS}})

Sets PBXGATE_EVENT to queued, skipped or failed; exits 1 (AGISTATUS=FAILURE) when the event
could not be queued.
"""

Accept = Callable[[CallEvent], bool]


@dataclass
class Pipe:
    """The script's two file descriptors to Asterisk (stdin and stdout)."""

    read_fd: int = 0
    write_fd: int = 1

    def read(self) -> bytes:
        return os.read(self.read_fd, 65536)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]


class Conversation:
    """The synchronous driver over :class:`AgiSession`."""

    def __init__(self, pipe: Pipe, session: AgiSession) -> None:
        self.pipe = pipe
        self.session = session
        self.timed_out = False  # the alarm went off while a reply was awaited

    def _next(self) -> object:
        while isinstance(event := self.session.next_event(), NeedData):
            self.session.receive_data(self.pipe.read())
        return event

    def environment(self) -> Environment:
        event = self._next()
        if not isinstance(event, Environment):  # pragma: no cover - the table forbids it
            raise ProtocolError("no AGI environment")
        return event

    def command(self, name: str, *args: str | int) -> Reply | None:
        """Send a command and return its reply; None when Asterisk is gone."""
        if self.session.state is not State.IDLE:
            return None
        try:
            self.pipe.write(self.session.send_command(name, *args))
            while True:
                event = self._next()
                if isinstance(event, Reply):
                    return event
                if isinstance(event, ConnectionClosed):  # pragma: no cover - table: error
                    return None
        except TimeoutError:  # the alarm (an OSError too): Asterisk is silent
            self.timed_out = True
            return None
        except (ProtocolError, OSError):
            return None


def run(
    pipe: Pipe,
    accept: Accept,
    agi: AgiSettings,
    *,
    clock: Callable[[], float] = time.time,
    report: Callable[[str], None] | None = None,
    on_timeout: Callable[[], None] | None = None,
) -> int:
    """One AGI run; the exit status (0, or 1 when the event could not be queued). When
    Asterisk fell silent while the names were read (the alarm went off), ``on_timeout`` runs
    before the commit: ``main`` gives the commit a time limit of its own again."""
    report = report or report_failure
    conv = Conversation(pipe, agi.new_session())
    env = conv.environment()
    request = parse_request(env)
    reads = VariableReads(request.missing(env))
    while (command := reads.next()) is not None:
        reads.answer(command, conv.command(*command))
    built = build_event(env, request, reads.variables, clock())
    if conv.timed_out and on_timeout is not None:
        on_timeout()
    status, outcome = 0, "skipped"
    if not isinstance(built, Skip):
        try:
            outcome = "queued" if accept(built) else "skipped"
        except Exception as exc:
            report(f"could not queue {built.event_id} ({exc}); event: {built.to_json()}")
            status, outcome = 1, "failed"
    if agi.result_variable:
        conv.command("SET VARIABLE", agi.result_variable, outcome)
    return status


def report_failure(line: str) -> None:
    """One line to stderr (Asterisk's console) and syslog (where a daemonised Asterisk's
    stderr is not seen)."""
    sys.stderr.write(f"{PROG}: {line}\n")
    sys.stderr.flush()
    try:
        import syslog  # noqa: PLC0415 - only on the failure path

        syslog.openlog(PROG, 0, syslog.LOG_DAEMON)
        syslog.syslog(syslog.LOG_ERR, line)
    except (ImportError, OSError):  # pragma: no cover - no syslog on this host
        pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    # Whatever is slow (Asterisk silent, the outbox locked), the call must not wait longer.
    raise TimeoutError("gave up after [agi] idle_timeout: Asterisk silent or the outbox stuck")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pbxgate-agi`` console script."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] in (["-h"], ["--help"]):
        sys.stdout.write(HELP)
        return 0
    # Asterisk signals a hangup with SIGHUP; we still want to commit the event (res_agi.c).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdout = sys.stderr  # nothing but AGI commands may reach fd 1
    if os.isatty(0):
        report_failure("is run by Asterisk (AGI); see --help")
        return 2
    settings, agi = _load_settings()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(agi.idle_timeout + 0.999)))
    # the alarm went off in a read: the commit gets a limit of its own (its failure is
    # reported with the whole event)
    budget = max(1, int(agi.commit_timeout + 0.999))

    def rearm() -> None:
        signal.alarm(budget)

    try:
        return run(Pipe(), _accept_with(settings), agi, on_timeout=rearm)
    except (AgiError, TimeoutError, PbxgateError) as exc:
        report_failure(str(exc))
        return 2
    except OSError as exc:  # stdin or stdout closed, not a pipe: not run by Asterisk
        report_failure(f"cannot talk to Asterisk on stdin/stdout: {exc.strerror or exc}")
        return 2
    finally:
        signal.alarm(0)


def _load_settings() -> tuple[Settings | PbxgateError, AgiSettings]:
    """The settings, or the error that accept() will report with the event."""
    try:
        settings = Settings.load()
        return settings, settings.get(AgiSettings)
    except PbxgateError as exc:
        return exc, AgiSettings()


def _accept_with(settings: Settings | PbxgateError) -> Accept:
    def accept(event: CallEvent) -> bool:
        if isinstance(settings, PbxgateError):
            raise settings
        from pbxgate.notify.service import accept as service_accept  # noqa: PLC0415

        return service_accept(settings, event)

    return accept


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
