"""The Asterisk Manager Interface (AMI, TCP 5038) as a sans-I/O protocol: bytes in, messages out.

Asterisk greets with one line (``Asterisk Call Manager/9.0.0``), then every message is a block
of ``Key: Value`` lines ending with an empty line, CRLF-terminated (``main/manager.c``
``astman_append``/``send_string``). A block with ``Response:`` answers an action (it carries
the action's ``ActionID``); a block with ``Event:`` is an event. A list action such as
``CoreShowChannels`` answers ``Response: Success`` / ``EventList: start``, then one event per
item, then an event whose ``EventList`` is ``Complete``, all with the action's ``ActionID``.

The same key may repeat (``ChanVariable``, ``Output`` of a ``Command``): a message keeps every
header in order and :meth:`Message.get` gives the first. Lines without a colon are kept under
the empty key rather than refused: a manager may print them (old ``Response: Follows``).
Limits keep a hostile or broken peer from growing memory: a line over ``max_line`` bytes or a
message of more than ``max_headers`` headers ends the session with :class:`AmiProtocolError`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pbxgate.errors import PbxgateError

MAX_LINE = 64 * 1024
MAX_HEADERS = 4096


class AmiProtocolError(PbxgateError):
    """The peer broke the protocol (or is not an Asterisk manager)."""


@dataclass(frozen=True)
class Greeting:
    """The manager's first line: ``Asterisk Call Manager/<version>``."""

    version: str


@dataclass(frozen=True)
class Message:
    """One AMI block: a response or an event, its headers in order."""

    headers: tuple[tuple[str, str], ...]
    _index: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for key, value in self.headers:
            self._index.setdefault(key.lower(), value)

    def get(self, key: str, default: str = "") -> str:
        """The first value of ``key`` (case-insensitive, as Asterisk compares them)."""
        return self._index.get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._index

    def all(self, key: str) -> list[str]:
        lowered = key.lower()
        return [v for k, v in self.headers if k.lower() == lowered]

    @property
    def event(self) -> str:
        return self.get("Event")

    @property
    def response(self) -> str:
        return self.get("Response")

    @property
    def action_id(self) -> str:
        return self.get("ActionID")

    def as_dict(self) -> dict[str, str]:
        """The headers as a dict (the first value of a repeated key)."""
        out: dict[str, str] = {}
        for key, value in self.headers:
            out.setdefault(key, value)
        return out


@dataclass(frozen=True)
class NeedData:
    """Nothing complete yet: feed more bytes."""


@dataclass(frozen=True)
class Closed:
    """The peer closed the connection (after the messages already returned)."""


Event = Greeting | Message | NeedData | Closed

# Headers whose values never appear in logs or errors.
SECRET_KEYS = frozenset({"secret", "key"})


class AmiSession:
    """Parses what the manager sends and formats what we send; no sockets, no clock."""

    def __init__(self, *, max_line: int = MAX_LINE, max_headers: int = MAX_HEADERS) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self._buffer = bytearray()
        self._greeted = False
        self._headers: list[tuple[str, str]] = []
        self._eof = False
        self._closed_returned = False

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket; ``b""`` means the peer closed."""
        if not data:
            self._eof = True
            return
        self._buffer += data
        if len(self._buffer) > self.max_line and self._buffer.find(b"\n") < 0:
            raise AmiProtocolError(f"a line of over {self.max_line} bytes from the manager")

    def next_event(self) -> Event:
        """The next complete greeting or message, :class:`NeedData`, or :class:`Closed`."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if self._eof:
                    if self._buffer or self._headers:
                        self._buffer.clear()
                        self._headers = []
                        raise AmiProtocolError("the manager closed the connection mid-message")
                    return Closed()
                return NeedData()
            if end > self.max_line:
                raise AmiProtocolError(f"a line of over {self.max_line} bytes from the manager")
            raw = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not self._greeted:
                self._greeted = True
                if not line.startswith("Asterisk Call Manager/"):
                    raise AmiProtocolError(f"not an Asterisk manager: {line[:80]!r}")
                return Greeting(line.partition("/")[2])
            if not line:
                if not self._headers:
                    continue  # blank lines between messages
                message = Message(tuple(self._headers))
                self._headers = []
                return message
            key, colon, value = line.partition(":")
            if not colon:
                key, value = "", line
            self._headers.append((key.strip(), value.strip()))
            if len(self._headers) > self.max_headers:
                raise AmiProtocolError(f"a message of over {self.max_headers} headers")

    def events(self) -> Iterator[Greeting | Message]:
        """Every complete greeting and message buffered now."""
        while isinstance(item := self.next_event(), Greeting | Message):
            yield item


def format_action(
    name: str,
    action_id: str,
    fields: Mapping[str, str | int] | None = None,
    variables: Mapping[str, str] | None = None,
) -> bytes:
    """An action block. Values must not hold a line break: one would end the header early and
    let the rest be read as headers of the caller's choosing (header injection)."""
    lines = [("Action", name), ("ActionID", action_id)]
    lines += [(k, str(v)) for k, v in (fields or {}).items()]
    lines += [("Variable", f"{k}={v}") for k, v in (variables or {}).items()]
    out = []
    for key, value in lines:
        if any(c in key or c in value for c in "\r\n"):
            raise ValueError(f"AMI {name}: a line break in {key}")
        out.append(f"{key}: {value}\r\n")
    out.append("\r\n")
    return "".join(out).encode()


def redacted(fields: Mapping[str, str | int]) -> dict[str, str]:
    """``fields`` as they may be logged: secrets replaced."""
    return {k: ("***" if k.lower() in SECRET_KEYS else str(v)) for k, v in fields.items()}


__all__ = [
    "MAX_HEADERS",
    "MAX_LINE",
    "AmiProtocolError",
    "AmiSession",
    "Closed",
    "Greeting",
    "Message",
    "NeedData",
    "format_action",
    "redacted",
]
