"""A generic JSON webhook: POST the event and the rendered text to each recipient URL.

Every attempt of one delivery carries the same ``Idempotency-Key`` header (the convention of
the IETF draft "The Idempotency-Key HTTP Header Field"), so a receiver that honours it stores
one copy even when pbxgate resends after a crash. 2xx is success; 408, 429 and 5xx are retried
(``Retry-After`` in seconds is respected); any other status is a dead letter. Reasons name only
the host: webhook URLs often carry a secret in their path or query.

Every body names its call (``call_id``: Asterisk's linkedid) and its ``kind``; ``final`` is true
for the call's last state (ended or missed). When messages follow their calls, each change of a
call is another POST with the same ``call_id`` (``update`` true after the first), in order: the
receiver keeps the latest.
"""

from __future__ import annotations

import dataclasses
import hashlib

import httpx

from pbxgate.notify.channels.base import Dead, Message, Outcome, Retry, Sent
from pbxgate.notify.logmask import guarded
from pbxgate.notify.settings import WebhookSettings


def header_key(key: str) -> str:
    """The idempotency key as a header value (ASCII); hashed when it is not plain ASCII."""
    if key.isascii() and key.isprintable() and len(key) <= 200:
        return key
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def payload(message: Message, key: str, *, update: bool = False) -> dict[str, object]:
    event = dataclasses.asdict(message.event)
    event["extra"] = dict(message.event.extra)
    return {
        "event_id": message.event.event_id,
        "call_id": message.event.call_id,
        "kind": message.event.kind,
        "final": message.event.final,
        "update": update,
        "idempotency_key": key,
        "subject": message.subject,
        "text": message.text,
        "event": event,
    }


def _retry_after(resp: httpx.Response) -> float:
    try:
        return max(0.0, float(resp.headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


class WebhookChannel:
    name = "webhook"
    edit_window: float | None = None

    def __init__(
        self,
        settings: WebhookSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._token = guarded(settings.token)
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout)

    async def send(self, message: Message, recipient: str, key: str) -> Outcome:
        return await self._post(message, recipient, key, update=False)

    async def edit(self, message: Message, recipient: str, ref: str, key: str) -> Outcome:
        """Another POST for the same call (``update`` true): the receiver shows the latest."""
        return await self._post(message, recipient, key, update=True)

    async def _post(self, message: Message, recipient: str, key: str, *, update: bool) -> Outcome:
        headers = {"Idempotency-Key": header_key(key)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        try:
            url = httpx.URL(recipient)
        except httpx.InvalidURL:
            return Dead("webhook recipient is not a URL")
        if url.scheme not in ("http", "https"):
            return Dead("webhook recipient must be an http:// or https:// URL")
        try:
            body = payload(message, key, update=update)
            resp = await self._client.post(url, json=body, headers=headers)
        except httpx.TransportError as exc:
            return Retry(f"network error talking to {url.host}: {type(exc).__name__}")
        if 200 <= resp.status_code < 300:
            return Sent(f"HTTP {resp.status_code} from {url.host}", ref=message.event.call_id)
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            return Retry(f"HTTP {resp.status_code} from {url.host}", after=_retry_after(resp))
        return Dead(f"HTTP {resp.status_code} from {url.host}")

    async def aclose(self) -> None:
        await self._client.aclose()


__all__ = ["WebhookChannel", "header_key", "payload"]
