"""What every page of the console shares: its language, its words, rendering a template,
answering an error (HTML or, under ``/api/``, JSON).

Each page is a module of ``pbxgate.web`` with ``ROUTES`` (Starlette routes) and, where it has
words of its own, ``TEXT`` (``{"ru": {...}, "en": {...}}``, merged into the shared words at
import); ``app.py`` lists the modules. A page's data is a plain dict made by a function that
knows nothing of HTTP, rendered as HTML by its template and as JSON by its ``/api/`` twin.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from pbxgate.errors import PbxgateError
from pbxgate.web.security import csrf_token, current_user

TEXT = {
    "ru": {
        "today": "Сегодня", "calls": "Звонки", "logout": "Выйти", "login": "Вход",
        "user": "Пользователь", "password": "Пароль", "enter": "Войти",
        "bad_login": "Неверное имя или пароль", "blocked": "Слишком много попыток; подождите",
        "stale": "Форма устарела; обновите страницу",
        "filter": "Показать", "page": "Страница", "of": "из", "total": "всего",
        "missed": "Пропущенные", "hourly": "Звонки по часам", "no_calls": "Звонков нет",
        "as_table": "Таблицей", "hour": "Час",
        "compared": "Изменения — к вчерашнему дню до {time}",
    },
    "en": {
        "today": "Today", "calls": "Calls", "logout": "Log out", "login": "Log in",
        "user": "User", "password": "Password", "enter": "Log in",
        "bad_login": "Wrong name or password", "blocked": "Too many attempts; wait a while",
        "stale": "The form is stale; reload the page",
        "filter": "Show", "page": "Page", "of": "of", "total": "in all",
        "missed": "Missed calls", "hourly": "Calls per hour", "no_calls": "No calls",
        "as_table": "As a table", "hour": "Hour",
        "compared": "Changes against yesterday by {time}",
    },
}  # fmt: skip


def language(request: Request) -> str:
    """Russian or English, as the browser asks (Accept-Language), Russian by default."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("en"):
            return "en"
        if tag.startswith("ru"):
            return "ru"
    return "ru"


def render(request: Request, template: str, status: int = 200, **values: Any) -> Response:
    env: Environment = request.app.state.templates
    lang = language(request)
    page = env.get_template(template).render(
        t=TEXT[lang],
        lang=lang,
        user=current_user(request),
        csrf=csrf_token(request),
        path=request.url.path,
        **values,
    )
    return HTMLResponse(page, status_code=status)


def problem(request: Request, exc: PbxgateError) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": str(exc)}, status_code=400)
    return Response(str(exc), status_code=400, media_type="text/plain; charset=utf-8")


def add_text(words: dict[str, dict[str, str]]) -> None:
    """Add a page's words to the shared ones (each page module calls this at import)."""
    for lang, more in words.items():
        TEXT[lang].update(more)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


__all__ = ["TEXT", "add_text", "is_api", "language", "problem", "render"]
