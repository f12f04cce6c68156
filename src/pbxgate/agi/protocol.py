"""A sans-I/O AGI session: the script's side of an AGI or FastAGI conversation.

Theory of operation
-------------------
Asterisk opens every conversation with an *environment block* (res_agi.c ``setup_env()``):
``agi_<key>: <value>\\n`` lines ending with an empty line. FastAGI puts ``agi_network: yes`` and
``agi_network_script: <path?query>`` in front of it (``launch_netscript()``). The script then
writes one command per line and Asterisk answers each with one reply (``agi_handle_command()``)::

    200 result=<int>[ (<data>)][ endpos=<int>]     success
    510 Invalid or unknown command                 unknown command or module not loaded
    511 Command Not Permitted on a dead channel …  channel gone, command not dead-safe
    520-Invalid command syntax.  Proper usage follows:
    <usage text, several lines>
    520 End of proper usage.                       usage error (or one "520 …" line)

When the channel hangs up a FastAGI peer gets an inline ``HANGUP`` line, possibly before the
reply to a pending command (``run_agi()``; a local script gets SIGHUP instead).

:class:`AgiSession` is fed bytes with :meth:`AgiSession.receive_data` (``b""`` means EOF) and
hands back events from :meth:`AgiSession.next_event` (or all ready ones from
:meth:`AgiSession.events`); :meth:`AgiSession.send_command` returns the bytes of one command
line for the driver to write. It imports no socket, asyncio or clock: the stdin/stdout script
(:mod:`pbxgate.agi.script`) and the asyncio server (:mod:`pbxgate.agi.fastagi`) drive it.

States are the table :data:`TRANSITIONS`; :func:`transition` applies it and raises
:class:`LocalProtocolError` for an illegal input of ours (a command before the environment)
and :class:`RemoteProtocolError` for one of the peer's (EOF mid-environment, a reply nobody
asked for). Values are decoded leniently, see :func:`decode_value`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import NoReturn
from urllib.parse import unquote

from pbxgate.agi.errors import LocalProtocolError, RemoteProtocolError

# res_agi.c reads commands with fgets() into AGI_BUF_LEN bytes: 2048 up to 22.x, 8192 from
# 23.0.0 (commit 5f433e2442). A longer command would be cut, so we refuse to build one.
MAX_COMMAND_BYTES = 2048
# Caps on what we accept from the peer. The captured Asterisk 22 block is 512 bytes.
DEFAULT_MAX_LINE_BYTES = 8192
DEFAULT_MAX_HEADER_BYTES = 65536
# Legacy Russian PBXs and trunks send caller names in Windows-1251; see decode_value().
DEFAULT_FALLBACK_ENCODING = "cp1251"
# res_agi.c setup_env(): these keys carry the literal "unknown" when the value is not valid.
UNKNOWN_MEANS_ABSENT = frozenset({"agi_callerid", "agi_calleridname", "agi_dnid", "agi_rdnis"})
USAGE_END_LINE = "520 End of proper usage."

_REPLY_200 = re.compile(r"200 result=(-?\d+)(?: \((.*)\))?(?: endpos=(-?\d+))?")
_REPLY_CODE = re.compile(r"(\d{3})(?: (.*))?")
_ENV_KEY = re.compile(rb"agi_[A-Za-z0-9_]+")
_BLOCK_END = re.compile(rb"\n\r?\n")
# One environment line, anchored at a line start; the one space after ":" is syntax.
_ENV_PAIR = re.compile(r"^(agi_[A-Za-z0-9_]+): ?([^\n]*)\n", re.MULTILINE)
_COMMAND_WORDS = re.compile(r"[A-Za-z][A-Za-z ]*[A-Za-z]|[A-Za-z]")
_GOOD_COMMANDS: set[str] = set()  # names that passed _COMMAND_WORDS


# StrEnum: a transition is a dict lookup by (state, input) for every line of every session,
# and str's hash is C where Enum's is Python.
class State(enum.StrEnum):
    ENVIRONMENT = "environment"  # reading the agi_* block
    IDLE = "idle"  # block read, no command outstanding
    AWAITING_REPLY = "awaiting-reply"  # a command was sent
    USAGE = "usage"  # inside a multi-line 520 reply
    CLOSED = "closed"  # the peer closed at a clean point
    ERROR = "error"  # a protocol error happened; the session is unusable


class Input(enum.StrEnum):
    ENV_LINE = "environment line"
    ENV_END = "end of environment"
    SEND = "send command"  # the only input that comes from our side
    REPLY = "reply"
    USAGE_START = "520 usage start"
    USAGE_LINE = "520 usage line"
    USAGE_END = "520 usage end"
    HANGUP = "HANGUP"
    EOF = "EOF"


TRANSITIONS: Mapping[tuple[State, Input], State] = {
    (State.ENVIRONMENT, Input.ENV_LINE): State.ENVIRONMENT,
    (State.ENVIRONMENT, Input.ENV_END): State.IDLE,
    (State.IDLE, Input.SEND): State.AWAITING_REPLY,
    (State.IDLE, Input.HANGUP): State.IDLE,
    (State.IDLE, Input.EOF): State.CLOSED,
    (State.AWAITING_REPLY, Input.REPLY): State.IDLE,
    (State.AWAITING_REPLY, Input.USAGE_START): State.USAGE,
    (State.AWAITING_REPLY, Input.HANGUP): State.AWAITING_REPLY,
    (State.USAGE, Input.USAGE_LINE): State.USAGE,
    (State.USAGE, Input.USAGE_END): State.IDLE,
    (State.CLOSED, Input.EOF): State.CLOSED,
}

LOCAL_INPUTS = frozenset({Input.SEND})

_WHY: Mapping[tuple[State, Input], str] = {
    (State.ENVIRONMENT, Input.EOF): "connection closed before the end of the AGI environment",
    (State.AWAITING_REPLY, Input.EOF): "connection closed while waiting for a reply",
    (State.USAGE, Input.EOF): "connection closed inside a 520 usage reply",
    (State.IDLE, Input.REPLY): "reply received with no command outstanding",
    (State.IDLE, Input.USAGE_START): "520 reply received with no command outstanding",
    (State.ENVIRONMENT, Input.SEND): "cannot send a command before the environment is read",
    (State.AWAITING_REPLY, Input.SEND): "cannot send a command while one awaits its reply",
    (State.USAGE, Input.SEND): "cannot send a command while a 520 reply is being read",
    (State.CLOSED, Input.SEND): "cannot send a command: the peer closed the connection",
}


def transition(state: State, inp: Input) -> State:
    """The state after ``inp`` in ``state``; an illegal pair raises, naming both."""
    new = TRANSITIONS.get((state, inp))
    if new is not None:
        return new
    why = _WHY.get((state, inp), f"{inp.value} not allowed in state {state.value}")
    if inp in LOCAL_INPUTS:
        raise LocalProtocolError(why)
    raise RemoteProtocolError(why)


def decode_value(raw: bytes, fallback: str = DEFAULT_FALLBACK_ENCODING) -> str:
    """Decode a value Asterisk copied from the channel without transcoding.

    Valid UTF-8 is decoded as such. A value that is valid UTF-8 except for a multi-byte
    character cut at its end (a caller name truncated by the trunk, ``…K129\\xd0``; panoramisk
    PR #106) loses only that partial character. Anything else is decoded with ``fallback``
    (Windows-1251 by default: legacy Russian equipment), and undecodable bytes become U+FFFD;
    ``fallback=""`` means UTF-8 with U+FFFD replacement.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":
            return raw[: exc.start].decode("utf-8")
        return raw.decode(fallback or "utf-8", errors="replace")


@dataclass(frozen=True)
class Environment:
    """The agi_* block. ``variables`` keeps every key as sent (``agi_callerid`` …)."""

    variables: Mapping[str, str]

    def get(self, name: str, default: str = "") -> str:
        """A value by key (``callerid`` or ``agi_callerid``); ``unknown`` reads as absent."""
        key = name if name.startswith("agi_") else "agi_" + name
        value = self.variables.get(key)
        if value is None or (key in UNKNOWN_MEANS_ABSENT and value == "unknown"):
            return default
        return value

    @property
    def network(self) -> bool:
        """True for FastAGI (``agi_network: yes``), False for a local script."""
        return self.variables.get("agi_network") == "yes"

    @property
    def script(self) -> str:
        """The FastAGI script path without query string (``notify``), else ``agi_request``."""
        if self.network:
            return self.variables.get("agi_network_script", "").partition("?")[0].strip("/")
        return self.variables.get("agi_request", "")

    @property
    def query(self) -> tuple[tuple[str, str], ...]:
        """The FastAGI query string, parsed (``notify?x=1`` gives ``(("x", "1"),)``).

        Asterisk passes the dialplan's text as is, so ``+`` stays a plus (``did=+74951234567``)
        rather than becoming a space as in HTML forms; ``%XX`` escapes are decoded.
        """
        _, _, qs = self.variables.get("agi_network_script", "").partition("?")
        pairs = []
        for item in qs.split("&"):
            if item:
                key, _, value = item.partition("=")
                pairs.append((unquote(key), unquote(value)))
        return tuple(pairs)

    @property
    def args(self) -> tuple[str, ...]:
        """The dialplan arguments ``agi_arg_1`` … ``agi_arg_N``, in order."""
        out: list[str] = []
        while (value := self.variables.get(f"agi_arg_{len(out) + 1}")) is not None:
            out.append(value)
        return tuple(out)


@dataclass(frozen=True)
class Reply:
    """One reply to a command. ``result``/``data``/``endpos`` are set on 200 replies."""

    code: int
    text: str = ""
    result: int | None = None
    data: str | None = None
    endpos: int | None = None
    usage: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code == 200


@dataclass(frozen=True)
class Hangup:
    """Asterisk's inline ``HANGUP`` line: the channel is gone (only dead-safe commands work)."""


@dataclass(frozen=True)
class ConnectionClosed:
    """The peer closed the connection at a clean point (no command outstanding)."""


class NeedData:
    """Returned by :meth:`AgiSession.next_event` when more bytes are needed."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()

Event = Environment | Reply | Hangup | ConnectionClosed


@dataclass
class _Pending:
    """Partial results while a multi-line item is read."""

    first_line_checked: bool = False
    usage_first: str = ""
    usage: list[str] = field(default_factory=list)
    usage_bytes: int = 0


class AgiSession:
    """One AGI conversation seen from the script: feed bytes, read events, build commands."""

    def __init__(
        self,
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
        max_command_bytes: int = MAX_COMMAND_BYTES,
        fallback_encoding: str = DEFAULT_FALLBACK_ENCODING,
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self.max_header_bytes = max_header_bytes
        self.max_command_bytes = max_command_bytes
        self.fallback_encoding = fallback_encoding
        self.state = State.ENVIRONMENT
        self.hung_up = False
        self.environment: Environment | None = None
        self._buffer = bytearray()
        self._scan_from = 0
        self._eof = False
        self._pending = _Pending()

    # -- receiving -------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet turned into events."""
        return len(self._buffer)

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; ``b""`` marks the end of the stream."""
        if self._eof:
            if data:
                raise LocalProtocolError("received data after EOF")
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_event(self) -> Event | NeedData:
        """The next complete event, or :data:`NEED_DATA`."""
        while True:
            if self.state is State.ERROR:
                raise RemoteProtocolError("the AGI session already failed")
            if self.state is State.ENVIRONMENT:
                env = self._consume_environment()
                if env is None:
                    return self._no_line()
                return env
            line = self._take_line()
            if line is None:
                return self._no_line()
            event = self._handle_line(line)
            if event is not None:
                return event

    def events(self) -> Iterator[Event]:
        """Every event that is complete now."""
        while not isinstance(event := self.next_event(), NeedData):
            yield event
            if isinstance(event, ConnectionClosed):
                return

    def _take_line(self) -> bytes | None:
        end = self._buffer.find(b"\n", self._scan_from)
        if end < 0:
            self._scan_from = len(self._buffer)
            if len(self._buffer) > self.max_line_bytes:
                self._fail(f"line longer than {self.max_line_bytes} bytes")
            return None
        if end > self.max_line_bytes:
            self._fail(f"line longer than {self.max_line_bytes} bytes")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scan_from = 0
        return line[:-1] if line.endswith(b"\r") else line

    def _no_line(self) -> Event | NeedData:
        if not self._eof:
            return NEED_DATA
        if self._buffer and not self._buffer.endswith(b"\n"):
            self._fail("connection closed in the middle of a line")
        self._apply(Input.EOF)
        return ConnectionClosed()

    def _handle_line(self, line: bytes) -> Event | None:
        if self.state is State.USAGE:
            return self._usage_line(line)
        if line == b"HANGUP":
            self._apply(Input.HANGUP)
            self.hung_up = True
            return Hangup()
        text = self._decode(line)
        if text.startswith("520-"):
            self._apply(Input.USAGE_START)
            self._pending.usage_first = text[4:]
            self._pending.usage_bytes = len(line) + 1
            return None
        reply = self._parse_reply(text)
        self._apply(Input.REPLY)
        return reply

    def _consume_environment(self) -> Environment | None:
        """The environment once its blank line has arrived; checks caps on the way.

        The block is where a FastAGI server spends its parsing time (22 lines per call), so it
        is split in one pass once complete. The first line is checked as soon as it arrives,
        so a peer that is not Asterisk (an HTTP probe) is dropped at once.
        """
        buf = self._buffer
        if buf[:1] == b"\n" or buf[:2] == b"\r\n":
            end, size = 0, buf.index(b"\n") + 1
        else:
            match = _BLOCK_END.search(buf, self._scan_from)
            if match is None:
                self._check_partial_environment()
                return None
            end, size = match.start(), match.end()
        if size > self.max_header_bytes:
            self._fail(f"AGI environment larger than {self.max_header_bytes} bytes")
        block = bytes(buf[:end])
        lines = block.split(b"\n") if end else []
        del buf[:size]
        self._scan_from = 0
        if lines and max(map(len, lines)) > self.max_line_bytes:
            self._fail(f"line longer than {self.max_line_bytes} bytes")
        env = _fast_environment(block, len(lines))
        if env is None:  # not plain UTF-8 with LF endings, or a malformed line: line by line
            env = {}
            for line in lines:
                key, value = self._environment_line(line[:-1] if line[-1:] == b"\r" else line)
                env[key] = value
        if lines:
            self._apply(Input.ENV_LINE)
        self._apply(Input.ENV_END)
        self.environment = Environment(env)
        return self.environment

    def _check_partial_environment(self) -> None:
        buf = self._buffer
        if len(buf) > self.max_header_bytes:
            self._fail(f"AGI environment larger than {self.max_header_bytes} bytes")
        last = buf.rfind(b"\n")
        if len(buf) - last - 1 > self.max_line_bytes:
            self._fail(f"line longer than {self.max_line_bytes} bytes")
        if last >= 0 and not self._pending.first_line_checked:
            first = bytes(buf[: buf.index(b"\n")])
            self._environment_line(first[:-1] if first[-1:] == b"\r" else first)
            self._pending.first_line_checked = True
        # The blank line can straddle two reads: rescan from just before the old end.
        self._scan_from = max(0, len(buf) - 2)

    def _environment_line(self, line: bytes) -> tuple[str, str]:
        key, sep, value = line.partition(b":")
        if not sep or _ENV_KEY.fullmatch(key) is None:
            self._fail(f"malformed AGI environment line {self._preview(line)}")
        # setup_env() writes "key: value"; only that one space belongs to the syntax.
        return key.decode("ascii"), self._decode(value[1:] if value[:1] == b" " else value)

    def _usage_line(self, line: bytes) -> Event | None:
        pending = self._pending
        pending.usage_bytes += len(line) + 1
        if pending.usage_bytes > self.max_header_bytes:
            self._fail(f"520 usage reply larger than {self.max_header_bytes} bytes")
        text = self._decode(line)
        if text == USAGE_END_LINE:
            self._apply(Input.USAGE_END)
            reply = Reply(520, text=pending.usage_first, usage=tuple(pending.usage))
            pending.usage = []
            return reply
        self._apply(Input.USAGE_LINE)
        pending.usage.append(text)
        return None

    def _parse_reply(self, text: str) -> Reply:
        if text.startswith("200"):
            match = _REPLY_200.fullmatch(text)
            if match is None:
                self._fail(f"malformed 200 reply {text[:80]!r}")
            result, data, endpos = match.groups()
            return Reply(
                200,
                text=text[4:],
                result=int(result),
                data=data,
                endpos=None if endpos is None else int(endpos),
            )
        code = _REPLY_CODE.fullmatch(text)
        if code is None:
            self._fail(f"malformed AGI reply {text[:80]!r}")
        return Reply(int(code.group(1)), text=code.group(2) or "")

    # -- sending ---------------------------------------------------------------------------

    def send_command(self, command: str, *args: str | int) -> bytes:
        """The bytes of one command line; strings are quoted, integers written bare.

        ``send_command("SET VARIABLE", "PBXGATE_EVENT", "queued")`` gives
        ``b'SET VARIABLE "PBXGATE_EVENT" "queued"\\n'``. res_agi.c ``parse_args()`` splits on
        whitespace, groups ``"…"`` and lets a backslash escape the next character; a newline
        cannot be carried at all, so an argument with one is refused.
        """
        if command not in _GOOD_COMMANDS:
            if not _COMMAND_WORDS.fullmatch(command):
                raise LocalProtocolError(f"not an AGI command name: {command[:40]!r}")
            if len(_GOOD_COMMANDS) < 256:  # the names a program uses: a handful
                _GOOD_COMMANDS.add(command)
        parts = [command.upper()]
        for arg in args:
            parts.append(_quote(arg))
        line = (" ".join(parts) + "\n").encode("utf-8")
        if len(line) > self.max_command_bytes:
            raise LocalProtocolError(
                f"{parts[0]} command is {len(line)} bytes; Asterisk reads at most "
                f"{self.max_command_bytes}"
            )
        self._apply(Input.SEND)
        return line

    # -- helpers ---------------------------------------------------------------------------

    def _apply(self, inp: Input) -> None:
        try:
            self.state = transition(self.state, inp)
        except RemoteProtocolError:
            self.state = State.ERROR
            raise

    def _fail(self, reason: str) -> NoReturn:
        self.state = State.ERROR
        raise RemoteProtocolError(reason)

    def _decode(self, raw: bytes) -> str:
        return decode_value(raw, self.fallback_encoding)

    @staticmethod
    def _preview(line: bytes) -> str:
        return repr(line[:60])


def _fast_environment(block: bytes, count: int) -> dict[str, str] | None:
    """The common case in one regex pass: valid UTF-8, LF endings, every line well formed."""
    if not count or b"\r" in block:
        return None
    try:
        text = block.decode("utf-8") + "\n"
    except UnicodeDecodeError:
        return None
    pairs = _ENV_PAIR.findall(text)
    return dict(pairs) if len(pairs) == count else None


def _quote(arg: str | int) -> str:
    if isinstance(arg, bool) or not isinstance(arg, str | int):
        raise LocalProtocolError(f"AGI arguments are str or int, not {type(arg).__name__}")
    if isinstance(arg, int):
        return str(arg)
    if "\n" in arg or "\r" in arg or "\0" in arg:
        raise LocalProtocolError("an AGI argument cannot contain a newline, CR or NUL")
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = [
    "DEFAULT_FALLBACK_ENCODING",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "MAX_COMMAND_BYTES",
    "NEED_DATA",
    "TRANSITIONS",
    "AgiSession",
    "ConnectionClosed",
    "Environment",
    "Event",
    "Hangup",
    "Input",
    "NeedData",
    "Reply",
    "State",
    "decode_value",
    "transition",
]
