"""The web console: an ASGI application (Starlette) over pbxgate's library.

Every page is a dict from ``data.py`` rendered as HTML (Jinja2, ``templates/``) and, under
``/api/``, as JSON. Nothing is served without a login except ``/health``; roles decide what a
user may see (``security.py``). Scripts, styles and fonts come from the package (``static/``),
never from a CDN: the console works on a LAN without the internet.
"""

from __future__ import annotations

import importlib
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from pbxgate.cdr.report.i18n import label
from pbxgate.cdr.report.text import kpi_change, kpi_value
from pbxgate.config import Settings
from pbxgate.web import data
from pbxgate.web.background import run_beside
from pbxgate.web.charts import stacked_bars
from pbxgate.web.render import TEXT, language, render
from pbxgate.web.security import (
    SecurityHeaders,
    client_address,
    csrf_ok,
    requires,
    safe_next,
    signing_key,
    start_session,
)
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import LoginLimiter, Role, UserStore

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
# Today's report (a second of a core over a busy PBX's tables) is kept for every viewer and
# brought up to date by a thread of its own (keep_today): checked for new calls this often,
# computed again when there are some, and at least every TODAY_MAX_AGE (the comparison with
# yesterday moves with the clock). A reader waits for a computation only for the first report
# of a language, or one past TODAY_LIMIT (the keeper stopped, the database down). The page
# refreshes itself every minute.
# A report nobody read for TODAY_IDLE is no longer kept up to date (a second of a core every
# 20 s on a busy PBX, which a console inside `pbxgate serve` shares with the calls); a wall
# screen with Today open reads it every minute.
TODAY_SECONDS = 20.0
TODAY_MAX_AGE = 300.0
TODAY_LIMIT = 120.0
TODAY_IDLE = 3600.0
# Failed logins are limited per client address ([web] login_attempts, which also stops one
# address guessing one name) and per name from all addresses together, with this many times
# the attempts: a guess spread over many addresses is slowed down, while a user is not locked
# out by anyone who merely knows the name.
NAME_CEILING = 10
# The page modules of pbxgate.web beyond Today, in menu order. Each has ROUTES; it
# may have NAV (menu entries: path, word key, the role that sees it) and setup(app, settings).
PAGES: tuple[str, ...] = (
    "calls",
    "missed",
    "recordings",
    "live",
    "notifications",
    "reports",
    "glbp",
    "openapi",
)
# Query parameters of the API endpoints here, for /api/openapi.json (see openapi.py); the
# Calls page's are in calls.py.
API_PARAMETERS: dict[str, dict[str, str]] = {}
NAV: list[tuple[str, str, Role]] = [
    ("/today", "today", Role.VIEWER),
]


# -- pages -------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """Up; ``ready`` once the start-up work is done (Today's report computed, the call index
    warmed), so that no page waits for it: for a load balancer or a benchmark."""
    warming: set[str] = request.app.state.warming
    return JSONResponse({"status": "ok", "ready": not warming})


async def login_page(request: Request) -> Response:
    return render(request, "login.html", next=safe_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """Check the form, rate-limited per address and, with a ceiling ten times higher, per name
    from anywhere; every attempt is audited."""
    state = request.app.state
    form = await request.form()
    # A name longer than any user's is cut: it goes into the audit log and the limiter's keys.
    name, password = str(form.get("user", ""))[:64], str(form.get("password", ""))
    address, now = client_address(request), state.clock()
    target = safe_next(form.get("next"))
    if not await csrf_ok(request):  # login CSRF: a page elsewhere logging you in as someone
        return render(request, "login.html", 403, error="stale", next=target)
    limiter: LoginLimiter = state.limiter
    names: LoginLimiter = state.name_limiter
    # Neither count is cleared by a success: a user of one's own would reset it between guesses.
    if limiter.blocked(f"ip:{address}", now) > 0:
        why = "address"
    elif names.blocked(f"user:{name}", now) > 0:
        why = "name, from all addresses"
    else:
        user = await run_in_threadpool(state.users.verify, name, password)
        if user is not None:
            start_session(request, user)
            state.users.audit(user.name, "login", "", address)
            return RedirectResponse(target, status_code=303)
        limiter.failed(f"ip:{address}", now)
        names.failed(f"user:{name}", now)
        state.users.audit(name, "login-failed", "", address)
        return render(request, "login.html", 401, error="bad_login", next=target)
    state.users.audit(name, "login-blocked", why, address)
    return render(request, "login.html", 429, error="blocked", next=target)


@requires(Role.VIEWER)
async def logout(request: Request) -> Response:
    """Log out everywhere: every session of the user ends, in every browser."""
    name = request.state.user.name
    users: UserStore = request.app.state.users
    if request.session.get("user") == name:  # a session, not a proxy's single sign-on
        await run_in_threadpool(users.end_sessions, name)
    users.audit(name, "logout", "", client_address(request))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@requires(Role.VIEWER)
async def home(request: Request) -> Response:
    return RedirectResponse("/today", status_code=303)


async def _today(request: Request) -> dict[str, Any]:
    """Today's report as kept for every viewer (:class:`data.Kept`)."""
    kept: data.Kept = request.app.state.today
    report: dict[str, Any] = await run_in_threadpool(kept.get, language(request))
    return report


def keep_today(app: Starlette, stop: threading.Event) -> None:
    """The keeper: every TODAY_SECONDS, bring each language's report read within TODAY_IDLE
    up to date (and the Russian one, the default, once at the start, before anyone asks),
    until ``stop``. A failure is logged once, and once more when it is over."""
    kept: data.Kept = app.state.today
    failing = False
    first = ["ru"]
    while not stop.is_set():
        for key in dict.fromkeys([*first, *kept.keys(TODAY_IDLE)]):
            try:
                kept.refresh(key)
            except Exception as exc:
                if not failing:
                    log.warning("console: Today's report is not kept up to date: %s", exc)
                failing = True
            else:
                if failing:
                    log.info("console: Today's report is kept up to date again")
                failing = False
            if stop.is_set():
                return
        app.state.warming.discard("today")  # ready, or failing: the pages say why
        first = []
        stop.wait(TODAY_SECONDS)


def _once(request: Request, report: dict[str, Any], what: str, make: Any) -> Any:
    """``make()`` once per kept report, language and ``what`` (the page's content, the JSON
    body): every viewer of one report is sent the same bytes, rendered by the first."""
    kept: dict[tuple[str, str], tuple[dict[str, Any], Any]] = request.app.state.today_rendered
    key = (what, language(request))
    found = kept.get(key)
    if found is None or found[0] is not report:
        found = kept[key] = (report, make())
    return found[1]


@requires(Role.VIEWER)
async def today_page(request: Request) -> Response:
    report = await _today(request)
    lang = language(request)

    def body() -> Markup:
        template = request.app.state.templates.get_template("today_body.html")
        html = template.render(t=TEXT[lang], lang=lang, report=report)
        return Markup(html)  # noqa: S704 (what an autoescaping template rendered)

    return render(request, "today.html", report=report, body=_once(request, report, "html", body))


@requires(Role.VIEWER)
async def today_api(request: Request) -> Response:
    """Today so far against yesterday: the report's KPIs, calls per hour by outcome, the missed
    calls with their call-back state (the Today page's data)."""
    report = await _today(request)
    body = _once(request, report, "json", lambda: JSONResponse(report).body)
    return Response(body, media_type="application/json")


# -- the application ---------------------------------------------------------------------


def create_app(
    settings: Settings,
    *,
    users: UserStore | None = None,
    now: Any = None,
    clock: Any = None,
    wall: Any = None,
    https_only: bool | None = None,
    listen: str | None = None,
) -> Starlette:
    """The console for ``settings``; ``now`` (local wall time), ``clock`` (monotonic seconds)
    and ``wall`` (seconds since the epoch: when a session was made) are seams for tests."""
    import time  # noqa: PLC0415

    web = settings.get(WebSettings)
    store = users or UserStore(web.database_path)
    key = signing_key(web.database_path.with_name("web.key"))
    secure = web.secure_cookie(listen or web.listen) if https_only is None else https_only
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(
            SessionMiddleware,
            secret_key=key,
            session_cookie="pbxgate_session",
            max_age=web.session_hours * 3600,
            same_site="strict",
            https_only=secure,
        ),
    ]
    routes: list[BaseRoute] = [
        Route("/health", health),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", home),
        Route("/today", today_page),
        Route("/api/today", today_api),
    ]
    pages = [importlib.import_module(f"pbxgate.web.{name}") for name in PAGES]
    for page in pages:
        routes.extend(page.ROUTES)
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.settings = web
    app.state.settings_all = settings
    app.state.users = store
    app.state.limiter = LoginLimiter(web.login_attempts, web.login_window_seconds)
    app.state.name_limiter = LoginLimiter(
        web.login_attempts * NAME_CEILING, web.login_window_seconds
    )
    app.state.now = now or (lambda: data.local_now(settings))
    app.state.clock = clock or time.monotonic
    app.state.warming = {"today"}  # start-up work not done yet (/health)
    app.state.today_rendered = {}
    app.state.today = data.Kept(
        lambda lang: data.today(settings, app.state.now(), str(lang)),
        lambda lang: data.today_version(settings, app.state.now()),
        fresh=TODAY_SECONDS,
        limit=TODAY_LIMIT,
        max_age=TODAY_MAX_AGE,
        clock=lambda: app.state.clock(),  # noqa: PLW0108 (a test may replace the clock)
    )
    run_beside(app, keep_today, "today")
    app.state.wall = wall or time.time
    app.state.templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    menu = [*NAV, *(item for page in pages for item in getattr(page, "NAV", ()))]
    app.state.templates.globals.update(
        pager=pager,
        kpi_value=kpi_value,
        kpi_change=kpi_change,
        label=label,
        menu=menu,
        stacked_bars=stacked_bars,
        hour_label=lambda row: f"{row['hour']:02d}:00",
    )
    for page in pages:
        if hasattr(page, "setup"):
            page.setup(app, settings)
    return app


def pager(query: dict[str, str], page: int) -> str:
    """The query string of another page of the same filter."""
    return urlencode({**query, "page": str(page)})


__all__ = ["create_app", "language"]
