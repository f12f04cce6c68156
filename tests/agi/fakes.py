"""A simulated Asterisk for FastAGI tests: connects, sends an environment, answers commands."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pbxgate.notify.events import CallEvent


def environment(
    script: str = "notify?x=1",
    *,
    uniqueid: str = "1795696980.9",
    callerid: str = "84991111111",
    name: bytes = b"Oleg Ivanov",
    extension: str = "100",
    dnid: str = "unknown",
) -> bytes:
    """An environment block shaped like the one captured from Asterisk 22.10.1."""
    lines = [
        b"agi_network: yes",
        b"agi_network_script: " + script.encode(),
        b"agi_request: agi://127.0.0.1:4573/" + script.encode(),
        b"agi_channel: PJSIP/trunk-00000004",
        b"agi_language: ru",
        b"agi_type: PJSIP",
        b"agi_uniqueid: " + uniqueid.encode(),
        b"agi_version: 22.10.1",
        b"agi_callerid: " + callerid.encode(),
        b"agi_calleridname: " + name,
        b"agi_dnid: " + dnid.encode(),
        b"agi_rdnis: unknown",
        b"agi_context: from-trunk",
        b"agi_extension: " + extension.encode(),
        b"agi_priority: 1",
        b"agi_enhanced: 0.0",
        b"agi_accountcode: ",
        b"agi_threadid: 140301540607680",
    ]
    return b"\n".join(lines) + b"\n\n"


Responder = Callable[[bytes], bytes]


def channel_responder(values: dict[str, str]) -> Responder:
    """Answers like Asterisk on a channel holding ``values``: ``GET VARIABLE`` (an unset name:
    result=0), ``GET FULL VARIABLE "<expression>"`` (every ``${NAME}`` replaced, an unset one by
    nothing: res_agi.c handle_getvariablefull), everything else 200 result=1."""

    def respond(line: bytes) -> bytes:
        command, _, quoted = line.decode().strip().partition(' "')
        argument = re.sub(r"\\(.)", r"\1", quoted[:-1])  # as res_agi.c parse_args()
        if command == "GET FULL VARIABLE":
            text = re.sub(r"\$\{([^}]*)\}", lambda m: values.get(m.group(1), ""), argument)
            return b"200 result=1 (%s)\n" % text.encode()
        if command == "GET VARIABLE":
            value = values.get(argument, "")
            return b"200 result=1 (%s)\n" % value.encode() if value else b"200 result=0\n"
        return b"200 result=1\n"

    return respond


def default_responder(linkedid: str = "", dialstatus: str = "") -> Responder:
    """:func:`channel_responder` for a channel with this linkedid and DIALSTATUS."""
    return channel_responder({"CHANNEL(linkedid)": linkedid, "DIALSTATUS": dialstatus})


async def fake_asterisk(
    port: int, env: bytes, respond: Responder | None = None, *, host: str = "127.0.0.1"
) -> list[bytes]:
    """One AGI() call: the command lines the server sent, in order, until it closed."""
    respond = respond or default_responder()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(env)
    commands: list[bytes] = []
    try:
        while line := await reader.readline():
            commands.append(line)
            writer.write(respond(line))
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return commands


@dataclass
class RecordingAccept:
    """Stands in for ``pbxgate.notify.service.accept``: records events, dedupes by event_id."""

    events: list[CallEvent] = field(default_factory=list)
    fail: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: CallEvent) -> bool:
        if self.fail:
            raise OSError("disk full")
        with self._lock:
            if any(e.event_id == event.event_id for e in self.events):
                return False
            self.events.append(event)
            return True
