"""The console's API described for scripts: OpenAPI 3.1 at ``/api/openapi.json`` and, for people,
the ``/api`` page listing every endpoint with its method, parameters and the role it needs.

Both are made at run time from the application's routes, so an endpoint a page adds appears
without anyone writing it down twice. For each route under ``/api/``:

    method, path        from the route (HEAD, which Starlette adds to every GET, is left out)
    role                the ``.role`` that ``security.requires`` puts on the endpoint
    summary             the endpoint's docstring: its first paragraph; the rest is the
                        description (no docstring: the function's name)
    path parameters     from the path itself, ``{linkedid}``, ``{id:int}``
    query parameters    what the endpoint's module declares in ``API_PARAMETERS``

A page module declares the parameters of its ``/api/`` endpoints as a dict keyed by the route's
path as written in its ``Route``; each parameter is a one-line description (a string, in the
query) or an OpenAPI parameter object without its name::

    API_PARAMETERS = {
        "/api/calls": {
            "direction": "inbound, outbound or internal",
            "per_page": {"description": "rows a page", "schema": {"type": "integer"}},
        },
        "/api/missed/{linkedid}/handled": {"linkedid": "the call's linkedid"},
    }

An endpoint with no declared parameters still appears. A script authenticates with an API token
(``pbxgate web token add USER``) as ``Authorization: Bearer``: GET only; see ``security.py``.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pbxgate import __version__
from pbxgate.config import Settings
from pbxgate.web.render import add_text, render
from pbxgate.web.security import requires
from pbxgate.web.users import Role

OPENAPI_VERSION = "3.1.0"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # in the order they are listed
PATH_PARAMETER = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?}")
# Starlette's path convertors (starlette.convertors.CONVERTOR_TYPES) as JSON Schema.
CONVERTOR_SCHEMAS: dict[str, dict[str, str]] = {
    "str": {"type": "string"},
    "path": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "uuid": {"type": "string", "format": "uuid"},
}
ERROR = {"$ref": "#/components/schemas/Error"}
CSRF_HEADER = {
    "name": "X-CSRF-Token",
    "in": "header",
    "required": True,
    "description": "the session's CSRF token (in every page's forms)",
    "schema": {"type": "string"},
}
SECURITY_SCHEMES = {
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "pbxgate_session",
        "description": "A browser's login (POST /login). Every POST also needs the session's "
        "CSRF token in the X-CSRF-Token header.",
    },
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token made on the server with `pbxgate web token add USER`; "
        "GET requests only. It may do the lesser of its own role and its user's.",
    },
}

add_text(
    {
        "ru": {
            "api": "API",
            "api_title": "API консоли",
            "api_intro": "Всё, что показывают страницы, доступно в JSON по адресам /api/…: "
            "те же цифры для CRM, Grafana или своего скрипта. Описание в формате OpenAPI 3.1:",
            "api_script": "Из скрипта",
            "api_script_text": "Браузер входит по паролю. Скрипту администратор сервера выдаёт "
            "токен командой ниже; токен печатается один раз, хранится только его хеш. Он "
            "действует только для GET-запросов к /api/, с ролью не выше своей и своего "
            "пользователя; отзывается сразу (pbxgate web token remove).",
            "api_endpoints": "Адреса",
            "api_contents": "Содержание",
            "api_role": "Роль",
            "api_not_yours": "вашей роли недостаточно",
            "api_public": "без входа",
            "api_params": "Параметры",
            "api_name": "Имя",
            "api_in": "Где",
            "api_about": "Описание",
            "api_required": "обязательный",
            "api_no_params": "Без параметров.",
            "api_csrf": "POST из браузера: с заголовком X-CSRF-Token; токеном нельзя.",
        },
        "en": {
            "api": "API",
            "api_title": "Console API",
            "api_intro": "Everything the pages show is JSON under /api/…: the same numbers for "
            "a CRM, Grafana or your own script. The OpenAPI 3.1 description:",
            "api_script": "From a script",
            "api_script_text": "A browser logs in with a password. For a script, the server's "
            "administrator makes a token with the command below; it is printed once and only "
            "its hash is kept. It works for GET requests under /api/ only, with at most its own "
            "role and its user's, and is revoked at once (pbxgate web token remove).",
            "api_endpoints": "Endpoints",
            "api_contents": "Contents",
            "api_role": "Role",
            "api_not_yours": "your role is not enough",
            "api_public": "no login",
            "api_params": "Parameters",
            "api_name": "Name",
            "api_in": "In",
            "api_about": "About",
            "api_required": "required",
            "api_no_params": "No parameters.",
            "api_csrf": "POST from a browser: with the X-CSRF-Token header; not with a token.",
        },
    }
)


@dataclass(frozen=True)
class Endpoint:
    """One method of one ``/api/`` route, as both the document and the page show it."""

    method: str
    path: str  # OpenAPI's form: /api/missed/{linkedid}
    role: Role | None  # None: public (only /health is, and it is not under /api/)
    summary: str
    description: str
    parameters: tuple[dict[str, Any], ...]

    @property
    def operation_id(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "_", f"{self.method} {self.path}").strip("_").lower()


# -- reading the routes --------------------------------------------------------------------


def walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every plain route with its full path (as written, ``{id:int}`` included), into Mounts."""
    for route in routes:
        if isinstance(route, Mount):
            yield from walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            yield prefix + route.path, route


def handlers(route: Route) -> Iterator[tuple[str, Any]]:
    """(method, the function that answers it) for each method of ``route`` but HEAD."""
    target = route.endpoint
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.isclass(target):  # an HTTPEndpoint: one method each
        for method in METHODS:
            if hasattr(target, method.lower()):
                yield method, getattr(target, method.lower())
        return
    for method in METHODS:
        if method in (route.methods or {"GET"}):
            yield method, target


def endpoints(routes: Iterable[BaseRoute]) -> list[Endpoint]:
    """The ``/api/`` endpoints of ``routes``, by path then method; the first route of a path
    and method wins, as it does when Starlette routes a request."""
    found: dict[tuple[str, str], Endpoint] = {}
    for raw, route in walk(routes):
        if not raw.startswith("/api/"):
            continue
        for method, handler in handlers(route):
            made = _endpoint(raw, method, handler)
            found.setdefault((made.path, method), made)
    return sorted(found.values(), key=lambda e: (e.path, METHODS.index(e.method)))


def _endpoint(raw: str, method: str, handler: Any) -> Endpoint:
    doc = inspect.getdoc(handler) or getattr(handler, "__name__", "").replace("_", " ")
    first, _, rest = doc.strip().partition("\n\n")
    role = getattr(handler, "role", None)
    return Endpoint(
        method=method,
        path=PATH_PARAMETER.sub(r"{\1}", raw),
        role=role if isinstance(role, Role) else None,
        summary=" ".join(first.split()),
        description=rest.strip(),
        parameters=tuple(parameters(raw, _declared(handler, raw))),
    )


def _declared(handler: Any, raw: str) -> dict[str, Any]:
    """What the handler's module declares for ``raw`` in API_PARAMETERS ({} if nothing)."""
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    table = getattr(module, "API_PARAMETERS", None)
    if not isinstance(table, dict):
        return {}
    found = table.get(raw, table.get(PATH_PARAMETER.sub(r"{\1}", raw)))
    return found if isinstance(found, dict) else {}


def parameters(raw: str, declared: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """OpenAPI parameter objects: the path's own (required, typed by their convertor), then
    the declared ones, each a description or a parameter object without its name."""
    in_path = {name: conv or "str" for name, conv in PATH_PARAMETER.findall(raw)}
    for name, convertor in in_path.items():
        about = _as_parameter(declared.get(name, ""))
        about.setdefault("schema", CONVERTOR_SCHEMAS.get(convertor, {"type": "string"}))
        about.update({"name": name, "in": "path", "required": True})
        yield about
    for name, value in declared.items():
        if name not in in_path:
            yield {"name": str(name), "in": "query", "schema": {"type": "string"},
                   **_as_parameter(value)}  # fmt: skip


def _as_parameter(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "name"}
    return {"description": str(value)} if value else {}


# -- the OpenAPI document ------------------------------------------------------------------


def document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every ``/api/`` endpoint of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints(routes):
        paths.setdefault(e.path, {})[e.method.lower()] = operation(e)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "pbxgate console API",
            "version": __version__,
            "description": "The numbers the console's pages show, as JSON. A browser uses its "
            "login session; a script an API token (`pbxgate web token add USER`) sent as "
            "`Authorization: Bearer TOKEN`, for GET requests only. Each operation names the "
            "least role it needs in `x-pbxgate-role` (viewer < listener < admin).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": SECURITY_SCHEMES,
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string", "description": "what is wrong"}},
                    "required": ["error"],
                }
            },
        },
        "security": [{"session": []}, {"token": []}],
    }


def operation(e: Endpoint) -> dict[str, Any]:
    params = list(e.parameters)
    if e.method != "GET":
        params.append(CSRF_HEADER)
    responses: dict[str, Any] = {
        "200": {"description": "the data", "content": {"application/json": {}}},
        "400": _error("a bad parameter: one line saying what is wrong"),
    }
    if e.role is not None:
        responses["401"] = _error("not logged in, or an unknown or revoked token")
        responses["403"] = _error(f"needs the {e.role.value} role (or a fresh CSRF token)")
    if any(p["in"] == "path" for p in e.parameters):
        responses["404"] = _error("nothing by that name")
    made: dict[str, Any] = {
        "operationId": e.operation_id,
        "summary": e.summary,
        "parameters": params,
        "responses": responses,
        "x-pbxgate-role": e.role.value if e.role else None,
    }
    if e.description:
        made["description"] = e.description
    if e.role is None:
        made["security"] = []
    elif e.method != "GET":
        made["security"] = [{"session": []}]  # a token only reads
    return made


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


# -- the page ------------------------------------------------------------------------------


def inline_code(text: str) -> Markup:
    """A docstring's ``code`` and `code` as <code> (the rest escaped), for the /api page."""
    escaped = str(escape(text))
    return Markup(re.sub(r"``(.+?)``|`([^`]+)`", r"<code>\1\2</code>", escaped))  # noqa: S704


def setup(app: Starlette, settings: Settings) -> None:
    app.state.templates.filters["inline_code"] = inline_code


# -- the endpoints -------------------------------------------------------------------------


@requires(Role.VIEWER)
async def openapi_json(request: Request) -> Response:
    """This description of the console's API (OpenAPI 3.1).

    Made from the console's routes when asked, so it lists every endpoint it serves.
    """
    return JSONResponse(document(request.app.routes))


@requires(Role.VIEWER)
async def api_page(request: Request) -> Response:
    """Every API endpoint for people: method, path, parameters, role, and how a script calls
    it."""
    user = request.state.user
    shown = [
        {"endpoint": e, "id": e.operation_id.replace("_", "-"),
         "allowed": e.role is None or user.role.allows(e.role)}
        for e in endpoints(request.app.routes)
    ]  # fmt: skip
    base = str(request.base_url).rstrip("/")
    return render(request, "openapi.html", endpoints=shown, base=base)


API_PARAMETERS: dict[str, dict[str, Any]] = {}  # /api/openapi.json takes none
ROUTES: list[BaseRoute] = [
    Route("/api", api_page, methods=["GET"]),
    Route("/api/openapi.json", openapi_json, methods=["GET"]),
]
NAV: list[tuple[str, str, Role]] = [("/api", "api", Role.VIEWER)]

__all__ = [
    "API_PARAMETERS",
    "NAV",
    "ROUTES",
    "Endpoint",
    "document",
    "endpoints",
    "inline_code",
    "setup",
    "walk",
]
