"""Telegram, webhook and e-mail channels, each through its seam."""

import asyncio
import json
import logging
from collections.abc import Callable
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from pbxgate.config import Secret
from pbxgate.notify.channels.base import Channel, Dead, Message, Outcome, Retry, Sent
from pbxgate.notify.channels.email import EmailChannel, message_id
from pbxgate.notify.channels.telegram import TelegramChannel
from pbxgate.notify.channels.webhook import WebhookChannel, header_key
from pbxgate.notify.settings import EmailSettings, TelegramSettings, WebhookSettings
from tests.conftest import free_port

from .helpers import make_event

BOT_TOKEN = "123456789:AAH-secret-bot-token-xyz"
MSG = Message("Сейчас поступит звонок с номера: +79161234567", "Входящий звонок", make_event(1))


def run(ch: Channel, recipient: str, key: str = "incoming:1|x|r") -> Outcome:
    async def go() -> Outcome:
        try:
            return await ch.send(MSG, recipient, key)
        finally:
            await ch.aclose()

    return asyncio.run(go())


def telegram(handler: Callable[[httpx.Request], httpx.Response]) -> TelegramChannel:
    settings = TelegramSettings(enabled=True, token=Secret(BOT_TOKEN), rate_limit=1e6)
    return TelegramChannel(settings, transport=httpx.MockTransport(handler))


def test_telegram_send_message(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 9}})

    assert run(telegram(handler), "-1001234") == Sent("Telegram message id 9", ref="9")
    assert seen[0].url.path == f"/bot{BOT_TOKEN}/sendMessage"
    assert json.loads(seen[0].content) == {"chat_id": "-1001234", "text": MSG.text}
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)


def test_telegram_holds_a_chat_it_asked_to_wait_and_writes_to_the_others() -> None:
    """A 429's retry_after: that chat's next requests are retried once it ends, without a
    request each (Telegram refused each in turn, every one spending an attempt), and without
    waiting in the channel (a pass of the worker waits for its slowest delivery); the other
    chats go on."""
    asked: list[str] = []
    flood = [True]

    def handler(req: httpx.Request) -> httpx.Response:
        chat = json.loads(req.content)["chat_id"]
        asked.append(chat)
        if chat == "7" and flood[0]:
            flood[0] = False
            body = {"ok": False, "error_code": 429, "description": "Too Many Requests",
                    "parameters": {"retry_after": 30}}  # fmt: skip
            return httpx.Response(429, json=body)
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})

    async def go() -> tuple[list[Outcome], float]:
        ch = telegram(handler)
        loop = asyncio.get_running_loop()
        try:
            first = await ch.send(MSG, "7", "k")  # 429: held 30 s
            began = loop.time()
            rest = [await ch.send(MSG, chat, "k") for chat in ("7", "8", "7")]
            return [first, *rest], loop.time() - began
        finally:
            await ch.aclose()

    (first, held, other, again), took = asyncio.run(go())
    assert isinstance(first, Retry) and first.after == 30.0
    assert isinstance(held, Retry) and 29 < held.after <= 30 and isinstance(again, Retry)
    assert isinstance(other, Sent)
    assert asked == ["7", "8"]  # the held chat was not asked again
    assert took < 1.0  # nothing waited in the channel


def test_telegram_errors() -> None:
    def answer(status: int, body: dict[str, Any]) -> TelegramChannel:
        return telegram(lambda r: httpx.Response(status, json=body))

    flood = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }
    outcome = run(answer(429, flood), "1")
    assert isinstance(outcome, Retry) and outcome.after == 7.0
    assert isinstance(run(answer(502, {}), "1"), Retry)
    unauthorized = run(answer(401, {"ok": False, "description": "Unauthorized"}), "1")
    assert isinstance(unauthorized, Dead) and "bot token" in unauthorized.reason
    blocked = run(answer(403, {"ok": False, "description": "bot was blocked by the user"}), "1")
    assert isinstance(blocked, Dead) and "blocked" in blocked.reason
    missing = run(answer(400, {"ok": False, "description": "Bad Request: chat not found"}), "1")
    assert isinstance(missing, Dead) and "chat not found" in missing.reason

    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {req.url}", request=req)

    down = run(telegram(refuse), "1")
    assert isinstance(down, Retry) and BOT_TOKEN not in down.reason


def webhook(handler: Callable[[httpx.Request], httpx.Response], token: str = "") -> WebhookChannel:
    settings = WebhookSettings(enabled=True, token=Secret(token) if token else None)
    return WebhookChannel(settings, transport=httpx.MockTransport(handler))


def test_webhook_posts_json_with_a_stable_idempotency_key() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(204)

    url = "https://hooks.example.org/in/SECRETPATH"
    assert run(webhook(handler, token="hook-bearer-token"), url) == Sent(
        "HTTP 204 from hooks.example.org", ref="1700000000.1"
    )
    run(webhook(handler), url)  # a second attempt of the same delivery
    assert seen[0].headers["idempotency-key"] == "incoming:1|x|r"
    assert seen[0].headers["idempotency-key"] == seen[1].headers["idempotency-key"]
    assert seen[0].headers["authorization"] == "Bearer hook-bearer-token"
    body = json.loads(seen[0].content)
    assert body["event_id"] == "incoming:1700000000.1"
    assert body["text"] == MSG.text
    assert body["event"]["caller_number"] == "+79161234567"
    assert (body["call_id"], body["kind"], body["final"], body["update"]) == (
        "1700000000.1",
        "incoming",
        False,
        False,
    )


def test_webhook_status_classes() -> None:
    url = "http://127.0.0.1:9/hook?key=SECRET"
    slow = run(webhook(lambda r: httpx.Response(429, headers={"Retry-After": "30"})), url)
    assert isinstance(slow, Retry) and slow.after == 30.0
    assert isinstance(run(webhook(lambda r: httpx.Response(503)), url), Retry)
    gone = run(webhook(lambda r: httpx.Response(410)), url)
    assert isinstance(gone, Dead) and "SECRET" not in gone.reason
    assert isinstance(run(webhook(lambda r: httpx.Response(200)), "ftp://x/y"), Dead)


def test_header_key_is_ascii() -> None:
    assert header_key("incoming:1|vk|1") == "incoming:1|vk|1"
    assert len(header_key("incoming:звонок|x|y")) == 64


class Sink:
    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if any(r.startswith("refuse") for r in envelope.rcpt_tos):
            return "550 5.1.1 mailbox unavailable"
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp():  # type: ignore[no-untyped-def]
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


def test_email_through_a_local_smtp_server(smtp) -> None:  # type: ignore[no-untyped-def]
    sink, port = smtp
    ch = EmailChannel(EmailSettings(enabled=True, port=port, sender="pbx@example.org"))
    outcome = run(ch, "ops@example.org", "incoming:1|email|ops@example.org")
    assert outcome == Sent(f"accepted by 127.0.0.1:{port}")
    (env,) = sink.envelopes
    mail = message_from_bytes(env.content)
    assert env.rcpt_tos == ["ops@example.org"]
    assert mail["Message-ID"] == message_id("incoming:1|email|ops@example.org")
    assert mail.get_payload(decode=True).decode("utf-8").startswith("Сейчас поступит звонок")


def test_email_permanent_and_transient_failures(smtp) -> None:  # type: ignore[no-untyped-def]
    _, port = smtp
    refused = run(EmailChannel(EmailSettings(port=port)), "refuse@example.org")
    assert isinstance(refused, Dead) and "550" in refused.reason
    closed = run(EmailChannel(EmailSettings(port=1, timeout=2.0)), "ops@example.org")
    assert isinstance(closed, Retry) and "127.0.0.1:1" in closed.reason
