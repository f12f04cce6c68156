"""VK: ``messages.send`` with a stable ``random_id``, errors sorted into retry and dead letter.

Request (https://dev.vk.com/ru/api/api-requests): POST form-encoded to
``<api_base>/method/messages.send`` with ``peer_id``, ``message``, ``random_id`` and ``v``; the
token travels in the ``Authorization: Bearer`` header, never in the URL, so no logged URL holds
it. VK answers HTTP 200 with ``{"response": message_id}`` or ``{"error": {"error_code": N,
"error_msg": "..."}}``.

``random_id`` is VK's "unique identifier to avoid resending the message" (required since 5.90):
every retry of one delivery must carry the same value (VK then shows the message once), and two
deliveries must never share one (VK would silently drop the second). It is the delivery's
number from the outbox (:class:`~pbxgate.notify.channels.base.Key`): a positive 31-bit integer
(the bots page types it int32), stored, so the same in every process, and distinct for every
delivery of the outbox. A hash of the key was used before: 31 bits of it collide about once in
2,000 messages to one peer (birthday bound), and VK then drops a message.

A message that follows its call is changed with ``messages.edit`` (``peer_id``, ``message_id``
from the send's answer, ``message``; VK answers ``{"response": 1}``). VK edits a message for 24
hours after it was sent (error 909 "Can't edit this message, because it's too old"); a message
its recipient deleted, or one VK will not edit, answers 15, 100, 104 or 920: the message then
stays as it was, and nothing is sent again.
"""

from __future__ import annotations

import hashlib
import logging

import httpx

from pbxgate.notify.channels.base import Dead, Gone, Message, Outcome, Retry, Sent
from pbxgate.notify.logmask import guarded
from pbxgate.notify.ratelimit import AsyncLimiter, SendWindow
from pbxgate.notify.settings import VkSettings

log = logging.getLogger(__name__)

CHAT_PEER_BASE = 2_000_000_000  # messages.send: peer_id = 2000000000 + chat_id for a chat
MAX_MESSAGE = 9000  # messages.send: message is at most 9000 characters
# Requests are paced at 90% of the configured limit: with even spacing, 20 intervals then span
# 1.11 s instead of exactly 1 s, so network jitter does not put 21 requests into one of VK's
# one-second windows (measured: pacing at exactly 20/s provoked error 6). A second guard counts
# real send times: never more than the limit within WINDOW seconds, even after a stall.
HEADROOM = 0.9
WINDOW = 1.15
EDIT_WINDOW = 24 * 3600.0  # messages.edit: error 909 for a message older than this

# VK error codes (schema errors.json, reference/vk.md §6) that are worth retrying later.
TRANSIENT = {
    1: "unknown error on VK's side",
    6: "too many requests per second",
    9: "flood control: too many identical requests",
    10: "internal server error at VK",
    29: "the method's daily rate limit is reached",
}
# Codes that will not get better by themselves, in plain words, with what to do.
PERMANENT = {
    5: "the token was rejected (user authorization failed); create a new token",
    7: "the token lacks the permission to send messages; give it the messages right",
    8: "VK rejected the request (check api_version, at least 5.81)",
    14: (
        "VK asks for a captcha, which an unattended notifier cannot solve; this happens to user "
        "tokens that send a lot: switch to a community token, then run pbxgate notify retry"
    ),
    15: "access denied: this token cannot call messages.send (a community token can)",
    18: "the recipient's page is deleted or banned",
    100: "a parameter is missing or invalid (check the recipient id)",
    113: "invalid user id",
    900: "the recipient has blacklisted the sender",
    901: (
        "the user has not allowed messages from this community "
        "(they must write to it or press 'Allow messages' first)"
    ),
    902: "the user's privacy settings forbid messages from this sender",
    914: "the message is too long",
    917: "you don't have access to this chat (add the community to the chat)",
}
# messages.edit: codes that mean the message itself cannot be edited (any more); a token or
# request problem (5, 7, 8, 14) stays a dead letter for the admin.
EDIT_GONE = {
    15: "VK denies editing it (deleted by its recipient?)",
    100: "VK no longer knows the message (deleted by its recipient?)",
    104: "VK no longer knows the message",
    909: "VK edits a message only within 24 hours of sending it",
    920: "VK cannot edit this kind of message",
}


# error 15's subcodes for a token, not a message: method_permission_denied,
# app_type_permission_denied
TOKEN_DENIED = (1133, 1134)


def random_id(key: str) -> int:
    """The delivery's number when ``key`` carries one; else (a test message, which has no
    outbox row) a positive 31-bit integer from the key's hash. Never 0: VK treats 0 as "no
    deduplication"."""
    number = getattr(key, "number", 0)
    if number:
        return int(number)
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF
    return value or 1


def peer_id(recipient: str) -> int:
    """``123`` or ``user:123`` -> 123; ``chat:5`` -> 2000000005; ``group:7`` or ``-7`` -> -7."""
    text = recipient.strip().lower()
    kind, _, num = text.rpartition(":")
    try:
        value = int(num)
    except ValueError:
        raise ValueError(f"{recipient!r} is not a VK recipient (123, chat:5, group:7)") from None
    if kind in ("", "user", "id"):
        return value
    if kind == "chat" and value > 0:
        return CHAT_PEER_BASE + value
    if kind in ("group", "club", "community") and value > 0:
        return -value
    raise ValueError(f"{recipient!r} is not a VK recipient (123, chat:5, group:7)")


def classify(body: object, *, editing: bool = False) -> Outcome:
    """Turn a decoded VK answer (to ``messages.send``, or with ``editing`` to
    ``messages.edit``) into an outcome."""
    if not isinstance(body, dict):
        return Retry("VK answered with something that is not a JSON object")
    if "response" in body:
        if editing:
            return Sent("VK edited the message")
        mid = body["response"]
        ref = str(mid) if isinstance(mid, int) and not isinstance(mid, bool) and mid > 0 else ""
        return Sent(f"VK message id {mid}", ref=ref)
    error = body.get("error")
    if not isinstance(error, dict):
        return Retry("VK answered without response or error")
    code = int(error.get("error_code", 0) or 0)
    vk_text = str(error.get("error_msg", ""))[:200]
    if code in TRANSIENT:
        return Retry(f"VK error {code}: {TRANSIENT[code]} [VK: {vk_text}]")
    if code == 15 and error.get("error_subcode") in TOKEN_DENIED:
        # the token may not call the method (reference/vk.md: subcodes 1133, 1134): not a
        # message its recipient deleted, but the admin's to fix
        what = "messages.edit" if editing else "messages.send"
        return Dead(f"VK error 15: this token may not call {what} [VK: {vk_text}]")
    if editing and code in EDIT_GONE:
        return Gone(f"not edited: VK error {code}: {EDIT_GONE[code]} [VK: {vk_text}]")
    plain = PERMANENT.get(code, "VK refused the message")
    return Dead(f"VK error {code}: {plain} [VK: {vk_text}]")


class VkChannel:
    name = "vk"
    edit_window: float | None = EDIT_WINDOW

    def __init__(
        self,
        settings: VkSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        limiter: AsyncLimiter | None = None,
    ) -> None:
        self._token = guarded(settings.token)
        self.settings = settings
        self.url = settings.api_base.rstrip("/") + "/method/messages.send"
        self.edit_url = settings.api_base.rstrip("/") + "/method/messages.edit"
        rate = settings.effective_rate()
        guard = SendWindow(max(1, int(rate)), WINDOW)
        self.limiter = limiter or AsyncLimiter(rate * HEADROOM, window=guard)
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        form = {"random_id": str(random_id(key))}
        return await self._call(self.url, message, recipient, form, editing=False)

    async def edit(self, message: Message, recipient: str, ref: str, key: str) -> Outcome:
        form = {"message_id": ref}
        return await self._call(self.edit_url, message, recipient, form, editing=True)

    async def _call(
        self, url: str, message: Message, recipient: str, extra: dict[str, str], *, editing: bool
    ) -> Outcome:
        if not self._token:
            return Dead("no VK token configured ([notify.vk] token, token_file or token_env)")
        try:
            peer = peer_id(recipient)
        except ValueError as exc:
            return Dead(str(exc))
        form = {
            "peer_id": str(peer),
            "message": message.text[:MAX_MESSAGE],
            **extra,
            "v": self.settings.api_version,
        }
        return await self._post(url, form, editing=editing)

    async def _post(self, url: str, form: dict[str, str], *, editing: bool) -> Outcome:
        headers = {"Authorization": f"Bearer {self._token.reveal()}"}
        await self.limiter.acquire()
        try:
            resp = await self._client.post(url, data=form, headers=headers)
        except httpx.TimeoutException:
            return Retry(f"no answer from {httpx.URL(url).host} in time")
        except httpx.TransportError as exc:
            # the class only: some errors quote the request, the token's header included
            return Retry(f"network error talking to {httpx.URL(url).host}: {type(exc).__name__}")
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            return Retry(f"HTTP {resp.status_code} from {resp.url.host}")
        if resp.status_code != 200:
            return Dead(f"HTTP {resp.status_code} from {resp.url.host} (check api_base)")
        try:
            body = resp.json()
        except ValueError:
            return Retry(f"VK answered with invalid JSON (HTTP {resp.status_code})")
        return classify(body, editing=editing)

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = [
    "EDIT_GONE",
    "EDIT_WINDOW",
    "PERMANENT",
    "TRANSIENT",
    "VkChannel",
    "classify",
    "peer_id",
    "random_id",
]
