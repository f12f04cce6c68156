"""Asterisk's queue_log: one line per queue event, and each queued call's journey.

A line is ``time|callid|queue|agent|event|data1|data2|...`` (main/logger.c ``ast_queue_log``:
Unix seconds, the caller channel's uniqueid or ``NONE``/``MANAGER``/``CLI``/``REALTIME`` for
events of no call, the queue name or ``NONE``, the member's name or ``NONE``). What the data
fields mean depends on the event; :data:`FIELDS` names them as Asterisk 22's app_queue.c writes
them (older versions write fewer: a missing field reads as empty). An event pbxgate does not
know is kept with its fields unnamed, never an error; a line that is not a queue_log line at all
is one (:class:`pbxgate.errors.InputError`, with its line number).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from pbxgate.errors import InputError

# app_queue.c (Asterisk 22.10.1), the ast_queue_log() call of each event.
FIELDS: dict[str, tuple[str, ...]] = {
    "ENTERQUEUE": ("url", "callerid", "position", "callername"),  # callername: log_caller_id_name
    "CONNECT": ("holdtime", "bridged_uniqueid", "ringtime"),  # ringtime since Asterisk 1.6
    "COMPLETECALLER": ("holdtime", "calltime", "origposition"),
    "COMPLETEAGENT": ("holdtime", "calltime", "origposition"),
    "ABANDON": ("position", "origposition", "waittime"),
    "EXITWITHTIMEOUT": ("position", "origposition", "waittime"),
    "EXITEMPTY": ("position", "origposition", "waittime"),
    "EXITWITHKEY": ("key", "position", "origposition", "waittime"),
    "WITHDRAW": ("position", "origposition", "waittime", "info"),
    "RINGNOANSWER": ("ringtime_ms",),
    "RINGCANCELED": ("ringtime_ms",),
    "BLINDTRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),
    # BRIDGE|<bridge>, APP|<app> or LINK|<channel>|<channel>, then these three: read from the end
    "ATTENDEDTRANSFER": ("method", "target", "holdtime", "calltime", "origposition"),
    "TRANSFER": ("extension", "context", "holdtime", "calltime", "origposition"),  # before 12
    "AGENTLOGIN": ("channel",),
    "AGENTLOGOFF": ("channel", "logintime"),
    "ADDMEMBER": ("paused",),
    "REMOVEMEMBER": (),
    "PAUSE": ("reason",),
    "UNPAUSE": ("reason",),
    "PAUSEALL": ("reason",),
    "UNPAUSEALL": ("reason",),
    "PENALTY": ("penalty",),
    "RINGINUSE": ("ringinuse",),
    "DID": ("did",),  # the dialplan's QueueLog(), as FreePBX writes it
    "QUEUESTART": (),
    "CONFIGRELOAD": (),
    "AGENTDUMP": (),
    "SYSCOMPAT": (),
}
# Events whose last fields are these, however many come before them.
FROM_END = {"ATTENDEDTRANSFER": ("holdtime", "calltime", "origposition")}
NO_CALL = frozenset({"NONE", "MANAGER", "CLI", "REALTIME", ""})
# How a queued call left the queue.
ANSWERED, ABANDONED, TIMEOUT, KEY, EMPTY, WITHDRAWN, UNKNOWN = (
    "answered", "abandoned", "timeout", "key", "empty", "withdrawn", "in queue"
)  # fmt: skip
_EXITS = {
    "ABANDON": ABANDONED,
    "EXITWITHTIMEOUT": TIMEOUT,
    "EXITWITHKEY": KEY,
    "EXITEMPTY": EMPTY,
    "WITHDRAW": WITHDRAWN,
}


@dataclass(frozen=True)
class QueueLogLine:
    time: int
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.event in FIELDS

    def get(self, name: str) -> str:
        """A data field by its name (:data:`FIELDS`); empty when this version did not write it."""
        tail = FROM_END.get(self.event, ())
        if name in tail:
            index = len(self.data) - len(tail) + tail.index(name)
            return self.data[index] if index >= 1 else ""
        names = FIELDS.get(self.event, ())
        if name not in names:
            return ""
        index = names.index(name)
        return self.data[index] if index < len(self.data) else ""

    def number(self, name: str) -> int:
        text = self.get(name)
        try:
            return int(text)
        except ValueError:
            return 0


def parse_line(text: str, lineno: int = 0) -> QueueLogLine:
    parts = text.rstrip("\r\n").split("|")
    where = f"line {lineno}: " if lineno else ""
    if len(parts) < 5:
        raise InputError(f"{where}not a queue_log line (time|callid|queue|agent|event|...)")
    try:
        when = int(parts[0])
    except ValueError:
        raise InputError(f"{where}the time {parts[0][:20]!r} is not Unix seconds") from None
    return QueueLogLine(when, parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def read_lines(lines: Iterable[str]) -> Iterator[QueueLogLine]:
    """Parse a queue_log's lines (blank ones skipped); raises on the first that is not one."""
    for number, text in enumerate(lines, 1):
        if text.strip():
            yield parse_line(text, number)


@dataclass
class QueuedCall:
    """One call's way through a queue."""

    callid: str
    queue: str
    entered_at: int
    caller: str = ""
    outcome: str = UNKNOWN
    agent: str = ""  # who answered
    wait: int = 0  # seconds in the queue until answered or gone
    talk: int = 0  # seconds with the agent
    left_at: int = 0
    position: int = 0  # where it entered the queue
    rang: list[tuple[str, str, int]] = field(default_factory=list)  # (agent, event, ms)
    transferred_to: str = ""
    completed: bool = False  # the talk's end was seen (COMPLETE* or a transfer)

    def as_row(self) -> dict[str, object]:
        return {
            "callid": self.callid,
            "queue": self.queue,
            "entered_at": self.entered_at,
            "caller": self.caller,
            "outcome": self.outcome,
            "agent": self.agent,
            "wait": self.wait,
            "talk": self.talk,
            "position": self.position,
            "rang": [{"agent": a, "result": e, "ms": ms} for a, e, ms in self.rang],
            "transferred_to": self.transferred_to,
            "completed": self.completed,
        }


def journeys(lines: Iterable[QueueLogLine]) -> list[QueuedCall]:
    """Each queued call (an ENTERQUEUE) with what happened to it, in the order they entered.
    A call that entered a second queue (or the same one again) is a second journey; a line
    goes to the journey of its call in its queue (a COMPLETEAGENT logged after the caller
    already entered the next queue still belongs to the first)."""
    calls: list[QueuedCall] = []
    current: dict[tuple[str, str], QueuedCall] = {}
    for line in lines:
        if line.callid in NO_CALL:
            continue
        if line.event == "ENTERQUEUE":
            entered = QueuedCall(line.callid, line.queue, line.time, line.get("callerid"),
                                 position=line.number("position"))  # fmt: skip
            current[(line.callid, line.queue)] = entered
            calls.append(entered)
            continue
        found = current.get((line.callid, line.queue))
        if found is None:
            continue  # its ENTERQUEUE is in an earlier file
        call = found
        if line.event in ("RINGNOANSWER", "RINGCANCELED"):
            call.rang.append((line.agent, line.event, line.number("ringtime_ms")))
        elif line.event == "CONNECT":
            call.outcome, call.agent = ANSWERED, line.agent
            call.wait = line.number("holdtime")
        elif line.event in ("COMPLETECALLER", "COMPLETEAGENT"):
            call.talk, call.left_at, call.completed = line.number("calltime"), line.time, True
            del current[(line.callid, line.queue)]
        elif line.event in ("BLINDTRANSFER", "ATTENDEDTRANSFER", "TRANSFER"):
            call.talk, call.left_at, call.completed = line.number("calltime"), line.time, True
            call.transferred_to = line.get("extension") or line.get("target")
            del current[(line.callid, line.queue)]
        elif line.event in _EXITS:
            call.outcome, call.left_at = _EXITS[line.event], line.time
            call.wait = line.number("waittime")
            del current[(line.callid, line.queue)]
    return calls


__all__ = [
    "ABANDONED",
    "ANSWERED",
    "EMPTY",
    "FIELDS",
    "KEY",
    "TIMEOUT",
    "UNKNOWN",
    "WITHDRAWN",
    "QueueLogLine",
    "QueuedCall",
    "journeys",
    "parse_line",
    "read_lines",
]
