"""The authorisation matrix, made from the application's own routes: every endpoint a page adds
is covered without being named here.

For each route but the public ones, for anonymous, viewer, listener and admin users:
anonymous gets 401 under /api/ and the login page elsewhere; a role below the endpoint's
``.role`` (set by ``@requires``) gets 403; a role at or above it is let through (any answer but
401/403: a path parameter is filled with something from the fixture day, and 404 is fine where
it is not). A POST without the CSRF token is refused even for an admin. An API token works on
GETs under /api/, is refused on POSTs and HTML pages, and stops working once revoked. A route
with no ``.role`` fails the test unless it is in PUBLIC.

Requests go straight to the ASGI app (``call``) rather than through httpx's ASGITransport,
which waits for the whole body: an event stream (``text/event-stream``) never ends, so its
answer is judged by its status line and the stream is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from pbxgate.web import users as users_module
from pbxgate.web.openapi import PATH_PARAMETER, handlers, walk
from pbxgate.web.users import Role
from tests.cdr.fixture_calls import LEGS, REC_A
from tests.web.conftest import Clock, client, log_in, run

# Served to anyone: the monitor's health check and the login form itself.
PUBLIC = {"/health", "/login"}
MOUNTS_WITHOUT_LOGIN = {"/static"}  # files: the stylesheet the login page needs
ROLES = (Role.VIEWER, Role.LISTENER, Role.ADMIN)
USERS = {Role.VIEWER: "vera", Role.LISTENER: "lena", Role.ADMIN: "anna"}
FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
# Values that exist in the fixture day (tests/cdr/fixture_calls.py) for path parameters.
SAMPLES = {
    "linkedid": "link-C",  # a missed inbound call
    "uniqueid": LEGS[0].uniqueid,
    "date": "2016-03-18",
    "day": "2016-03-18",
    "file": REC_A,
    "filename": REC_A,
    "name": "vera",
    "user": "vera",
}
# Where another call of the fixture day fits better: the one with a recording (REC_A).
SAMPLES_UNDER = {"recording": {"linkedid": "link-A"}}


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before ``console`` makes its users: cheap password hashes for the many logins here."""
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", FAST)


@dataclass(frozen=True)
class Endpoint:
    method: str
    raw: str  # as the route writes it: /api/missed/{linkedid}/handled
    role: Role | None

    @property
    def path(self) -> str:
        samples = dict(SAMPLES)
        for word, better in SAMPLES_UNDER.items():
            samples.update(better if word in self.raw else {})

        def fill(match: re.Match[str]) -> str:
            return samples.get(match[1], "1" if match[2] in ("int", "float") else "x")

        return PATH_PARAMETER.sub(fill, self.raw)

    @property
    def api(self) -> bool:
        return self.raw.startswith("/api/")

    def __str__(self) -> str:
        return f"{self.method} {self.raw}"


def guarded(app: Any) -> list[Endpoint]:
    """Every method of every route but the public ones, with the role its endpoint needs."""
    found = []
    for raw, route in walk(app.routes):
        if raw in PUBLIC:
            continue
        for method, handler in handlers(route):
            role = getattr(handler, "role", None)
            found.append(Endpoint(method, raw, role if isinstance(role, Role) else None))
    return found


def other_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """WebSocket routes and mounted applications, which ``walk`` does not yield."""
    for route in routes:
        if isinstance(route, WebSocketRoute):
            yield prefix + route.path, route.endpoint
        elif isinstance(route, Mount) and route.routes:
            yield from other_routes(route.routes, prefix + route.path)
        elif isinstance(route, Mount):
            yield prefix + route.path, route.app


# -- talking to the app --------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


async def call(
    app: Any, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> Answer:
    """One request straight to the ASGI app; an event stream is cut after its status line."""
    given = {"host": "testserver", **(headers or {})}
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in given.items()],
    }  # fmt: skip
    start: dict[str, Any] = {}
    chunks: list[bytes] = []
    finished = asyncio.Event()
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client stays until the request is cancelled
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            kind = dict(message.get("headers", [])).get(b"content-type", b"")
            if kind.startswith(b"text/event-stream"):
                finished.set()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                finished.set()

    task = asyncio.create_task(app(scope, receive, send))
    waiter = asyncio.create_task(finished.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # the app's own error, if it raised
    else:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert start, f"{method} {path}: no response"
    headers_out = {k.decode().lower(): v.decode() for k, v in start.get("headers", [])}
    return Answer(start["status"], headers_out, b"".join(chunks))


@dataclass(frozen=True)
class Session:
    cookie: str
    csrf: str

    def headers(self, *, csrf: bool) -> dict[str, str]:
        made = {"cookie": self.cookie, "content-type": "application/x-www-form-urlencoded"}
        if csrf:
            made["x-csrf-token"] = self.csrf
        return made


async def session_of(app: Any, name: str) -> Session:
    """A logged-in session's cookie and CSRF token (made by the first page after login)."""
    async with client(app) as http:
        assert (await log_in(http, name)).status_code == 303
        page = await http.get("/today")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    return Session(cookie, token[1])


def describe(endpoint: Endpoint, who: str, answer: Answer) -> str:
    return f"{endpoint} as {who}: {answer.status} {answer.text[:200]!r}"


# -- the matrix ----------------------------------------------------------------------------


def test_every_endpoint_needs_a_role(console: tuple[Any, Clock]) -> None:
    """An endpoint without @requires fails here: it would be served to anyone."""
    app, _ = console
    endpoints = guarded(app)
    assert len(endpoints) >= 8  # today, calls and their twins, logout, /, the API pages
    unguarded = [str(e) for e in endpoints if e.role is None]
    assert not unguarded, f"no @requires(Role...) on: {', '.join(unguarded)}"
    others = [
        path
        for path, target in other_routes(app.routes)
        if path not in MOUNTS_WITHOUT_LOGIN and not isinstance(getattr(target, "role", None), Role)
    ]
    assert not others, f"websocket routes or mounts without a role: {', '.join(others)}"


def test_anonymous_users_are_sent_to_log_in(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        for e in guarded(app):
            answer = await call(app, e.method, e.path)
            if e.api:
                assert answer.status == 401, describe(e, "anonymous", answer)
                assert json.loads(answer.body) == {"error": "log in first"}
            else:
                assert answer.status == 303, describe(e, "anonymous", answer)
                assert answer.headers["location"] == f"/login?next={e.path}"

    run(go())


def test_each_role_gets_what_it_may_and_no_more(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> None:
        for role in ROLES:
            who = await session_of(app, USERS[role])
            for e in guarded(app):
                assert e.role is not None, f"{e} has no role"
                if not role.allows(e.role):
                    # With the right CSRF token: only the role can refuse it.
                    answer = await call(app, e.method, e.path, who.headers(csrf=True))
                    assert answer.status == 403, describe(e, role.value, answer)
                    assert f"needs the {e.role.value} role" in answer.text
                elif e.method != "GET":  # let through by role, refused for the missing token
                    answer = await call(app, e.method, e.path, who.headers(csrf=False))
                    assert answer.status == 403, describe(e, role.value, answer)
                    assert "CSRF" in answer.text
                else:
                    answer = await call(app, e.method, e.path, who.headers(csrf=False))
                    assert answer.status not in (401, 403), describe(e, role.value, answer)
                    assert not answer.headers.get("location", "").startswith("/login")

    run(go())


def test_a_post_with_its_token_is_let_through(console: tuple[Any, Clock]) -> None:
    """Every POST, by the least role it needs, with the CSRF token: not refused. (The form is
    empty: the endpoint answers whatever it answers to that, 400 or a redirect.)"""
    app, _ = console

    async def go() -> None:
        sessions = {role: await session_of(app, USERS[role]) for role in ROLES}
        for e in guarded(app):
            if e.method == "GET" or e.role is None:
                continue
            who = sessions[e.role]
            answer = await call(app, e.method, e.path, who.headers(csrf=True))
            assert answer.status not in (401, 403), describe(e, e.role.value, answer)
            if e.raw == "/logout":  # that one did what it says: a new session for the rest
                sessions[e.role] = await session_of(app, USERS[e.role])

    run(go())


# -- API tokens ----------------------------------------------------------------------------


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def test_a_token_reads_the_api_and_nothing_else(console: tuple[Any, Clock]) -> None:
    app, _ = console
    _, secret = app.state.users.add_token("anna", Role.ADMIN, "matrix")

    async def go() -> None:
        admin = await session_of(app, "anna")
        for e in guarded(app):
            answer = await call(app, e.method, e.path, bearer(secret))
            if e.api and e.method == "GET":
                assert answer.status not in (401, 403), describe(e, "token", answer)
                assert "set-cookie" not in answer.headers  # no session is made for a token
                continue
            assert answer.status == 401, describe(e, "token", answer)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "only reads" in json.loads(answer.body)["error"]
            # Beside a session, with its CSRF token: the token is refused all the same.
            both = {**admin.headers(csrf=True), **bearer(secret)}
            answer = await call(app, e.method, e.path, both)
            assert answer.status == 401, describe(e, "token and session", answer)

    run(go())


def test_a_token_does_at_most_its_role_and_its_users(console: tuple[Any, Clock]) -> None:
    app, _ = console
    users = app.state.users
    _, capped = users.add_token("anna", Role.VIEWER, "viewer only")
    _, lenas = users.add_token("lena", Role.LISTENER)
    reads = [e for e in guarded(app) if e.api and e.method == "GET"]
    assert any(e.raw == "/api/openapi.json" for e in reads)

    async def go() -> None:
        for e in reads:
            assert e.role is not None
            for secret, role in ((capped, Role.VIEWER), (lenas, Role.LISTENER)):
                answer = await call(app, e.method, e.path, bearer(secret))
                if role.allows(e.role):
                    assert answer.status not in (401, 403), describe(e, role.value, answer)
                else:
                    assert answer.status == 403, describe(e, role.value, answer)
        users.set_role("lena", Role.VIEWER)  # the user's role bounds the token at once
        answer = await call(app, "GET", "/api/today", bearer(lenas))
        assert answer.status == 200
        for e in reads:
            if e.role is not None and not Role.VIEWER.allows(e.role):
                answer = await call(app, e.method, e.path, bearer(lenas))
                assert answer.status == 403, describe(e, "demoted lena", answer)

    run(go())


def test_a_revoked_token_is_refused_at_once(console: tuple[Any, Clock]) -> None:
    app, _ = console
    users = app.state.users
    made, secret = users.add_token("vera")
    _, other = users.add_token("lena")

    async def go() -> None:
        assert (await call(app, "GET", "/api/today", bearer(secret))).status == 200
        users.remove_token(made.id)
        answer = await call(app, "GET", "/api/today", bearer(secret))
        assert answer.status == 401
        assert json.loads(answer.body) == {"error": "the API token is unknown or revoked"}
        assert (await call(app, "GET", "/api/today", bearer(other))).status == 200
        users.remove("lena")  # a removed user's tokens go with them
        assert (await call(app, "GET", "/api/today", bearer(other))).status == 401
        for wrong in ("", "pbxgate_", secret[:-1], secret + "x", "x" * 5000):
            assert (await call(app, "GET", "/api/today", bearer(wrong))).status == 401

    run(go())


def test_a_proxys_basic_login_leaves_the_session_alone(console: tuple[Any, Clock]) -> None:
    """A reverse proxy with its own Basic login passes Authorization on: the session decides."""
    app, _ = console

    async def go() -> None:
        vera = await session_of(app, "vera")
        basic = {**vera.headers(csrf=False), "authorization": "Basic dmVyYTp4"}
        assert (await call(app, "GET", "/api/today", basic)).status == 200
        assert (await call(app, "GET", "/today", basic)).status == 200
        assert (await call(app, "GET", "/api/today", {"authorization": "Basic eDp4"})).status == 401

    run(go())


def test_the_matrix_sees_an_unguarded_route(console: tuple[Any, Clock]) -> None:
    """The checks above would catch an endpoint added without @requires (and a mounted app)."""
    app, _ = console

    async def leak(request: Any) -> Any:
        raise AssertionError("never called")

    app.router.routes.append(Route("/api/leak/{linkedid}", leak, methods=["GET", "POST"]))
    app.router.routes.append(Mount("/files", StaticFiles(directory=".")))
    found = [(str(e), e.path) for e in guarded(app) if e.role is None]
    assert found == [("GET /api/leak/{linkedid}", "/api/leak/link-C"),
                     ("POST /api/leak/{linkedid}", "/api/leak/link-C")]  # fmt: skip
    assert [path for path, _ in other_routes(app.routes)] == ["/static", "/files"]
