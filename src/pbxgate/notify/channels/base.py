"""What every channel implements, and the three outcomes of one delivery attempt.

A channel translates its transport's failures once, here at the edge, into ``Retry`` (worth
trying again later: network errors, rate limits, server errors) or ``Dead`` (will never work
without a human: bad token, no permission, unknown recipient). Reasons are plain words and
never contain a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pbxgate.notify.events import CallEvent


@dataclass(frozen=True)
class Message:
    text: str
    subject: str
    event: CallEvent


@dataclass(frozen=True)
class Sent:
    detail: str = ""
    ref: str = ""  # the message's id at the channel (VK message_id), for later edits


@dataclass(frozen=True)
class Gone:
    """The message can no longer be edited (its recipient deleted it; the channel's edit
    window has passed): the call's later states are not shown, and nothing is resent."""

    reason: str


@dataclass(frozen=True)
class Retry:
    reason: str
    after: float = 0.0  # the least number of seconds to wait (a server's retry_after)


@dataclass(frozen=True)
class Dead:
    reason: str


Outcome = Sent | Retry | Dead | Gone


class Key(str):
    """An idempotency key (``"<event_id>|<channel>|<recipient>"``) with the delivery's number:
    a positive 31-bit integer the outbox gives each delivery, the same on every attempt and in
    every process, and different for every delivery of that outbox (VK's ``random_id``)."""

    number: int

    def __new__(cls, text: str, number: int = 0) -> Key:
        key = super().__new__(cls, text)
        key.number = number
        return key


class Channel(Protocol):
    name: str

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        """Deliver ``message`` to ``recipient``; ``key`` is stable across retries (idempotency)."""
        ...

    async def aclose(self) -> None: ...


class EditingChannel(Channel, Protocol):
    """A channel whose messages can follow a call: the first state is sent, the later ones
    replace it (VK, Telegram: an edit of the message; a webhook: another POST for the call)."""

    # Seconds after sending during which the channel accepts edits (None: no limit).
    edit_window: float | None

    async def edit(self, message: Message, recipient: str, ref: str, key: str) -> Outcome:
        """Show ``message`` in place of the one whose id is ``ref``."""
        ...


def can_edit(channel: Channel) -> bool:
    return callable(getattr(channel, "edit", None))


__all__ = [
    "Channel",
    "Dead",
    "EditingChannel",
    "Gone",
    "Key",
    "Message",
    "Outcome",
    "Retry",
    "Sent",
    "can_edit",
]
