import asyncio
import json
import logging
from collections.abc import Callable
from urllib.parse import parse_qs

import httpx
import pytest

from pbxgate.config import Secret
from pbxgate.notify.channels.base import Dead, Message, Retry, Sent
from pbxgate.notify.channels.vk import PERMANENT, TRANSIENT, VkChannel, peer_id, random_id
from pbxgate.notify.ratelimit import AsyncLimiter
from pbxgate.notify.settings import VkSettings

from .helpers import make_event

TOKEN = "vk1.a.SuperSecretCommunityToken0123456789"


def channel(handler: Callable[[httpx.Request], httpx.Response], **kw: object) -> VkChannel:
    settings = VkSettings(enabled=True, token=Secret(TOKEN), recipients=["1"], **kw)  # type: ignore[arg-type]
    # A generous limiter: these tests are about answers, not pacing.
    return VkChannel(
        settings, transport=httpx.MockTransport(handler), limiter=AsyncLimiter(1e6, 1e6)
    )


def send(ch: VkChannel, recipient: str = "1", key: str = "incoming:1|vk|1"):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await ch.send(Message("привет", "s", make_event()), recipient, key)
        finally:
            await ch.aclose()

    return asyncio.run(go())


def vk_error(code: int, msg: str = "msg") -> Callable[[httpx.Request], httpx.Response]:
    return lambda req: httpx.Response(200, json={"error": {"error_code": code, "error_msg": msg}})


def test_request_shape_token_in_header_not_url() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"response": 77})

    outcome = send(channel(handler), "chat:3", "incoming:1|vk|chat:3")
    assert outcome == Sent("VK message id 77", ref="77")
    (req,) = seen
    assert str(req.url) == "https://api.vk.ru/method/messages.send"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-type"] == "application/x-www-form-urlencoded"
    form = {k: v[0] for k, v in parse_qs(req.content.decode()).items()}
    assert form == {
        "peer_id": "2000000003",
        "message": "привет",
        "random_id": str(random_id("incoming:1|vk|chat:3")),
        "v": "5.199",
    }
    assert TOKEN not in req.content.decode()


def test_api_version_and_base_are_configurable() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={"response": 1})

    send(channel(handler, api_version="5.131", api_base="http://127.0.0.1:9/"))
    assert str(seen[0].url) == "http://127.0.0.1:9/method/messages.send"
    assert b"v=5.131" in seen[0].content


def test_random_id_is_stable_positive_31_bit() -> None:
    keys = [f"incoming:{n}|vk|{r}" for n in range(500) for r in ("1", "chat:2")]
    ids = [random_id(k) for k in keys]
    assert ids == [random_id(k) for k in keys]  # same key, same id, every run
    assert all(0 < i < 2**31 for i in ids)
    assert len(set(ids)) == len(ids)  # distinct keys get distinct ids here
    # Pinned: a change of the derivation would make in-flight retries show twice.
    assert random_id("incoming:1700000000.1|vk|1") == random_id("incoming:1700000000.1|vk|1")
    assert random_id("a") != random_id("b")


def test_random_id_survives_a_process_restart() -> None:
    import subprocess
    import sys

    code = "from pbxgate.notify.channels.vk import random_id; print(random_id('incoming:9|vk|1'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == random_id("incoming:9|vk|1")


@pytest.mark.parametrize(
    ("recipient", "peer"),
    [("123", 123), ("user:123", 123), ("chat:5", 2000000005), ("group:7", -7), ("-7", -7)],
)
def test_peer_ids(recipient: str, peer: int) -> None:
    assert peer_id(recipient) == peer


@pytest.mark.parametrize("recipient", ["", "bob", "chat:0", "chat:x", "planet:3"])
def test_bad_recipient_is_a_dead_letter(recipient: str) -> None:
    outcome = send(channel(lambda r: httpx.Response(200, json={"response": 1})), recipient)
    assert isinstance(outcome, Dead) and "not a VK recipient" in outcome.reason


@pytest.mark.parametrize("code", [6, 9, 10])
def test_transient_codes_retry(code: int) -> None:
    outcome = send(channel(vk_error(code, "Too many")))
    assert isinstance(outcome, Retry)
    assert f"VK error {code}: {TRANSIENT[code]}" in outcome.reason


@pytest.mark.parametrize("code", [5, 7, 15, 100, 901, 902, 917])
def test_permanent_codes_are_dead_letters_in_plain_words(code: int) -> None:
    outcome = send(channel(vk_error(code, "VK says no")))
    assert isinstance(outcome, Dead)
    assert outcome.reason == f"VK error {code}: {PERMANENT[code]} [VK: VK says no]"


def test_901_names_the_community_permission() -> None:
    outcome = send(channel(vk_error(901, "Can't send messages for users without permission")))
    assert isinstance(outcome, Dead)
    assert "the user has not allowed messages from this community" in outcome.reason


def test_captcha_is_a_dead_letter_with_an_explanation() -> None:
    outcome = send(channel(vk_error(14, "Captcha needed")))
    assert isinstance(outcome, Dead)
    assert "captcha" in outcome.reason and "community token" in outcome.reason


def test_unknown_code_is_dead_with_vk_text() -> None:
    outcome = send(channel(vk_error(945, "Chat was disabled")))
    assert isinstance(outcome, Dead) and "Chat was disabled" in outcome.reason


def test_network_errors_and_5xx_retry() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=req)

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=req)

    assert isinstance(send(channel(refuse)), Retry)
    assert isinstance(send(channel(slow)), Retry)
    assert isinstance(send(channel(lambda r: httpx.Response(502, text="bad gw"))), Retry)
    assert isinstance(send(channel(lambda r: httpx.Response(200, text="<html>"))), Retry)
    assert isinstance(send(channel(lambda r: httpx.Response(200, json=[1]))), Retry)
    assert isinstance(send(channel(lambda r: httpx.Response(404))), Dead)


def test_a_network_error_that_quotes_the_request_keeps_the_token_out_of_the_reason() -> None:
    """h11 quotes a header value it refuses; the reason (stored in the outbox, logged) names
    the error's class only."""

    def refuse(req: httpx.Request) -> httpx.Response:
        header = req.headers["Authorization"]
        raise httpx.LocalProtocolError(f"Illegal header value b'{header}\\r'")

    outcome = send(channel(refuse))
    assert isinstance(outcome, Retry)
    assert outcome.reason == "network error talking to api.vk.ru: LocalProtocolError"


def test_missing_token_is_a_dead_letter() -> None:
    ch = VkChannel(VkSettings(enabled=True), transport=httpx.MockTransport(vk_error(5)))
    outcome = send(ch)
    assert isinstance(outcome, Dead) and "no VK token" in outcome.reason


def test_token_never_in_logs_or_reasons(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def handler(req: httpx.Request) -> httpx.Response:
        # VK echoes request_params; a careless client would log them.
        params = [{"key": "access_token", "value": TOKEN}]
        body = {"error": {"error_code": 5, "error_msg": "auth failed", "request_params": params}}
        return httpx.Response(200, content=json.dumps(body).encode())

    outcome = send(channel(handler))
    assert isinstance(outcome, Dead)
    assert TOKEN not in outcome.reason
    logging.getLogger("pbxgate.notify.test").info("token is %s", TOKEN)
    assert caplog.records, "httpx and our own line were captured"
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert any("********" in r.getMessage() for r in caplog.records)


def test_default_pacing_stays_under_the_token_type_limit() -> None:
    def rate(**kw: object) -> float:
        ch = VkChannel(VkSettings(**kw), transport=httpx.MockTransport(vk_error(6)))  # type: ignore[arg-type]
        asyncio.run(ch.aclose())
        return ch.limiter._rate

    assert rate() == pytest.approx(20 * 0.9)
    assert rate(token_type="user") == pytest.approx(3 * 0.9)
    assert rate(rate_limit=5.0) == pytest.approx(5 * 0.9)


def test_every_delivery_has_its_own_random_id_the_same_on_every_attempt(tmp_path) -> None:
    """31 bits of a hash collide about once in 2,000 messages to one peer, and VK then drops
    the second message silently. Delivery numbers do not collide, and a retry (or another
    process) reads the same number again."""
    from pbxgate.notify.outbox import Outbox
    from pbxgate.notify.worker import idempotency_key

    from .helpers import make_event

    path = tmp_path / "outbox.sqlite3"
    box = Outbox.open(path)
    for n in range(3000):
        event = make_event(n)
        box.enqueue(event)
        box.plan(event.event_id, [("vk", "1001")], 0.0)
    first = {d.id: random_id(idempotency_key(d)) for d in box.claim(1.0, 0.0, 5000)}
    assert len(first) == 3000 and len(set(first.values())) == 3000
    assert all(0 < v < 2**31 for v in first.values())
    again = {
        d.id: random_id(idempotency_key(d)) for d in box.claim(2.0, 60.0, 5000)
    }  # leases ran out
    box.close()
    reopened = Outbox.open(path)  # another process
    later = {d.id: random_id(idempotency_key(d)) for d in reopened.claim(100.0, 60.0, 5000)}
    reopened.close()
    assert first == again == later
