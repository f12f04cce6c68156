"""The console's sessions, cookies, client addresses, login limits and response headers, as a
browser or an attacker meets them over HTTP (in-process ASGI client)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import TimestampSigner

from pbxgate.config import Settings
from pbxgate.errors import ConfigError
from pbxgate.web import users as users_module
from pbxgate.web.app import HERE, create_app
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role, UserStore
from tests.report.helpers import write_config
from tests.web.conftest import NOW, PASSWORDS, Clock, client, log_in, run

HOUR = 3600.0
COOKIE = "pbxgate_session"


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", {"time_cost": 1, "memory_cost": 8,
                                                         "parallelism": 1})  # fmt: skip


class Wall:
    """Seconds since the epoch, stepped by the test."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def console(tmp_path: Path, web: str = "", **options: Any) -> Any:
    """A console with vera, lena and anna, its settings' [web] section given in ``web``."""
    extra = f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\n{web}'
    settings = Settings.load(write_config(tmp_path, extra=extra))
    users = UserStore(settings.get(WebSettings).database_path)
    users.add("vera", PASSWORDS["vera"], Role.VIEWER)
    users.add("lena", PASSWORDS["lena"], Role.LISTENER)
    users.add("anna", PASSWORDS["anna"], Role.ADMIN)
    return create_app(settings, users=users, now=lambda: NOW, clock=Clock(), **options)


def peer(app: Any, address: str = "127.0.0.1") -> httpx.AsyncClient:
    """A client connecting from ``address``, over HTTPS (it keeps a ``Secure`` cookie)."""
    transport = httpx.ASGITransport(app=app, client=(address, 5000))
    return httpx.AsyncClient(transport=transport, base_url="https://testserver")


async def csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    return token[1]


async def replay(app: Any, cookie: str) -> tuple[int, int]:
    """What a browser holding only ``cookie`` gets: (/api/today's status, /today's status)."""
    async with client(app) as thief:
        thief.cookies.set(COOKIE, cookie)
        api = await thief.get("/api/today")
        thief.cookies.set(COOKIE, cookie)
        page = await thief.get("/today")
    return api.status_code, page.status_code


# -- sessions end -------------------------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_refused_in_every_browser(tmp_path: Path) -> None:
    app = console(tmp_path)

    async def go() -> None:
        async with client(app) as laptop, client(app) as phone:
            await log_in(laptop, "anna")
            await log_in(phone, "anna")
            stolen = laptop.cookies[COOKIE]
            assert await replay(app, stolen) == (200, 200)
            page = await laptop.get("/today")
            token = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert token is not None
            assert (await laptop.post("/logout", data={"csrf": token[1]})).status_code == 303
            assert await replay(app, stolen) == (401, 303)  # 303: to the login page
            assert (await phone.get("/api/today")).status_code == 401  # out everywhere
            again = await log_in(phone, "anna")
            assert again.status_code == 303 and (await phone.get("/api/today")).status_code == 200

    run(go())
    assert [e.action for e in app.state.users.audit_log(3)] == ["login", "logout", "login"]


@pytest.mark.parametrize(
    "change",
    [
        lambda users: users.set_password("lena", "a brand new password"),
        lambda users: users.set_role("lena", Role.VIEWER),
        lambda users: users.end_sessions("lena"),  # pbxgate web user logout lena
        lambda users: (users.remove("lena"), users.add("lena", PASSWORDS["lena"], Role.ADMIN)),
    ],
    ids=["password", "role", "logout-everywhere", "removed-and-added-again"],
)
def test_a_cookie_replayed_after_a_user_change_is_refused(
    tmp_path: Path, change: Callable[[UserStore], object]
) -> None:
    app = console(tmp_path)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "lena")
            stolen = http.cookies[COOKIE]
            assert await replay(app, stolen) == (200, 200)
            change(app.state.users)
            assert await replay(app, stolen) == (401, 303)
            answer = await http.get("/api/calls")
            assert answer.status_code == 401
            # the browser is told to forget the cookie it holds
            assert "expires=thu, 01 jan 1970" in answer.headers["set-cookie"].lower()

    run(go())


def test_a_session_ends_session_hours_after_login_however_busy(tmp_path: Path) -> None:
    wall = Wall()
    app = console(tmp_path, "session_hours = 2\n", wall=wall)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            for _ in range(7):  # busy all along: a request every 17 minutes
                wall.now += 17 * 60
                assert (await http.get("/api/today")).status_code == 200
            stolen = http.cookies[COOKIE]  # signed again just now, with a fresh Max-Age
            wall.now += 2 * HOUR - 7 * 17 * 60 - 1
            assert (await http.get("/api/today")).status_code == 200  # 1 s before the end
            wall.now += 1
            assert (await http.get("/api/today")).status_code == 401
            assert await replay(app, stolen) == (401, 303)
            assert (await log_in(http, "vera")).status_code == 303  # a new login: 2 hours more
            wall.now += 2 * HOUR - 1
            assert (await http.get("/api/today")).status_code == 200

    run(go())


def test_a_session_dated_ahead_of_the_clock_is_refused(tmp_path: Path) -> None:
    wall = Wall()
    app = console(tmp_path, wall=wall)

    async def go() -> None:
        async with client(app) as http:
            await log_in(http, "vera")
            wall.now -= 30  # the clock stepped back a little: still fine
            assert (await http.get("/api/today")).status_code == 200
            wall.now -= HOUR  # an hour back: the login is "in the future", not to be trusted
            assert (await http.get("/api/today")).status_code == 401

    run(go())


def test_a_cookie_signed_before_sessions_kept_their_login_is_refused(tmp_path: Path) -> None:
    """A session cookie as the console made it before: only the user's name and a CSRF token,
    correctly signed, is no session now (it may have been stolen before the upgrade)."""
    app = console(tmp_path)
    key = (tmp_path / "web.key").read_text(encoding="ascii").strip()
    body = base64.b64encode(json.dumps({"user": "anna", "csrf": "x"}).encode())
    old = TimestampSigner(key).sign(body).decode()
    assert run(replay(app, old)) == (401, 303)
    forged = TimestampSigner("not the key").sign(body).decode()
    assert run(replay(app, forged)) == (401, 303)


def test_session_hours_must_be_positive(tmp_path: Path) -> None:
    extra = f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\nsession_hours = 0\n'
    with pytest.raises(ConfigError, match="session_hours must be 1 or more"):
        Settings.load(write_config(tmp_path, extra=extra)).get(WebSettings)


# -- the cookie's Secure flag -------------------------------------------------------------


@pytest.mark.parametrize(
    ("web", "listen", "secure"),
    [
        ("", "127.0.0.1:8080", False),  # a browser on this machine, plain HTTP (the demo)
        ('trusted_proxies = ["127.0.0.1"]\n', "127.0.0.1:8080", True),  # nginx with TLS in front
        ('trusted_proxies = ["::1"]\n', "[::1]:8080", True),
        ("", "192.0.2.5:8080", True),  # anything but localhost: behind TLS, as documented
        ('secure_cookies = false\ntrusted_proxies = ["127.0.0.1"]\n', "127.0.0.1:8080", False),
        ('secure_cookies = "no"\n', "192.0.2.5:8080", False),
        ("secure_cookies = true\n", "127.0.0.1:8080", True),
    ],
)
def test_the_cookie_is_secure_when_https_is_in_front(
    tmp_path: Path, web: str, listen: str, secure: bool
) -> None:
    app = console(tmp_path, web, listen=listen)

    async def go() -> str:
        async with peer(app) as http:
            answer = await log_in(http, "vera")
            assert answer.status_code == 303
            return str(answer.headers["set-cookie"]).lower()

    attributes = {part.strip() for part in run(go()).split(";")}
    assert ("secure" in attributes) is secure
    assert {"httponly", "samesite=strict"} <= attributes


def test_secure_cookies_takes_auto_true_or_false(tmp_path: Path) -> None:
    extra = f'[web]\ndatabase = "{tmp_path}/web.sqlite3"\nsecure_cookies = "sometimes"\n'
    with pytest.raises(ConfigError, match="secure_cookies must be auto, true or false"):
        Settings.load(write_config(tmp_path, extra=extra)).get(WebSettings)


# -- client addresses ---------------------------------------------------------------------


def test_no_proxy_is_believed_by_default(tmp_path: Path) -> None:
    """Any process on the console's machine connects from 127.0.0.1: by default its
    X-Forwarded-For and single sign-on header are its own say-so, and ignored."""
    app = console(tmp_path, 'proxy_user_header = "X-Remote-User"\n')

    async def go() -> list[int]:
        statuses = []
        async with peer(app, "127.0.0.1") as local:
            token = await csrf(local)
            for i in range(6):  # a "new" address each time: still one address
                form = {"user": f"guess{i}", "password": "x" * 10, "csrf": token}
                forwarded = {"X-Forwarded-For": f"203.0.113.{i}"}
                statuses.append(
                    (await local.post("/login", data=form, headers=forwarded)).status_code
                )
            sso = await local.get("/api/today", headers={"X-Remote-User": "anna"})
            statuses.append(sso.status_code)
        return statuses

    assert run(go()) == [401] * 5 + [429, 401]
    assert {e.address for e in app.state.users.audit_log(10)} == {"127.0.0.1"}


def test_a_named_proxy_is_believed(tmp_path: Path) -> None:
    app = console(
        tmp_path, 'trusted_proxies = ["127.0.0.1"]\nproxy_user_header = "X-Remote-User"\n'
    )

    async def go() -> tuple[int, int]:
        async with peer(app, "127.0.0.1") as proxy:
            form = {"user": "vera", "password": "wrong password", "csrf": await csrf(proxy)}
            failed = await proxy.post("/login", data=form, headers={"X-Forwarded-For": "10.1.2.3"})
            signed_on = await proxy.get("/api/notifications", headers={"X-Remote-User": "anna"})
            return failed.status_code, signed_on.status_code

    assert run(go()) == (401, 200)
    assert app.state.users.audit_log(1)[0].address == "10.1.2.3"


# -- login limits -------------------------------------------------------------------------


def test_failures_from_one_address_do_not_lock_the_user_out_elsewhere(tmp_path: Path) -> None:
    app = console(tmp_path)

    async def go() -> list[int]:
        statuses = []
        async with peer(app, "203.0.113.66") as attacker, peer(app, "10.0.0.7") as office:
            for _ in range(6):
                statuses.append((await log_in(attacker, "anna", "a guessed password")).status_code)
            statuses.append((await log_in(attacker, "vera", "another guessed one")).status_code)
            statuses.append((await log_in(attacker, "anna")).status_code)  # even the right one
            statuses.append((await log_in(office, "anna")).status_code)
        return statuses

    assert run(go()) == [401] * 5 + [429, 429, 429, 303]
    entries = app.state.users.audit_log(20)
    blocked = [(e.who, e.detail, e.address) for e in entries if e.action == "login-blocked"]
    assert blocked[-1] == ("anna", "address", "203.0.113.66")
    assert ("anna", "login", "10.0.0.7") in [(e.who, e.action, e.address) for e in entries]


def test_a_name_guessed_from_many_addresses_is_slowed_down(tmp_path: Path) -> None:
    app = console(tmp_path, "login_attempts = 2\n")  # a ceiling of 20 for one name

    async def attempt(address: str, password: str) -> int:
        async with peer(app, address) as http:
            return (await log_in(http, "anna", password)).status_code

    async def go() -> list[int]:
        statuses = []
        for i in range(10):  # 10 addresses, 2 guesses each: none blocked on its own
            for _ in range(2):
                statuses.append(await attempt(f"198.51.100.{i}", "a guessed password"))
        statuses.append(await attempt("198.51.100.200", PASSWORDS["anna"]))  # a fresh address
        return statuses

    assert run(go()) == [401] * 20 + [429]
    last = app.state.users.audit_log(1)[0]
    assert (last.who, last.action, last.detail) == (
        "anna",
        "login-blocked",
        "name, from all addresses",
    )

    async def other_name() -> int:
        async with peer(app, "198.51.100.202") as http:
            return (await log_in(http, "vera")).status_code

    assert run(other_name()) == 303  # only that name


# -- response headers ---------------------------------------------------------------------

CSP = {
    "default-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "script-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'none'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}


def test_every_response_carries_the_security_headers(tmp_path: Path) -> None:
    app = console(tmp_path)

    async def go() -> list[httpx.Response]:
        async with client(app) as http:
            answers = [
                await http.get("/health"),
                await http.get("/login"),
                await http.get("/today"),  # a redirect to the login page
                await http.get("/api/calls"),  # 401
                await http.get("/static/console.css"),
                await http.get("/no/such/page"),
                await log_in(http, "vera", "not her password"),
            ]
            await log_in(http, "vera")
            answers += [
                await http.get("/today"),
                await http.get("/api/today"),
                await http.get("/reports?period=yesterday"),
                await http.get("/notifications"),  # 403
                await http.get("/api/calls?direction=sideways"),  # 400
            ]
        return answers

    for answer in run(go()):
        where = f"{answer.request.url.path} ({answer.status_code})"
        headers = answer.headers
        policy = {
            name: set(values)
            for name, *values in (
                part.split() for part in headers["content-security-policy"].split(";")
            )
        }
        assert policy == CSP, where
        assert headers["x-content-type-options"] == "nosniff", where
        assert headers["referrer-policy"] == "same-origin", where
        assert headers["x-frame-options"] == "DENY", where
        assert len(headers.get_list("content-security-policy")) == 1, where


def test_templates_and_scripts_have_nothing_the_policy_blocks() -> None:
    """script-src 'self': every script is a file; no inline script, no on* attribute, no
    javascript: URL, nothing evaluated from a string."""
    for template in sorted((HERE / "templates").glob("*.html")):
        text = template.read_text(encoding="utf-8")
        scripts = re.findall(r"(<script\b[^>]*>)(.*?)</script>", text, flags=re.I | re.S)
        assert len(scripts) == text.lower().count("<script"), template.name
        for tag, body in scripts:
            assert re.search(r'\bsrc="/static/[\w.-]+\.js"', tag), f"{template.name}: {tag}"
            assert not body.strip(), f"{template.name}: an inline script"
        assert not re.search(r"\son[a-z]+\s*=", text, flags=re.IGNORECASE), template.name
        assert "javascript:" not in text.lower(), template.name
    for script in sorted((HERE / "static").glob("*.js")):
        code = script.read_text(encoding="utf-8")
        assert not re.search(r"\beval\s*\(|new Function\b|setTimeout\(\s*['\"`]", code), script.name
