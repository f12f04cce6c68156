"""Sessions, CSRF tokens and role checks of the web console.

A session is Starlette's signed cookie (itsdangerous): ``HttpOnly``, ``SameSite=Strict``,
``Secure`` as ``[web] secure_cookies`` says (see ``settings.py``). It holds the user's name, a
random CSRF token, when the user logged in (wall-clock seconds) and the user's session
generation at that moment (see ``users.py``). The cookie is signed again with every response,
so its own age says nothing: a session is refused once ``[web] session_hours`` have passed
since the login, however busy the user was, and as soon as the user's generation has changed
(a logout, a new password or role: every session of that user ends). The user and their role
are read from the database on every request, so a removed user is out at once. Every POST must
carry the session's CSRF token (a form field or the ``X-CSRF-Token`` header), compared in
constant time. The signing key is a random file beside the web database (0600), made at first
start.

Every response carries :data:`SECURITY_HEADERS` (:class:`SecurityHeaders`): a Content Security
Policy allowing scripts only from the console's own files (no inline script anywhere), images
from itself and ``data:`` URIs (the Reports page's charts), styles from itself and inline (the
report's own ``<style>`` inside the Reports page's ``srcdoc`` frame falls under this page's
policy, and the call timeline and GLBP picture place and colour their parts with ``style``
attributes); no framing by another page, no plugins, forms posting only to the console.

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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbxgate.private import private_file
from pbxgate.web.users import Role, User, UserStore

Endpoint = Callable[[Request], Awaitable[Response]]
KEY_BYTES = 32
# A session made this many seconds "in the future" still counts (the wall clock stepped back).
CLOCK_SKEW = 60
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data:",
        "style-src 'self' 'unsafe-inline'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """ASGI middleware: :data:`SECURITY_HEADERS` on every HTTP response (a header the response
    sets itself is left as it is)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                have = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in have)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


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


def start_session(request: Request, user: User) -> None:
    """A new session for ``user``, who has just logged in: nothing from before it carries over."""
    request.session.clear()
    request.session["user"] = user.name
    request.session["at"] = int(request.app.state.wall())
    request.session["gen"] = user.generation


def current_user(request: Request) -> User | None:
    users: UserStore = request.app.state.users
    secret = bearer_token(request)
    if secret is not None:
        return users.token_user(secret) if token_may(request) else None
    name = request.session.get("user")
    if not isinstance(name, str):
        return proxy_user(request)
    user = users.get(name)
    if user is None or not session_valid(request, user):
        request.session.clear()  # the browser is told to forget the cookie
        return proxy_user(request)
    return user


def session_valid(request: Request, user: User) -> bool:
    """Whether the session is ``user``'s current one: made at most ``[web] session_hours``
    ago by the wall clock, at the user's present generation."""
    at, generation = request.session.get("at"), request.session.get("gen")
    if not isinstance(at, int) or not isinstance(generation, int):
        return False  # a session from before these were kept, or not one of ours
    age = request.app.state.wall() - at
    lifetime = request.app.state.settings.session_hours * 3600
    return -CLOCK_SKEW <= age < lifetime and generation == user.generation


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
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "SecurityHeaders",
    "bearer_token",
    "client_address",
    "csrf_ok",
    "csrf_token",
    "current_user",
    "requires",
    "safe_next",
    "session_valid",
    "signing_key",
    "start_session",
    "token_may",
]
