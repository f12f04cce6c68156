"""The Notifications page: admins only; the outbox filled through its own API and shown as
``pbxgate notify status`` would; Retry and Purge really change the rows and are audited; a test
message through the fake VK and a mocked webhook; no secret in the page, the JSON or the log."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxgate.config import MASK, Settings
from pbxgate.notify.events import INCOMING, CallEvent
from pbxgate.notify.fakevk import FakeVkServer, FakeVkState
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.recipients import redact, ref
from pbxgate.web import users as users_module
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import write_config
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in, run

VK_TOKEN = "vk-secret-token-1"
HOOK = "https://crm.example.org/hook?key=s3cr3t-hook-key"
DAY = 86400.0


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", {"time_cost": 1, "memory_cost": 8,
                                                         "parallelism": 1})  # fmt: skip


@pytest.fixture
def vk() -> Iterator[FakeVkServer]:
    server = FakeVkServer(0, FakeVkState(fail={13: 901})).start()
    yield server
    server.stop()


def make_console(
    tmp_path: Path,
    vk_base: str,
    hooks: tuple[str, ...] = (HOOK,),
    peers: tuple[str, ...] = ("42",),
    hook_token: str = "",
) -> tuple[Any, Path]:
    outbox = tmp_path / "outbox.sqlite3"
    extra = (
        f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n'
        f'[notify]\noutbox = "{outbox}"\n'
        f'[notify.vk]\nenabled = true\ntoken = "{VK_TOKEN}"\nrecipients = {json.dumps(peers)}\n'
        f'api_base = "{vk_base}"\n'
        f"[notify.webhook]\nenabled = true\nrecipients = {json.dumps(list(hooks))}\n"
        + (f'token = "{hook_token}"\n' if hook_token else "")
    )
    settings = Settings.load(write_config(tmp_path, extra=extra))
    users = UserStore(settings.get(WebSettings).database_path)
    for name, role in (("vera", Role.VIEWER), ("lena", Role.LISTENER), ("anna", Role.ADMIN)):
        users.add(name, PASSWORDS[name], role)
    return create_app(settings, users=users, now=lambda: NOW, clock=Clock()), outbox


@pytest.fixture
def console(tmp_path: Path, vk: FakeVkServer) -> tuple[Any, Path]:
    return make_console(tmp_path, vk.base_url)


def event(linkedid: str, at: float) -> CallEvent:
    return CallEvent(kind=INCOMING, uniqueid=linkedid, linkedid=linkedid,
                     caller_number="+79161234567", caller_name="", did="74951234567",
                     channel="PJSIP/trunk-1", context="from-trunk", extension="s",
                     occurred_at=at)  # fmt: skip


def fill(path: Path) -> dict[str, int]:
    """Four deliveries in four states, through the outbox's own API: vk sent 40 days ago,
    webhook sent now, vk dead (its reason naming the token), telegram waiting for a retry."""
    now = time.time()
    box = Outbox.open(path)
    try:
        for linkedid in ("N1", "N2", "N3"):
            box.enqueue(event(linkedid, now - 40 * DAY))
        box.plan("incoming:N1", [("vk", "42"), ("webhook", ref(HOOK))], now - 40 * DAY)
        box.plan("incoming:N2", [("vk", "13")], now)
        box.plan("incoming:N3", [("telegram", "100")], now)
        ids = {(d.event.linkedid, d.channel): d.id for d in box.claim(now, 60, 10)}
        box.mark_sent(ids["N1", "vk"], now - 40 * DAY, "VK message id 1")
        box.mark_sent(ids["N1", "webhook"], now, "HTTP 200")
        box.mark_dead(ids["N2", "vk"], now, f"VK error 901: no permission (token {VK_TOKEN})")
        box.mark_retry(ids["N3", "telegram"], now, now + 300, "no answer in time")
    finally:
        box.close()
    return {f"{k[0]}-{k[1]}": v for k, v in ids.items()}


def states(path: Path) -> dict[int, str]:
    box = Outbox.open(path)
    try:
        return {row.id: row.state for row in box.recent(100)}
    finally:
        box.close()


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found[1]


async def admin(http: httpx.AsyncClient) -> str:
    await log_in(http, "anna")
    return csrf((await http.get("/notifications")).text)


POSTS = ("/notifications/retry", "/notifications/purge", "/notifications/test")


def test_admins_only(console: tuple[Any, Path]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            page = await http.get("/notifications")
            assert page.headers["location"] == "/login?next=/notifications"
            assert (await http.get("/api/notifications")).status_code == 401
            for path in POSTS:
                assert (await http.post("/api" + path)).status_code == 401
        for name in ("vera", "lena"):
            async with client(app) as http:
                await log_in(http, name)
                token = csrf((await http.get("/live")).text)
                assert (await http.get("/notifications")).status_code == 403
                assert (await http.get("/api/notifications")).status_code == 403
                for path in POSTS:
                    answer = await http.post(path, data={"csrf": token, "channel": "vk"})
                    assert answer.status_code == 403
                page = (await http.get("/live")).text
                assert 'href="/notifications"' not in page  # not in their menu
        async with client(app) as http:
            token = await admin(http)
            assert (await http.get("/api/notifications")).status_code == 200
            for path in POSTS:  # no CSRF token: refused even for an admin
                assert (await http.post(path, data={"channel": "vk"})).status_code == 403
            answer = await http.post("/notifications/retry", data={"csrf": token})
            assert answer.status_code == 303  # back to the page, saying there is no outbox
            assert 'href="/notifications"' in (await http.get("/live")).text

    run(go())


def test_no_outbox_yet_is_an_empty_page_that_makes_none(console: tuple[Any, Path]) -> None:
    app, outbox = console

    async def go() -> None:
        async with client(app) as http:
            token = await admin(http)
            page = await http.get("/notifications", headers={"accept-language": "en"})
            assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
            assert 'id="notify-empty"' in page.text and "no notification outbox yet" in page.text
            assert 'id="notify-retry"' not in page.text
            assert 'id="test-vk"' in page.text and 'id="test-webhook"' in page.text
            data = (await http.get("/api/notifications")).json()
            assert data["exists"] is False and data["channels"] == []
            assert [c["channel"] for c in data["test_channels"]] == ["vk", "webhook"]
            answer = await http.post("/api/notifications/retry", data={"csrf": token})
            assert answer.status_code == 400
            assert answer.json() == {
                "error": "there is no notification outbox yet (pbxgate serve makes it)"
            }
        assert not outbox.exists()

    run(go())


def test_the_outbox_as_notify_status_shows_it_without_secrets(console: tuple[Any, Path]) -> None:
    app, outbox = console
    ids = fill(outbox)

    async def go() -> None:
        async with client(app) as http:
            await admin(http)
            data = (await http.get("/api/notifications")).json()
            page = (await http.get("/notifications")).text
        counts = {c["channel"]: (c["pending"], c["retrying"], c["sent"], c["dead"])
                  for c in data["channels"]}  # fmt: skip
        assert counts == {"telegram": (1, 1, 0, 0), "vk": (0, 0, 1, 1), "webhook": (0, 0, 1, 0)}
        assert data["exists"] is True and data["outbox"] == str(outbox)
        (dead,) = data["dead_letters"]
        assert dead["id"] == ids["N2-vk"] and dead["recipient"] == "13"
        assert dead["reason"] == f"VK error 901: no permission (token {MASK})"
        recent = {row["id"]: row for row in data["recent"]}
        assert recent[ids["N3-telegram"]]["last_error"] == "no answer in time"
        assert recent[ids["N1-webhook"]]["recipient"].startswith("https://crm.example.org/***?***")
        assert {row["state"] for row in data["recent"]} == {"sent", "dead", "pending"}
        for text in (page, str(data)):
            assert VK_TOKEN not in text and "s3cr3t" not in text
        assert f'<tr data-delivery="{ids["N2-vk"]}" data-channel="vk">' in page
        assert '<td data-count="dead">1</td>' in page

    run(go())


def test_retry_revives_the_dead_letters_and_is_audited(console: tuple[Any, Path]) -> None:
    app, outbox = console
    ids = fill(outbox)
    assert states(outbox)[ids["N2-vk"]] == "dead"

    async def go() -> None:
        async with client(app) as http:
            token = await admin(http)
            english = {"accept-language": "en"}  # the flash speaks the form's language
            form = {"csrf": token, "channel": ""}
            answer = await http.post("/notifications/retry", data=form, headers=english)
            assert answer.status_code == 303 and answer.headers["location"] == "/notifications"
            page = (await http.get("/notifications", headers={"accept-language": "en"})).text
            assert "1 dead letters queued again, 1 waiting retries due now" in page
            assert 'id="notify-flash"' in page
            again = (await http.get("/notifications")).text
            assert 'id="notify-flash"' not in again  # said once

    run(go())
    assert states(outbox)[ids["N2-vk"]] == "pending"
    entry = app.state.users.audit_log(1)[0]
    assert (entry.who, entry.action) == ("anna", "notify-retry")
    assert entry.detail == "all channels: 1 revived, 1 due now"


def test_purge_deletes_old_sent_and_dead_rows(console: tuple[Any, Path]) -> None:
    app, outbox = console
    ids = fill(outbox)

    async def go() -> None:
        async with client(app) as http:
            token = await admin(http)
            kept = await http.post("/api/notifications/purge", data={"csrf": token, "days": "30"})
            assert kept.json() == {"deleted": 1}  # the vk message sent 40 days ago
            assert ids["N1-vk"] not in states(outbox)
            assert states(outbox)[ids["N2-vk"]] == "dead"
            form = {"csrf": token, "days": "30", "dead": "on", "channel": "vk"}
            assert (await http.post("/notifications/purge", data=form)).status_code == 303
            bad = await http.post("/api/notifications/purge", data={"csrf": token, "days": "-1"})
            assert bad.status_code == 400 and bad.json() == {
                "error": "days must be between 0 and 36500"
            }

    run(go())
    assert states(outbox) == {ids["N1-webhook"]: "sent", ids["N3-telegram"]: "pending"}
    entry = app.state.users.audit_log(1)[0]
    assert entry.action == "notify-purge"
    assert entry.detail == "vk: sent older than 30 days and dead letters: 1 deleted"


def test_a_test_message_through_the_fake_vk(tmp_path: Path, vk: FakeVkServer,
                                            caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    app, _ = make_console(tmp_path, vk.base_url, peers=("42", "13"))

    async def go() -> None:
        async with client(app) as http:
            token = await admin(http)
            form = {"csrf": token, "channel": "vk", "to": "42"}
            sent = await http.post("/api/notifications/test", data=form)
            assert sent.status_code == 200
            assert sent.json() == {"channel": "vk", "results": [
                {"recipient": "42", "verdict": "sent", "detail": "VK message id 1"}]}  # fmt: skip
            form = {"csrf": token, "channel": "vk", "to": "13"}  # VK refuses this peer
            english = {"accept-language": "en"}
            assert (
                await http.post("/notifications/test", data=form, headers=english)
            ).status_code == 303
            page = (await http.get("/notifications", headers={"accept-language": "en"})).text
            flash = re.search(r'<div id="notify-flash"[^>]*data-ok="false">\s*<p>([^<]*)</p>',
                              page)  # fmt: skip
            assert flash is not None and flash[1].startswith("vk → 13: refused: VK error 901")
            disabled = {"csrf": token, "channel": "telegram"}
            refused = await http.post("/api/notifications/test", data=disabled)
            assert refused.status_code == 400
            assert refused.json() == {"error": "unknown channel 'telegram' (vk, webhook)"}

    with caplog.at_level(logging.DEBUG):
        run(go())
    assert [m.peer_id for m in vk.state.shown] == [42]
    assert VK_TOKEN not in caplog.text
    entry = app.state.users.audit_log(1)[0]
    assert (entry.action, entry.detail) == ("notify-test", "vk: 0 of 1 sent")


def test_a_test_webhook_reaches_the_url_and_the_page_shows_it_masked(
    console: tuple[Any, Path],
) -> None:
    app, _ = console
    seen: list[str] = []

    def crm(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(503, text=f"down for {request.url}")

    app.state.notify_transport = httpx.MockTransport(crm)

    async def go() -> None:
        async with client(app) as http:
            token = await admin(http)
            page = (await http.get("/notifications")).text
            assert "https://crm.example.org/***?***" in page and "s3cr3t" not in page
            form = {"csrf": token, "channel": "webhook"}
            answer = await http.post("/api/notifications/test", data=form)
        assert answer.status_code == 400  # not delivered
        (result,) = answer.json()["results"]
        assert result["recipient"] == "https://crm.example.org/***?***"
        assert result["verdict"] == "retry later" and "s3cr3t" not in answer.text

    run(go())
    assert seen == [HOOK]  # the CRM got its URL whole


@pytest.mark.parametrize("server", ["mariadb", "postgresql"])
def test_a_shared_outbox_on_a_database_server(server: str, tmp_path: Path) -> None:
    """[notify.database] url: the outbox ``pbxgate notify status`` opens, shown by its URL."""
    from tests.notify.conftest import make_place

    place = make_place(server, tmp_path)
    box = place.open()
    box.enqueue(event("D1", time.time()))
    box.plan("incoming:D1", [("vk", "42")], time.time())
    place.close()
    extra = f'[notify.database]\nurl = "{place.target}"\n[web]\ndatabase = "{tmp_path}/w.db"\n'
    config = write_config(tmp_path, extra=extra)
    settings = Settings.load(config)
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("anna", PASSWORDS["anna"], Role.ADMIN)
    app = create_app(settings, users=users, now=lambda: NOW, clock=Clock())

    async def go() -> dict[str, Any]:
        async with client(app) as http:
            await log_in(http, "anna")
            return (await http.get("/api/notifications")).json()  # type: ignore[no-any-return]

    data = run(go())
    scheme, _, rest = place.target.partition("://")
    assert data["exists"] is True and data["outbox"].startswith(f"{scheme}://")
    assert "@127.0.0.1:" in data["outbox"] and rest.split("/")[1].split("?")[0] in data["outbox"]
    assert [(c["channel"], c["pending"]) for c in data["channels"]] == [("vk", 1)]
    assert [r["event_id"] for r in data["recent"]] == ["incoming:D1"]


def test_a_long_answer_is_cut_to_fit_the_session_cookie(tmp_path: Path) -> None:
    hooks = tuple(f"https://crm.example.org/hook/{i}?key=k{'x' * 300}" for i in range(7))
    app, _ = make_console(tmp_path, "http://127.0.0.1:9", hooks)
    app.state.notify_transport = httpx.MockTransport(lambda request: httpx.Response(200))

    async def go() -> str:
        async with client(app) as http:
            token = await admin(http)
            form = {"csrf": token, "channel": "webhook"}
            assert (await http.post("/notifications/test", data=form)).status_code == 303
            return (await http.get("/notifications")).text

    page = run(go())
    flash = re.search(r'<div id="notify-flash"[^>]*data-ok="true">(.*?)</div>', page, re.S)
    assert flash is not None
    lines = re.findall(r"<p>([^<]*)</p>", flash[1])
    assert len(lines) == 5 and lines[-1] == "… (+3)"
    assert lines[0].startswith("webhook → https://crm.example.org/***?***: sent")


def test_a_test_message_goes_only_to_a_configured_recipient(tmp_path: Path) -> None:
    """The webhook sends its token as ``Authorization: Bearer``: a test message to a URL typed
    in would hand it (and a request from the server's network) to anyone an admin names."""
    token = "whsec-SUPER-SECRET-123"
    app, _ = make_console(tmp_path, "http://127.0.0.1:9", hook_token=token)
    seen: list[tuple[str, str | None]] = []

    def anywhere(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        return httpx.Response(200)

    app.state.notify_transport = httpx.MockTransport(anywhere)

    async def go() -> None:
        async with client(app) as http:
            csrf_token = await admin(http)
            page = (await http.get("/notifications")).text
            assert '<input id="test-webhook-to"' not in page and token not in page
            assert '<select id="test-webhook-to" name="to">' in page
            choices = {
                c["channel"]: c["choices"]
                for c in (await http.get("/api/notifications")).json()["test_channels"]
            }
            assert choices["webhook"] == [{
                "value": ref(HOOK),  # "https://crm.example.org/***?*** [<digest>]"
                "label": ref(HOOK)}]  # fmt: skip
            assert f'<option value="{choices["webhook"][0]["value"]}">' in page
            for to in ("http://attacker.example/x", "https://crm.example.org/hook",
                       HOOK + "&more=1", redact(HOOK)):  # fmt: skip
                form = {"csrf": csrf_token, "channel": "webhook", "to": to}
                refused = await http.post("/api/notifications/test", data=form)
                assert refused.status_code == 400 and refused.json() == {"error": (
                    "a test message goes only to a configured recipient of webhook "
                    "(choose one, or set [notify.webhook] recipients)")}  # fmt: skip
            vk = {"csrf": csrf_token, "channel": "vk", "to": "13"}  # a chat not configured
            assert (await http.post("/api/notifications/test", data=vk)).status_code == 400
            assert seen == []  # nothing left the server
            chosen = {
                "csrf": csrf_token,
                "channel": "webhook",
                "to": choices["webhook"][0]["value"],
            }
            assert (await http.post("/api/notifications/test", data=chosen)).status_code == 200

    run(go())
    assert seen == [(HOOK, f"Bearer {token}")]  # the token goes to the configured URL only
