"""The API's description (OpenAPI 3.1 at /api/openapi.json) and the /api page, made from the
routes at run time: checked with openapi-spec-validator, against the app's own routes, and on
routes made here (no docstring, no declared parameters, a path convertor, a Mount)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from pbxgate.web import users as users_module
from pbxgate.web.openapi import document, endpoints, walk
from pbxgate.web.security import requires
from pbxgate.web.users import Role
from tests.web.conftest import Clock, client, log_in, run

FAST = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}

# Declared as a page module declares them (this module is the endpoints' module below).
API_PARAMETERS: dict[str, Any] = {
    "/api/things/{id:int}": {
        "id": "the thing's number",
        "kind": {"description": "which kind", "schema": {"enum": ["big", "small"]}},
        "limit": "at most this many, <b>not</b> `bold`",
    },
    "/api/broken": ["not", "a", "dict"],  # ignored: the endpoint still appears
}


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(users_module, "HASHER_OPTIONS", FAST)


@requires(Role.LISTENER)
async def thing(request: Request) -> Response:
    """One thing by its ``number``.

    The longer story, which goes into the description.
    """
    return JSONResponse({})


@requires(Role.ADMIN)
async def broken_api(request: Request) -> Response:
    return JSONResponse({})


async def unguarded(request: Request) -> Response:
    """Nobody guards this one."""
    return JSONResponse({})


ROUTES = [
    Route("/things", thing),  # a page: not in the API
    Route("/api/things/{id:int}", thing, methods=["GET", "POST"]),
    Mount("/api/more", routes=[Route("/broken", broken_api)]),
    Route("/api/broken", broken_api),
    Route("/api/broken", unguarded),  # shadowed: Starlette answers with the first
    Route("/api/open", unguarded),
]


def test_the_document_follows_the_routes() -> None:
    doc = document(ROUTES)
    validate(doc)  # OpenAPI 3.1, by openapi-spec-validator
    assert list(doc["paths"]) == ["/api/broken", "/api/more/broken", "/api/open",
                                  "/api/things/{id}"]  # fmt: skip
    get = doc["paths"]["/api/things/{id}"]["get"]
    assert get["summary"] == "One thing by its ``number``."
    assert get["description"] == "The longer story, which goes into the description."
    assert get["x-pbxgate-role"] == "listener" and "security" not in get  # session or token
    assert get["parameters"] == [
        {"description": "the thing's number", "name": "id", "in": "path", "required": True,
         "schema": {"type": "integer"}},
        {"name": "kind", "in": "query", "description": "which kind",
         "schema": {"enum": ["big", "small"]}},
        {"name": "limit", "in": "query", "schema": {"type": "string"},
         "description": "at most this many, <b>not</b> `bold`"},
    ]  # fmt: skip
    assert set(get["responses"]) == {"200", "400", "401", "403", "404"}
    post = doc["paths"]["/api/things/{id}"]["post"]
    assert post["security"] == [{"session": []}]  # a token only reads
    assert post["parameters"][-1]["name"] == "X-CSRF-Token"
    assert post["operationId"] == "post_api_things_id" != get["operationId"]
    broken = doc["paths"]["/api/broken"]["get"]
    assert broken["summary"] == "broken api" and broken["parameters"] == []
    assert broken["x-pbxgate-role"] == "admin"  # the first route of the path, as served
    assert doc["paths"]["/api/more/broken"]["get"]["x-pbxgate-role"] == "admin"
    assert doc["paths"]["/api/open"]["get"]["security"] == []
    assert doc["paths"]["/api/open"]["get"]["x-pbxgate-role"] is None


def test_the_console_describes_every_api_route(console: tuple[Any, Clock]) -> None:
    app, _ = console

    async def go() -> dict[str, Any]:
        async with client(app) as http:
            assert (await http.get("/api/openapi.json")).status_code == 401
            await log_in(http, "vera")
            answer = await http.get("/api/openapi.json")
            assert answer.status_code == 200
            doc: dict[str, Any] = answer.json()
            return doc

    doc = run(go())
    validate(doc)
    served = set()
    for raw, route in walk(app.routes):
        if raw.startswith("/api/"):
            path = re.sub(r"{(\w+)(:\w+)?}", r"{\1}", raw)
            served |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    described = {(path, m) for path, ops in doc["paths"].items() for m in ops}
    assert described == served and ("/api/calls", "get") in described
    for e in endpoints(app.routes):
        op = doc["paths"][e.path][e.method.lower()]
        assert e.role is not None and op["x-pbxgate-role"] == e.role.value
        assert op["summary"]
    calls = doc["paths"]["/api/calls"]["get"]
    names = [p["name"] for p in calls["parameters"]]
    assert {"from", "to", "direction", "did", "page", "per_page"} <= set(names)
    assert doc["paths"]["/api/today"]["get"]["summary"].startswith("Today so far")
    assert doc["paths"]["/api/openapi.json"]["get"]["x-pbxgate-role"] == "viewer"


def articles(html: str) -> dict[tuple[str, str], str]:
    found = re.findall(
        r'<article class="api-endpoint"[^>]*data-method="(\w+)" data-path="([^"]+)".*?</article>',
        html,
        re.S,
    )
    bodies = re.findall(r'<article class="api-endpoint".*?</article>', html, re.S)
    return {(m, unescape(p)): body for (m, p), body in zip(found, bodies, strict=True)}


def test_the_api_page_lists_every_endpoint(console: tuple[Any, Clock]) -> None:
    app, _ = console
    listed = endpoints(app.routes)

    async def go() -> tuple[str, str, str]:
        async with client(app) as http:
            assert (await http.get("/api")).headers["location"] == "/login?next=/api"
            await log_in(http, "vera")
            english = await http.get("/api", headers={"accept-language": "en"})
            russian = await http.get("/api")
            today = await http.get("/today")
            return english.text, russian.text, today.text

    english, russian, today = run(go())
    shown = articles(english)
    assert set(shown) == {(e.method, e.path) for e in listed}
    calls = shown[("GET", "/api/calls")]
    assert "One page of calls" in calls and "<code>per_page</code>" in calls
    assert 'data-role="viewer"' in calls and "your role is not enough" not in calls
    for e in listed:
        assert e.role is not None
        body = shown[(e.method, e.path)]
        assert f'data-role="{e.role.value}"' in body
        assert ("your role is not enough" in body) == (not Role.VIEWER.allows(e.role))
    assert "Authorization: Bearer $TOKEN" in english
    assert "pbxgate web token add vera" in english and "http://testserver/api/today" in english
    assert 'href="/api/openapi.json"' in english
    assert "Из скрипта" in russian and "Console API" not in russian
    assert '<a href="/api"' in today  # the menu entry, for every logged-in user


def test_the_api_page_marks_what_a_role_may_not_call(console: tuple[Any, Clock]) -> None:
    """A route that needs more than the reader's role is marked, by the route's own role."""
    app, _ = console
    app.router.routes.append(Route("/api/things/{id:int}", thing))

    async def go() -> tuple[str, str]:
        async with client(app) as http:
            await log_in(http, "vera")
            vera = (await http.get("/api", headers={"accept-language": "en"})).text
        async with client(app) as http:
            await log_in(http, "lena")
            lena = (await http.get("/api", headers={"accept-language": "en"})).text
        return vera, lena

    vera, lena = run(go())
    mine = articles(vera)[("GET", "/api/things/{id}")]
    assert "your role is not enough" in mine and 'data-role="listener"' in mine
    assert "the thing&#39;s number" in mine and "path, required" in mine
    assert "One thing by its <code>number</code>." in mine  # docstrings' code, as code
    assert "at most this many, &lt;b&gt;not&lt;/b&gt; <code>bold</code>" in mine
    assert "your role is not enough" not in articles(lena)[("GET", "/api/things/{id}")]
