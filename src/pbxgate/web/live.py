"""The Live page: the calls in progress and the notifications just queued, as they happen.

    /live              the page (viewer and up): the snapshot, kept current by static/live.js;
                       without JavaScript it reloads itself every 10 seconds
    /api/live          the snapshot as JSON: calls, notifications, sources
    /api/live/events   server-sent events: ``snapshot`` first, then ``call`` (a call appeared
                       or changed), ``gone`` (it ended: its key), ``notification`` (a delivery
                       just planned), ``sources`` (how the outbox and the managers are
                       followed); a comment line every ``HEARTBEAT`` seconds

The data comes from the hub in ``app.state.live`` (``livehub.py``), fed by ``livefeed.py``:
under ``pbxgate web`` the application's lifespan runs :func:`livefeed.standalone`; inside
``pbxgate serve`` (``embedded.py``) the feed is the in-process one. A stream ends when its
reader falls behind (EventSource then connects again and gets a fresh snapshot), when the
console stops, or once its user may no longer see the page: the user is looked up again (the
session, the user, the role, as every request is) every ``HEARTBEAT`` seconds by the clock,
whether the PBX is busy or quiet. One user may hold ``MAX_PER_USER`` streams, everyone
together ``MAX_READERS``. Callers' numbers are personal data: nothing here may be cached
(``Cache-Control: no-store``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pbxgate.ami.settings import AmiSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.notify.timezone import load_zone
from pbxgate.web import livefeed, livehub
from pbxgate.web.livehub import Busy, LiveHub, Reader
from pbxgate.web.render import TEXT, add_text, language, render
from pbxgate.web.security import current_user, requires
from pbxgate.web.users import Role

log = logging.getLogger(__name__)

ROLE = Role.VIEWER  # who may see the page, checked again on every heartbeat of a stream
HEARTBEAT = 15.0  # seconds between keep-alive comments (proxies close idle connections)
RETRY_MS = 2000  # EventSource waits this long before connecting again
NO_STORE = {"Cache-Control": "no-store"}
STREAM_HEADERS = {**NO_STORE, "X-Accel-Buffering": "no"}  # nginx: pass each event on at once

add_text(
    {
        "ru": {
            "live": "Сейчас", "live_calls": "Звонки сейчас", "live_notes": "Уведомления в очереди",
            "live_no_calls": "Сейчас звонков нет", "live_no_notes": "Уведомлений пока нет",
            "live_caller": "Кто звонит", "live_called": "Куда", "live_state": "Состояние",
            "live_since": "С", "live_ringing": "звонит", "live_talking": "разговор",
            "live_incoming": "поступил",
            "live_kind_incoming": "входящий", "live_kind_answered": "ответили",
            "live_kind_ended": "завершён", "live_kind_missed": "пропущен",
            "live_kind_called_back": "перезвонили",
            "live_on": "Обновляется сразу", "live_reconnecting": "Связь прервалась, подключаюсь",
            "live_offline": "Нет связи с сервером; повторю через 5 секунд",
            "live_static": "Страница обновляется каждые 10 секунд",
            "live_new_call": "Новый звонок: {caller} на {called}",
            "live_outbox_following": "Очередь уведомлений читается",
            "live_outbox_absent": "Очереди уведомлений ещё нет: её создаст pbxgate serve",
            "live_outbox_error": "Очередь уведомлений не читается (см. журнал)",
            "live_ami_connected": "AMI {pbx}: подключено",
            "live_ami_waiting": "AMI {pbx}: нет связи с pbxgate serve",
            "live_no_ami": "AMI выключен: звонок виден по событию FastAGI и остаётся в списке "
                           "10 минут, если не пришло событие о пропущенном",
        },
        "en": {
            "live": "Live", "live_calls": "Calls in progress", "live_notes": "Notifications queued",
            "live_no_calls": "No calls in progress", "live_no_notes": "No notifications yet",
            "live_caller": "Caller", "live_called": "Called", "live_state": "State",
            "live_since": "Since", "live_ringing": "ringing", "live_talking": "talking",
            "live_incoming": "came in",
            "live_kind_incoming": "incoming", "live_kind_answered": "answered",
            "live_kind_ended": "ended", "live_kind_missed": "missed",
            "live_kind_called_back": "called back",
            "live_on": "Updated as it happens",
            "live_reconnecting": "Connection lost, reconnecting",
            "live_offline": "No connection to the server; trying again in 5 seconds",
            "live_static": "This page reloads every 10 seconds",
            "live_new_call": "New call: {caller} to {called}",
            "live_outbox_following": "The notification outbox is followed",
            "live_outbox_absent": "No notification outbox yet: pbxgate serve makes it",
            "live_outbox_error": "The notification outbox cannot be read (see the log)",
            "live_ami_connected": "AMI {pbx}: connected",
            "live_ami_waiting": "AMI {pbx}: no connection to pbxgate serve",
            "live_no_ami": "AMI is off: a call shows from its FastAGI event and stays listed for "
                           "10 minutes unless a missed event ends it",
        },
    }
)  # fmt: skip

NAV = [("/live", "live", ROLE)]
API_PARAMETERS: dict[str, dict[str, Any]] = {"/api/live": {}, "/api/live/events": {}}


def words(lang: str) -> dict[str, str]:
    """The page's words for static/live.js (its ``live_`` words, without the prefix)."""
    return {k[5:]: v for k, v in TEXT[lang].items() if k.startswith("live_")}


def source_lines(sources: Mapping[str, str], lang: str, ami: bool) -> list[tuple[str, str, str]]:
    """(source, state, sentence) for each source the hub follows, as the page shows them."""
    text = TEXT[lang]
    lines = []
    for name, state in sorted(sources.items()):
        kind, _, pbx = name.partition(":")
        key = f"live_{kind}_{state}"
        if key in text:
            lines.append((name, state, text[key].replace("{pbx}", pbx or "")))
    if not ami:
        lines.append(("ami", "off", text["live_no_ami"]))
    return lines


def _hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.live
    return hub


@requires(ROLE)
async def live_page(request: Request) -> Response:
    """The calls in progress and the notifications just queued (HTML)."""
    lang = language(request)
    snapshot = _hub(request).snapshot()
    ami = request.app.state.live_ami
    response = render(
        request,
        "live.html",
        live=snapshot,
        words=words(lang),
        sources=source_lines(snapshot["sources"], lang, ami),
        ami=ami,
    )
    response.headers.update(NO_STORE)
    return response


@requires(ROLE)
async def live_api(request: Request) -> Response:
    """The calls in progress and the notifications just queued, now.

    ``calls``: key, pbx, caller, caller_name, called, state (ringing, talking, or incoming when
    only the queued event is known), since (Unix time) and since_text, answered_by, source (ami
    or outbox); ``notifications``: the latest deliveries, newest first; ``sources``."""
    return JSONResponse(_hub(request).snapshot(), headers=NO_STORE)


@requires(ROLE)
async def live_events(request: Request) -> Response:
    """The same as server-sent events: ``snapshot``, then each change as it happens.

    Events: ``snapshot`` (as /api/live), ``call`` (one call, as in ``calls``), ``gone``
    (``{"key": ...}``: it ended), ``notification`` (one delivery), ``sources``. Connect again
    after the stream ends (EventSource does): a reader that falls behind is cut off."""
    hub = _hub(request)
    try:
        snapshot, reader = hub.subscribe(request.state.user.name)
    except Busy as exc:
        if exc.mine:
            many = f"you have {livehub.MAX_PER_USER} live pages open"
        else:
            many = "too many live pages are open"
        return JSONResponse(
            {"error": f"{many}; close one and reload"},
            status_code=503,
            headers=NO_STORE,
        )
    stream = _stream(request, hub, snapshot, reader)
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


def frame(event: str, data: Any) -> str:
    """One server-sent event (the JSON has no line breaks: one data line)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n"


def still_allowed(request: Request, name: str) -> bool:
    """Whether the stream's user may still see the page: the same look-up as every request
    (the session, the user in the store, their role), and still the same user."""
    user = current_user(request)
    return user is not None and user.name == name and user.role.allows(ROLE)


async def _stream(
    request: Request, hub: LiveHub, snapshot: dict[str, Any], reader: Reader
) -> AsyncIterator[str]:
    """The events, and every ``heartbeat`` seconds by the loop's clock (events or not: on a
    busy PBX no wait ever times out) the user checked again and a keep-alive comment."""
    heartbeat: float = request.app.state.live_heartbeat
    loop = asyncio.get_running_loop()
    name = request.state.user.name
    try:
        yield f"retry: {RETRY_MS}\n\n" + frame("snapshot", snapshot)
        due = loop.time() + heartbeat
        while True:
            item = await reader.next(max(0.0, due - loop.time()))
            if item is None:
                return  # dropped or stopping: EventSource connects again
            if item is False or loop.time() >= due:  # a timer may fire a hair early
                if not still_allowed(request, name):  # removed, role lowered, logged out
                    return
                due = loop.time() + heartbeat
                if item is False:
                    yield ": keep-alive\n\n"
            if isinstance(item, tuple):
                yield frame(*item)
    finally:
        hub.unsubscribe(reader)


def setup(app: Starlette, settings: Settings) -> None:
    """The hub in ``app.state.live`` and, when the application starts (its lifespan), the feed
    in ``app.state.live_feed`` (``pbxgate serve`` puts its in-process one there)."""
    hub = LiveHub(load_zone(settings.get(CdrSettings).timezone))
    app.state.live = hub
    app.state.live_ami = settings.get(AmiSettings).enabled
    app.state.live_heartbeat = HEARTBEAT
    app.state.live_feed = functools.partial(livefeed.standalone, hub, settings)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(started: Starlette) -> AsyncIterator[Any]:
        async with inner(started) as state:
            stop = asyncio.Event()
            feed = asyncio.ensure_future(started.state.live_feed(stop))
            try:
                yield state
            finally:
                stop.set()
                hub.close()
                try:
                    await feed
                except Exception as exc:  # logged, never in the way of stopping
                    log.error("the live page's feed failed: %s", exc)

    app.router.lifespan_context = lifespan


ROUTES: list[BaseRoute] = [
    Route("/live", live_page, methods=["GET"]),
    Route("/api/live", live_api, methods=["GET"]),
    Route("/api/live/events", live_events, methods=["GET"]),
]

__all__ = ["API_PARAMETERS", "NAV", "ROUTES", "frame", "setup", "source_lines", "words"]
