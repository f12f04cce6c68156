"""Sessions, CSRF tokens and role checks of the web console.

A session is Starlette's signed cookie (itsdangerous): ``HttpOnly``, ``SameSite=Strict``,
``Secure`` unless the console is served on plain HTTP to localhost, valid for
``[web] session_hours``. It holds the user's name, a random CSRF token and when it was made;
the user's role is read from the database on every request, so a role change or a removed user
takes effect at once. Every POST must carry the session's CSRF token (a form field or the
``X-CSRF-Token`` header), compared in constant time. The signing key is a random file beside
the web database (0600), made at first start.

A script (a CRM, Grafana) sends ``Authorization: Bearer <token>`` instead
(``pbxgate web token add USER``, see ``users.py``). A token only reads: it is accepted on GET
(and HEAD) under ``/api/`` and refused with 401 everywhere else, so it never meets a form and
needs no CSRF token; a request that carries one is judged by it alone, never by a cookie beside
it. Other schemes (a proxy's ``Basic`` login) are left alone and the session decides.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from pbxgate.private import private_file
from pbxgate.web.users import Role, User, UserStore

Endpoint = Callable[[Request], Awaitable[Response]]
KEY_BYTES = 32


def signing_key(path: Path) -> str:
    """The session signing key kept at ``path``, made on first use (owner-only)."""
    if path.exists() and path.stat().st_size:
        return path.read_text(encoding="ascii").strip()
    private_file(path)  # made empty, owner-only, before the key goes in
    key = secrets.token_urlsafe(KEY_BYTES)
    path.write_text(key + "\n", encoding="ascii")
    return key


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made when the session has none yet)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        request.session["csrf"] = token
    return token


async def csrf_ok(request: Request) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(expected, str):
        return False
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        given = str(form.get("csrf", ""))
    return hmac.compare_digest(given.encode(), expected.encode())


def current_user(request: Request) -> User | None:
    users: UserStore = request.app.state.users
    secret = bearer_token(request)
    if secret is not None:
        return users.token_user(secret) if token_may(request) else None
    name = request.session.get("user")
    if not isinstance(name, str):
        return proxy_user(request)
    return users.get(name)


def bearer_token(request: Request) -> str | None:
    """The secret of an ``Authorization: Bearer`` header; None for none or another scheme."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def token_may(request: Request) -> bool:
    """Whether an API token may be used for ``request``: it only reads the JSON API."""
    return request.method in ("GET", "HEAD") and request.url.path.startswith("/api/")


def proxy_user(request: Request) -> User | None:
    """The user a trusted reverse proxy names in ``[web] proxy_user_header`` (SSO)."""
    header = request.app.state.settings.proxy_user_header
    peer = request.client.host if request.client else ""  # the proxy itself, never forwarded
    if not header or peer not in request.app.state.settings.trusted_proxies:
        return None
    name = request.headers.get(header)
    return request.app.state.users.get(name) if name else None


def requires(role: Role) -> Callable[[Endpoint], Endpoint]:
    """An endpoint for users of ``role`` or above: others get 403, anonymous users the login
    page (HTML) or 401 (``/api/``). POSTs also need the CSRF token (403 without it)."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            user = current_user(request)
            api = request.url.path.startswith("/api/")
            if user is None and bearer_token(request) is not None:
                return _token_refused(request)
            if user is None:
                if api:
                    return JSONResponse({"error": "log in first"}, status_code=401)
                return RedirectResponse(f"/login?{login_next(request)}", status_code=303)
            if not user.role.allows(role):
                return _refuse(api, f"this needs the {role.name.lower()} role")
            if request.method == "POST" and not await csrf_ok(request):
                return _refuse(api, "the form is stale (CSRF token missing or wrong): reload")
            request.state.user = user
            return await endpoint(request)

        guarded.__name__ = endpoint.__name__
        guarded.__module__ = endpoint.__module__  # where openapi.py finds API_PARAMETERS
        guarded.__doc__ = endpoint.__doc__
        guarded.role = role  # type: ignore[attr-defined]  # read by the authorisation tests
        return guarded

    return wrap


def login_next(request: Request) -> str:
    """``next=`` for the login page: this page with its query string (a shared link to a
    filtered page survives the login)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return urlencode({"next": target}, safe="/")


def _refuse(api: bool, message: str) -> Response:
    if api:
        return JSONResponse({"error": message}, status_code=403)
    return Response(message, status_code=403, media_type="text/plain; charset=utf-8")


def _token_refused(request: Request) -> Response:
    if token_may(request):
        message = "the API token is unknown or revoked"
    else:
        message = "an API token only reads: use it for GET requests under /api/"
    return JSONResponse(
        {"error": message}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="pbxgate"'}
    )


def client_address(request: Request) -> str:
    """The user's address: the peer's, or, when the peer is a trusted reverse proxy, the last
    address its X-Forwarded-For names (the one it saw)."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    if forwarded and peer in request.app.state.settings.trusted_proxies:
        return forwarded.split(",")[-1].strip()
    return peer


def safe_next(target: Any) -> str:
    """A local path to go to after login (never another site)."""
    text = str(target or "/")
    if not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


__all__ = [
    "bearer_token",
    "client_address",
    "csrf_ok",
    "csrf_token",
    "current_user",
    "requires",
    "safe_next",
    "signing_key",
    "token_may",
]
