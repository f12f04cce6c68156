"""From an AGI environment to a :class:`~pbxgate.notify.events.CallEvent` (no I/O).

Both drivers (the ``pbxgate-agi`` script and the FastAGI server) do the same three steps:

1. :func:`parse_request` turns the route (``notify`` / ``missed``) and its parameters
   (FastAGI query string ``?linkedid=…&dialstatus=…``, or script arguments ``key=value``)
   into a :class:`CallRequest`;
2. they ask Asterisk for the names :meth:`CallRequest.missing` returns
   (``CHANNEL(linkedid)``, ``DIALSTATUS``, where the dialled number is kept): two or more in
   one ``GET FULL VARIABLE``, one with ``GET VARIABLE`` (:class:`VariableReads`); both are
   dead-safe, so they work in the ``h`` extension and in hangup handlers (res_agi.c
   dead-safe list);
3. :func:`build_event` makes the event, or says why there is none.

Missed calls, and why a ring group answered elsewhere is not one: ``Dial()`` sets
``DIALSTATUS`` on the channel that dialled (apps/app_dial.c). A ring group's member legs
never carry the group's verdict: only the call's first channel does, and that channel's
``uniqueid`` equals the call's ``linkedid``. So a "missed" AGI run counts only when
DIALSTATUS is a not-answered status *and* it runs on the first channel; runs on other legs
(FreePBX issue-tracker #734 "answered elsewhere", #449) are skipped. Every run for one call
shares the event id ``missed:<linkedid>``, so even a dialplan that runs it twice yields one
message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pbxgate.agi.errors import RouteError
from pbxgate.agi.protocol import Environment, Reply
from pbxgate.notify.events import INCOMING, MISSED, CallEvent

GET_ONE, GET_TOGETHER = "GET VARIABLE", "GET FULL VARIABLE"
# Between the values of one GET FULL VARIABLE: a value that holds it makes the answer split in
# more parts than names, and the names are then read one by one.
JOINER = "|"
# Route name (FastAGI script path, or the script's first argument) -> event kind.
ROUTES: Mapping[str, str] = {"notify": INCOMING, "incoming": INCOMING, "missed": MISSED}
LINKEDID_VAR = "CHANNEL(linkedid)"
DIALSTATUS_VAR = "DIALSTATUS"
# Where the number the caller dialled is kept when the AGI runs somewhere else than the inbound
# route (the h extension, a hangup handler: extension h or s): FreePBX's inherited FROM_DID,
# then the CDR's did (FreePBX's inbound routes set both), in that order.
DID_VARS = ("FROM_DID", "CDR(did)")
# apps/app_dial.c DIALSTATUS values that mean nobody answered.
NOT_ANSWERED = frozenset({"NOANSWER", "BUSY", "CANCEL", "CHANUNAVAIL", "CONGESTION"})
# Parameters the builder reads itself; every other one travels in CallEvent.extra.
KNOWN_PARAMS = frozenset({"linkedid", "dialstatus", "did", "pbx"})


@dataclass(frozen=True)
class CallRequest:
    kind: str
    params: tuple[tuple[str, str], ...]

    def param(self, name: str) -> str:
        for key, value in self.params:  # the first; a loop, not a generator: on every call
            if key == name:
                return value
        return ""

    def missing(self, env: Environment | None = None) -> list[str]:
        """Channel variables to read (:class:`VariableReads`) before :func:`build_event`: the
        linkedid and DIALSTATUS when not passed, and where the dialled number is kept when
        ``env`` (the AGI environment) does not give one (no dnid, extension h or s)."""
        wanted = []
        if not self.param("linkedid"):
            wanted.append(LINKEDID_VAR)
        if self.kind == MISSED and not self.param("dialstatus"):
            wanted.append(DIALSTATUS_VAR)
        if env is not None and not self.param("did") and not dialled_number(env):
            wanted.extend(DID_VARS)
        return wanted


@dataclass(frozen=True)
class Skip:
    """No event for this AGI run, and why (shown in logs and the result variable)."""

    reason: str


def route_kind(route: str) -> str:
    kind = ROUTES.get(route.strip("/").lower())
    if kind is None:
        raise RouteError(f"no AGI handler for {route!r}", hint="use notify or missed")
    return kind


def parse_request(env: Environment) -> CallRequest:
    """The route and parameters of a FastAGI request or a script run."""
    if env.network:
        params = list(env.query)
        route = env.script
        args = env.args
    else:  # AGI(/usr/local/bin/pbxgate-agi,notify,key=value,...)
        params = []
        route = env.args[0] if env.args else "notify"
        args = env.args[1:]
    for index, arg in enumerate(args, start=1):
        key, sep, value = arg.partition("=")
        params.append((key.strip().lower(), value) if sep else (f"arg_{index}", arg))
    return CallRequest(kind=route_kind(route), params=tuple(params))


class VariableReads:
    """The commands that read the names :meth:`CallRequest.missing` returns, and what they
    answered (no I/O: each driver sends them). Two or more names go in one ``GET FULL
    VARIABLE``, whose expression joins them with :data:`JOINER`; one name, or an answer that
    does not split into one part per name (a value holds the joiner; an Asterisk that
    refused the command), goes with ``GET VARIABLE`` a name.

    Every command is a round trip to the call's own thread in Asterisk. On a PBX busy with a
    burst of calls that thread waits for a core each time (a burst of 50 inbound calls on
    the test office: tens of milliseconds a round trip), and the call waits with it::

        reads = VariableReads(request.missing(env))
        while (command := reads.next()) is not None:
            reads.answer(command, send(*command))  # the Reply, or None: no answer
        build_event(env, request, reads.variables, now)
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.variables: dict[str, str] = {}  # an unset variable absent, or empty
        self._todo: list[tuple[str, str]] = (
            [(GET_TOGETHER, JOINER.join(f"${{{name}}}" for name in self.names))]
            if len(self.names) > 1
            else [(GET_ONE, name) for name in self.names]
        )

    def next(self) -> tuple[str, str] | None:
        """The next command (its name and argument), or None once everything is read."""
        return self._todo.pop(0) if self._todo else None

    def answer(self, command: tuple[str, str], reply: Reply | None) -> None:
        """What Asterisk answered to ``command`` (None: no answer, the peer gone)."""
        given = None
        if reply is not None and reply.ok and reply.result == 1:
            given = reply.data or ""
        if reply is None:  # the peer has gone, or is silent: nothing more to ask
            self._todo = []
        if command[0] == GET_ONE:
            if given is not None:
                self.variables[command[1]] = given
            return
        parts = [] if given is None else given.split(JOINER)
        if len(parts) == len(self.names):
            self.variables = {name: v for name, v in zip(self.names, parts, strict=True) if v}
        elif reply is not None:  # still there: one by one
            self._todo = [(GET_ONE, name) for name in self.names]


def build_event(
    env: Environment,
    request: CallRequest,
    variables: Mapping[str, str],
    now: float,
) -> CallEvent | Skip:
    """The event for this run; ``variables`` holds what Asterisk answered for
    :meth:`CallRequest.missing` (an unset variable absent or empty)."""
    uniqueid = env.get("uniqueid")
    linkedid = request.param("linkedid") or variables.get(LINKEDID_VAR, "") or uniqueid
    dialstatus = (request.param("dialstatus") or variables.get(DIALSTATUS_VAR, "")).upper()
    if request.kind == MISSED:
        skip = missed_skip_reason(dialstatus, uniqueid, linkedid)
        if skip is not None:
            return Skip(skip)
    extension = env.get("extension")
    return CallEvent(
        kind=request.kind,
        uniqueid=uniqueid,
        linkedid=linkedid,
        caller_number=env.get("callerid"),
        caller_name=env.get("calleridname"),
        did=request.param("did")
        or next((variables[v] for v in DID_VARS if variables.get(v)), "")
        or dialled_number(env),
        channel=env.get("channel"),
        context=env.get("context"),
        extension=extension,
        occurred_at=now,
        dialstatus=dialstatus if request.kind == MISSED else "",
        extra=extra_params(request.params),
        pbx=request.param("pbx"),
    )


def missed_skip_reason(dialstatus: str, uniqueid: str, linkedid: str) -> str | None:
    """None when the call was missed; else why this run is not a missed call."""
    if dialstatus == "ANSWER":
        return "answered"
    if dialstatus not in NOT_ANSWERED:
        return f"DIALSTATUS={dialstatus or 'unset'}"
    if uniqueid and linkedid and uniqueid != linkedid:
        return "not the call's first channel"
    return None


def dialled_number(env: Environment) -> str:
    """agi_dnid, else agi_extension when it is a number: ``h`` (the hangup extension), ``s``
    (a hangup handler's, a macro's), ``i``, ``t`` are not what the caller dialled."""
    dnid = env.get("dnid")
    if dnid:
        return dnid
    extension = env.get("extension")
    return extension if _NUMBER.fullmatch(extension) else ""


_NUMBER = re.compile(r"\+?[0-9*#]+")


def extra_params(params: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in params if k not in KNOWN_PARAMS)


__all__ = [
    "DIALSTATUS_VAR",
    "DID_VARS",
    "GET_ONE",
    "GET_TOGETHER",
    "JOINER",
    "LINKEDID_VAR",
    "NOT_ANSWERED",
    "ROUTES",
    "CallRequest",
    "Skip",
    "VariableReads",
    "build_event",
    "dialled_number",
    "missed_skip_reason",
    "parse_request",
    "route_kind",
]
