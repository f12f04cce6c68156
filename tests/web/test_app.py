"""The web console over HTTP (in-process ASGI client): login, roles, CSRF, pages and their
``/api/`` twins over the fixture day of tests/cdr in SQLite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from pbxgate.config import Settings
from pbxgate.web.app import create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import write_config
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in, run


def test_nothing_without_login_but_health(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            # no start-up work ran (no lifespan here): up, not ready
            assert (await http.get("/health")).json() == {"status": "ok", "ready": False}
            page = await http.get("/today")
            assert page.status_code == 303 and page.headers["location"] == "/login?next=/today"
            shared = await http.get("/calls?direction=inbound&src=8499%2A")  # a shared link
            assert (
                shared.headers["location"]
                == "/login?next=/calls%3Fdirection%3Dinbound%26src%3D8499%252A"
            )
            login = await http.get(shared.headers["location"])
            assert 'name="next" value="/calls?direction=inbound&amp;src=8499%2A"' in login.text
            for path in ("/api/today", "/api/calls"):
                answer = await http.get(path)
                assert answer.status_code == 401 and answer.json() == {"error": "log in first"}

    run(go())


def test_login_today_and_calls(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            answer = await log_in(http, "vera")
            assert answer.status_code == 303 and answer.headers["location"] == "/calls"
            cookie = answer.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            today = (await http.get("/api/today", headers={"accept-language": "en"})).json()
            kpis = {k["key"]: k["value"] for k in today["kpis"]}
            assert kpis["missed"] == 4  # the fixture day's hand-checked figure
            page = await http.get("/today", headers={"accept-language": "en-GB,en;q=0.9"})
            assert page.status_code == 200 and "Missed calls" in page.text
            assert 'data-refresh="60"' in page.text and "/static/refresh.js" in page.text
            calls = (await http.get("/api/calls?direction=inbound&per_page=3")).json()
            assert calls["per_page"] == 3 and len(calls["rows"]) == 3
            assert calls["total"] >= 3 and calls["pages"] == -(-calls["total"] // 3)
            assert all(row["direction"] == "inbound" for row in calls["rows"])
            starts = [row["start"] for row in calls["rows"]]
            assert starts == sorted(starts, reverse=True)
            second = (await http.get("/api/calls?direction=inbound&per_page=3&page=2")).json()
            assert not {r["linkedid"] for r in second["rows"]} & {
                r["linkedid"] for r in calls["rows"]
            }
            html = await http.get("/calls?direction=inbound&per_page=3")
            assert "page=2" in html.text and '<table class="calls">' in html.text
            bad = await http.get("/api/calls?direction=sideways")
            assert bad.status_code == 400 and "unknown direction" in bad.json()["error"]

    run(go())


def test_wrong_password_is_audited_and_rate_limited(console: tuple[Any, Clock]) -> None:
    app, clock = console

    async def go() -> None:
        async with client(app) as http:
            for _ in range(5):
                answer = await log_in(http, "vera", "not-the-password")
                assert answer.status_code == 401
            blocked = await log_in(http, "vera")  # the right password, but too soon
            assert blocked.status_code == 429
            clock.now += 301
            assert (await log_in(http, "vera")).status_code == 303

    run(go())
    actions = [(e.who, e.action) for e in app.state.users.audit_log(20)]
    assert actions.count(("vera", "login-failed")) == 5
    assert ("vera", "login-blocked") in actions and ("vera", "login") in actions
    assert not any("not-the-password" in str(e) for e in app.state.users.audit_log(20))


def test_post_needs_the_csrf_token(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            refused = await http.post("/logout", data={"csrf": "forged"})
            assert refused.status_code == 403 and "CSRF" in refused.text
            assert (await http.get("/api/today")).status_code == 200  # still logged in
            page = await http.get("/today")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            out = await http.post("/logout", data={"csrf": token[1]})
            assert out.status_code == 303
            assert (await http.get("/api/today")).status_code == 401

    run(go())


def test_a_removed_user_is_out_at_once(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            assert (await http.get("/api/calls")).status_code == 200
            app.state.users.remove("lena")
            assert (await http.get("/api/calls")).status_code == 401

    run(go())


def test_login_needs_the_form_token(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            form = {"user": "vera", "password": PASSWORDS["vera"], "csrf": "x"}
            assert (await http.post("/login", data=form)).status_code == 403
            assert (await http.get("/api/today")).status_code == 401

    run(go())


def test_next_never_leaves_the_site(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            for target in ("//evil.example/x", "https://evil.example/", "/\\evil"):
                page = await http.get("/login")
                token = re.search(r'name="csrf" value="([^"]+)"', page.text)
                assert token is not None
                form = {"user": "vera", "password": PASSWORDS["vera"], "csrf": token[1],
                        "next": target}  # fmt: skip
                answer = await http.post("/login", data=form)
                assert answer.headers["location"] == "/"

    run(go())


def test_a_huge_name_is_cut_before_it_is_kept(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        async with client(app) as http:
            assert (await log_in(http, "x" * 5000, "whatever-pass")).status_code == 401

    run(go())
    entry = app.state.users.audit_log(1)[0]
    assert entry.action == "login-failed" and entry.who == "x" * 64


def test_single_sign_on_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    extra = (
        f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\nproxy_user_header = "X-Remote-User"\n'
        'trusted_proxies = ["127.0.0.1"]\n'
    )
    settings = Settings.load(write_config(tmp_path, extra=extra))
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    app = create_app(settings, users=users, now=lambda: NOW)

    async def ask(peer: str, headers: dict[str, str]) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return (await http.get("/api/calls", headers=headers)).status_code

    sso = {"X-Remote-User": "vera", "X-Forwarded-For": "10.1.2.3"}
    assert run(ask("127.0.0.1", sso)) == 200
    assert run(ask("10.9.9.9", sso)) == 401  # anyone else sending the header is ignored
    assert run(ask("127.0.0.1", {"X-Remote-User": "nobody"})) == 401
