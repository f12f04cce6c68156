"""Telegram Bot API ``sendMessage`` (https://core.telegram.org/bots/api#sendmessage).

The bot token is part of the URL path (``/bot<token>/sendMessage``), so it is registered with
the log mask and never put into a reason. Telegram has no idempotency key: a worker killed after
Telegram accepted a message but before the outbox recorded it may send that message twice
(best effort, documented). Answers: ``{"ok": true, ...}`` or ``{"ok": false, "error_code": N,
"description": "...", "parameters": {"retry_after": S}}``; 429 carries ``retry_after``.

Telegram also limits each chat (about a message a second, 20 a minute in a group) and says so
with a 429 and its ``retry_after``: that chat's next requests are retried once it ends, without
a request each (which Telegram would refuse in turn). They do not wait in the channel: a pass of
the worker waits for its slowest delivery, and one chat would hold up every channel's.

A message that follows its call is changed with ``editMessageText`` (``chat_id``,
``message_id`` from the send's answer, ``text``). Telegram answers 400 "message is not
modified" when the text is the same (nothing to do: counted as shown), and 400 "message to
edit not found" or "message can't be edited" when the recipient deleted it: the message then
stays as it was and nothing is sent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx

from pbxgate.notify.channels.base import Dead, Gone, Message, Outcome, Retry, Sent
from pbxgate.notify.logmask import guarded, mask
from pbxgate.notify.ratelimit import AsyncLimiter
from pbxgate.notify.settings import TelegramSettings

MAX_TEXT = 4096  # sendMessage: 1-4096 characters


# 400 descriptions of editMessageText for a message that cannot be edited (any more).
EDIT_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


def classify(status: int, body: object, *, editing: bool = False) -> Outcome:
    data = body if isinstance(body, dict) else {}
    if status == 200 and data.get("ok"):
        if editing:
            return Sent("Telegram edited the message")
        result = data.get("result")
        mid = result.get("message_id") if isinstance(result, dict) else None
        ref = str(mid) if isinstance(mid, int) and not isinstance(mid, bool) else ""
        return Sent(f"Telegram message id {mid}", ref=ref)
    desc = mask(str(data.get("description", "")))[:200]
    if editing and status == 400:
        lowered = desc.lower()
        if "message is not modified" in lowered:
            return Sent("Telegram already shows this text")
        if any(text in lowered for text in EDIT_GONE):
            return Gone(f"not edited: Telegram: {desc}")
    if status == 429:
        params = data.get("parameters")
        after = params.get("retry_after", 1) if isinstance(params, dict) else 1
        return Retry(f"Telegram rate limit: {desc}", after=float(after))
    if status >= 500 or not data:
        return Retry(f"Telegram HTTP {status}: {desc or 'no JSON answer'}")
    if status == 401:
        return Dead("Telegram rejected the bot token (401 Unauthorized); check [notify.telegram]")
    if status == 403:
        return Dead(f"Telegram: the bot may not write to this chat ({desc}); start the bot first")
    return Dead(f"Telegram error {status}: {desc}")


class TelegramChannel:
    name = "telegram"
    edit_window: float | None = None

    def __init__(
        self,
        settings: TelegramSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._token = guarded(settings.token)
        self.settings = settings
        self.limiter = AsyncLimiter(settings.rate_limit)
        self._held: dict[str, float] = {}  # chat -> loop time Telegram's retry_after ends
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        if not self._token:
            return Dead("no Telegram bot token configured ([notify.telegram] token)")
        payload = {"chat_id": recipient, "text": message.text[:MAX_TEXT]}
        return await self._call("sendMessage", payload, editing=False)

    async def edit(self, message: Message, recipient: str, ref: str, key: str) -> Outcome:
        if not self._token:
            return Dead("no Telegram bot token configured ([notify.telegram] token)")
        try:
            message_id = int(ref)
        except ValueError:
            return Gone("not edited: the message id Telegram gave is not a number")
        payload = {"chat_id": recipient, "message_id": message_id, "text": message.text[:MAX_TEXT]}
        return await self._call("editMessageText", payload, editing=True)

    async def _call(self, method: str, payload: Mapping[str, object], *, editing: bool) -> Outcome:
        url = f"{self.settings.api_base.rstrip('/')}/bot{self._token.reveal()}/{method}"
        chat = str(payload["chat_id"])
        left = self._held.get(chat, 0.0) - asyncio.get_running_loop().time()
        if left > 0:  # Telegram's retry_after for this chat has not ended
            why = f"Telegram asked to wait {left:.0f} s before writing to this chat"
            return Retry(why, after=left)
        await self.limiter.acquire()
        try:
            resp = await self._client.post(url, json=payload)
        except httpx.TransportError as exc:
            return Retry(mask(f"network error talking to Telegram: {type(exc).__name__}"))
        try:
            body = resp.json()
        except ValueError:
            body = None
        outcome = classify(resp.status_code, body, editing=editing)
        if resp.status_code == 429 and isinstance(outcome, Retry):
            self._held[chat] = asyncio.get_running_loop().time() + outcome.after
        return outcome

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["EDIT_GONE", "TelegramChannel", "classify"]
