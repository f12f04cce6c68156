"""The Notifications page (admins): the outbox as ``pbxgate notify status`` shows it, and what
``pbxgate notify retry|purge|test`` do, as buttons.

    GET  /notifications          the page; /api/notifications: the same as JSON
    POST /notifications/retry    dead letters back to pending and waiting retries due now
                                 (``channel``: only that one's); /api/notifications/retry
    POST /notifications/purge    delete sent deliveries older than ``days`` days and, with
                                 ``dead``, dead letters (``channel``); /api/notifications/purge
    POST /notifications/test     send a test message through ``channel`` to one of its
                                 configured recipients (``to``: its ``ref`` as the page lists
                                 it) or to all of them; /api/notifications/test

The outbox is the one ``pbxgate notify status`` opens (``[notify.database] url`` or ``[notify]
outbox``); a file that does not exist yet is not made here: the page says so. Every action is
audited. Recipients are masked as everywhere (a webhook URL's query string and userinfo), and
error texts pass the log masker, which knows every configured token: no secret reaches the
page, the JSON or the log. A form's answer is one short flash after the redirect back.

A test message goes only to a recipient configured for its channel, never to an address typed
in: the webhook sends its ``token`` as ``Authorization: Bearer`` to whatever URL it is given,
and a typed URL would also let the console fetch any address from the server's network.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.errors import InputError, PbxgateError
from pbxgate.notify.build import CHANNEL_NAMES, enabled_recipients
from pbxgate.notify.logmask import guarded, mask
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.recipients import RecipientBook, redact, ref
from pbxgate.notify.report import status_data
from pbxgate.notify.service import open_outbox
from pbxgate.notify.settings import NotifySettings
from pbxgate.notify.timezone import load_zone, local_time
from pbxgate.web.render import TEXT, add_text, is_api, language, render
from pbxgate.web.security import client_address, requires
from pbxgate.web.users import Role

RECENT = 50  # deliveries listed
DEAD = 20  # dead letters listed
FLASH = "notify_flash"  # the session key of a form's answer
FLASH_LINES, FLASH_LINE = 5, 240  # at most this many lines of at most this many characters
NO_STORE = {"Cache-Control": "no-store"}
MAX_DAYS = 36500.0

add_text(
    {
        "ru": {
            "notifications": "Уведомления", "ntf_outbox": "Очередь",
            "ntf_no_outbox": "Очереди уведомлений ещё нет: её создаст pbxgate serve (или pbxgate "
                             "notify) при первом событии. Показывать пока нечего.",
            "ntf_backlog": "Событий ждут разбора", "ntf_channels": "Каналы",
            "ntf_channel": "Канал", "ntf_pending": "в очереди", "ntf_retrying": "повтор",
            "ntf_in_flight": "отправляется", "ntf_sent": "отправлено", "ntf_dead": "не доставлено",
            "ntf_last_error": "Последняя ошибка", "ntf_no_deliveries": "Доставок ещё не было",
            "ntf_recent": "Последние доставки", "ntf_event": "Событие", "ntf_recipient": "Кому",
            "ntf_state": "Состояние", "ntf_attempts": "Попыток", "ntf_when": "Когда",
            "ntf_dead_letters": "Недоставленные", "ntf_reason": "Причина",
            "ntf_no_dead": "Недоставленных нет",
            "ntf_retry": "Отправить снова", "ntf_retry_help": "Недоставленные вернутся в очередь, "
                         "ждущие повтора будут отправлены сейчас.",
            "ntf_purge": "Удалить", "ntf_purge_days": "Отправленные старше, дней",
            "ntf_purge_dead": "и недоставленные", "ntf_all_channels": "все каналы",
            "ntf_test": "Проверочное сообщение", "ntf_test_to": "Кому",
            "ntf_test_all": "всем из настроек",
            "ntf_test_send": "Отправить проверку", "ntf_no_channels": "Ни один канал не включён",
            "ntf_retried": "{revived} недоставленных снова в очереди, {hurried} повторов сейчас",
            "ntf_purged": "Удалено доставок: {deleted}",
        },
        "en": {
            "notifications": "Notifications", "ntf_outbox": "Outbox",
            "ntf_no_outbox": "There is no notification outbox yet: pbxgate serve (or pbxgate "
                             "notify) makes it with the first event. Nothing to show yet.",
            "ntf_backlog": "Events waiting to be planned", "ntf_channels": "Channels",
            "ntf_channel": "Channel", "ntf_pending": "pending", "ntf_retrying": "retrying",
            "ntf_in_flight": "in flight", "ntf_sent": "sent", "ntf_dead": "dead",
            "ntf_last_error": "Last error", "ntf_no_deliveries": "No deliveries yet",
            "ntf_recent": "Recent deliveries", "ntf_event": "Event", "ntf_recipient": "To",
            "ntf_state": "State", "ntf_attempts": "Attempts", "ntf_when": "When",
            "ntf_dead_letters": "Dead letters", "ntf_reason": "Reason",
            "ntf_no_dead": "No dead letters",
            "ntf_retry": "Retry", "ntf_retry_help": "Dead letters go back to the queue, waiting "
                         "retries are sent now.",
            "ntf_purge": "Purge", "ntf_purge_days": "Sent ones older than, days",
            "ntf_purge_dead": "and dead letters", "ntf_all_channels": "all channels",
            "ntf_test": "Test message", "ntf_test_to": "To",
            "ntf_test_all": "every configured recipient",
            "ntf_test_send": "Send a test", "ntf_no_channels": "No channel is enabled",
            "ntf_retried": "{revived} dead letters queued again, {hurried} waiting retries due now",
            "ntf_purged": "{deleted} deliveries deleted",
        },
    }
)  # fmt: skip

NAV = [("/notifications", "notifications", Role.ADMIN)]
API_PARAMETERS: dict[str, dict[str, Any]] = {
    "/api/notifications": {},
    "/api/notifications/retry": {"channel": "only this channel's (form field; empty: all)"},
    "/api/notifications/purge": {
        "days": "delete sent deliveries older than this many days (form field; default 30)",
        "dead": "also delete dead letters (form field: on)",
        "channel": "only this channel (form field; empty: all)",
    },
    "/api/notifications/test": {
        "channel": "an enabled channel: vk, telegram, email or webhook (form field)",
        "to": "one of the channel's configured recipients, as the value /api/notifications "
        "lists in test_channels[].choices (form field; empty: all of them)",
    },
}


# -- data ---------------------------------------------------------------------------------


def _text(when: float | None, settings: Settings) -> str:
    if when is None:
        return ""
    zone = load_zone(settings.get(CdrSettings).timezone)
    return f"{local_time(when, zone):%Y-%m-%d %H:%M:%S}"


def _outbox(ns: NotifySettings) -> Outbox | None:
    """The outbox ``pbxgate notify status`` opens; None when its file does not exist yet."""
    if not ns.database.url and not ns.outbox_path().exists():
        return None
    return open_outbox(ns, synchronous="NORMAL")


def outbox_report(settings: Settings) -> dict[str, Any]:
    """The page's data: the outbox's channels, recent deliveries, dead letters, and the
    channels a test message can go through (blocking: run it in a thread)."""
    ns = settings.get(NotifySettings)
    tests = [
        {
            "channel": name,
            "recipients": [mask(redact(r)) for r in recipients],
            # the label with the reference's digest: two URLs of one host differ by their
            # hidden path alone
            "choices": [{"value": mask(ref(r)), "label": mask(ref(r))} for r in recipients],
        }
        for name, recipients in enabled_recipients(ns).items()
    ]
    report: dict[str, Any] = {
        "outbox": str(ns.outbox_path()) if not ns.database.url else "",
        "exists": False,
        "backlog": 0,
        "channels": [],
        "recent": [],
        "dead_letters": [],
        "test_channels": tests,
    }
    box = _outbox(ns)
    if box is None:
        return report
    try:
        data = status_data(box.backlog(), box.status(), box.dead_letters(limit=DEAD))
        recent = box.recent(RECENT)
        report["outbox"] = box.display
    finally:
        box.close()
    for channel in data["channels"]:
        channel["last_error"] = mask(channel["last_error"])
        channel["last_error_text"] = _text(channel["last_error_at"], settings)
    for dead in data["dead_letters"]:
        dead["reason"] = mask(dead["reason"])
        dead["updated_text"] = _text(dead["updated_at"], settings)
    rows = []
    for row in recent:
        item = asdict(row)
        item.update(recipient=mask(redact(row.recipient)), last_error=mask(row.last_error))
        item["updated_text"] = _text(row.updated_at, settings)
        rows.append(item)
    report.update(exists=True, backlog=data["backlog"], channels=data["channels"],
                  recent=rows, dead_letters=data["dead_letters"])  # fmt: skip
    return report


def chosen_recipients(settings: Settings, channel: str, chosen: str) -> list[str]:
    """Whom a test message through ``channel`` goes to: the configured recipient whose
    reference is ``chosen`` (the value the page's select sends), or all of them for ``""``.
    Anything else is refused: never a URL or a chat typed in (see the module docstring)."""
    configured = enabled_recipients(settings.get(NotifySettings)).get(channel, [])
    if not chosen:
        return []  # send_test's default: every configured recipient
    by_ref = {mask(ref(r)): r for r in configured}
    if chosen not in by_ref:
        raise InputError(
            f"a test message goes only to a configured recipient of {channel}",
            hint=f"choose one, or set [notify.{channel}] recipients",
        )
    return [by_ref[chosen]]


def _channel(value: Any, allowed: tuple[str, ...] = CHANNEL_NAMES) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    if text not in allowed:
        raise InputError(f"unknown channel {text!r}", hint=", ".join(allowed) or "none enabled")
    return text


def _open_existing(settings: Settings) -> Outbox:
    box = _outbox(settings.get(NotifySettings))
    if box is None:
        raise InputError("there is no notification outbox yet", hint="pbxgate serve makes it")
    return box


def retry(settings: Settings, channel: str | None, now: float) -> dict[str, int]:
    """``pbxgate notify retry``: waiting retries due now, dead letters back to pending."""
    box = _open_existing(settings)
    try:
        hurried = box.hurry(now, channel)
        revived = box.revive(now, channel)
    finally:
        box.close()
    return {"revived": revived, "hurried": hurried}


def purge(settings: Settings, days: float, dead: bool, channel: str | None, now: float) -> int:
    """``pbxgate notify purge``: sent deliveries older than ``days`` days (and dead letters)."""
    box = _open_existing(settings)
    try:
        return box.purge(sent_before=now - days * 86400, dead=dead, channel=channel)
    finally:
        box.close()


def _days(value: Any) -> float:
    text = str(value if value not in (None, "") else "30").strip().replace(",", ".")
    try:
        days = float(text)
    except ValueError:
        raise InputError(f"days {text!r} is not a number", hint="e.g. 30") from None
    if not 0 <= days <= MAX_DAYS:
        raise InputError("days must be between 0 and 36500")
    return days


def protect(settings: Settings) -> None:
    """Teach the log masker every notify secret, so that no error text shown or logged here
    carries one (the channels do the same when they are built)."""
    ns = settings.get(NotifySettings)
    for secret in (ns.vk.token, ns.telegram.token, ns.webhook.token, ns.email.password):
        guarded(secret)
    RecipientBook(ns.webhook.recipients)  # a webhook URL's query string and userinfo


# -- endpoints ----------------------------------------------------------------------------


def _answer(request: Request, data: dict[str, Any], lines: list[str], ok: bool) -> Response:
    """JSON under /api/, else the flash and a redirect back to the page."""
    if is_api(request):
        return JSONResponse(data, status_code=200 if ok else 400, headers=NO_STORE)
    # the flash rides in the session cookie: kept short (a browser drops a cookie over 4 KB)
    shown = [line if len(line) <= FLASH_LINE else line[: FLASH_LINE - 1] + "…" for line in lines]
    if len(shown) > FLASH_LINES:
        shown = [*shown[: FLASH_LINES - 1], f"… (+{len(shown) - FLASH_LINES + 1})"]
    request.session[FLASH] = {"ok": ok, "lines": shown}
    return RedirectResponse("/notifications", status_code=303)


def _failed(request: Request, exc: Exception) -> Response:
    line = mask(str(exc))
    return _answer(request, {"error": line}, [line], ok=False)


def _audit(request: Request, action: str, detail: str) -> None:
    request.app.state.users.audit(request.state.user.name, action, detail, client_address(request))


@requires(Role.ADMIN)
async def page(request: Request) -> Response:
    """The outbox: channels, recent deliveries, dead letters; Retry, Purge, test forms."""
    try:
        report = await run_in_threadpool(outbox_report, request.app.state.settings_all)
    except PbxgateError as exc:
        report, error = None, mask(str(exc))
    else:
        error = ""
    if is_api(request):
        if report is None:
            return JSONResponse({"error": error}, status_code=400, headers=NO_STORE)
        return JSONResponse(report, headers=NO_STORE)
    flash = request.session.pop(FLASH, None)
    response = render(request, "notifications.html", report=report, error=error, flash=flash,
                      channels=CHANNEL_NAMES)  # fmt: skip
    response.headers.update(NO_STORE)
    return response


@requires(Role.ADMIN)
async def retry_endpoint(request: Request) -> Response:
    """Send dead letters again and make waiting retries due now (after fixing the cause)."""
    form = await request.form()
    settings = request.app.state.settings_all
    try:
        channel = _channel(form.get("channel"))
        done = await run_in_threadpool(retry, settings, channel, time.time())
    except PbxgateError as exc:
        return _failed(request, exc)
    scope = channel or "all channels"
    _audit(request, "notify-retry",
           f"{scope}: {done['revived']} revived, {done['hurried']} due now")  # fmt: skip
    line = _word(request, "ntf_retried").format(**done)
    return _answer(request, done, [line], ok=True)


@requires(Role.ADMIN)
async def purge_endpoint(request: Request) -> Response:
    """Delete sent deliveries older than ``days`` days and, with ``dead``, dead letters."""
    form = await request.form()
    settings = request.app.state.settings_all
    dead = str(form.get("dead", "")).lower() in ("on", "1", "true", "yes")
    try:
        days, channel = _days(form.get("days")), _channel(form.get("channel"))
        deleted = await run_in_threadpool(purge, settings, days, dead, channel, time.time())
    except PbxgateError as exc:
        return _failed(request, exc)
    what = f"sent older than {days:g} days" + (" and dead letters" if dead else "")
    _audit(request, "notify-purge", f"{channel or 'all channels'}: {what}: {deleted} deleted")
    line = _word(request, "ntf_purged").format(deleted=deleted)
    return _answer(request, {"deleted": deleted}, [line], ok=True)


@requires(Role.ADMIN)
async def test_endpoint(request: Request) -> Response:
    """Send a test message through one enabled channel now (``pbxgate notify test``)."""
    from pbxgate.notify.testsend import send_test  # noqa: PLC0415

    form = await request.form()
    settings: Settings = request.app.state.settings_all
    enabled = tuple(enabled_recipients(settings.get(NotifySettings)))
    try:
        channel = _channel(form.get("channel"), enabled)
        if channel is None:
            raise InputError("choose a channel", hint=", ".join(enabled) or "none enabled")
        to = chosen_recipients(settings, channel, str(form.get("to", "")).strip())
        transport = request.app.state.notify_transport
        found = await send_test(settings, channel, to, transport=transport)
    except PbxgateError as exc:
        return _failed(request, exc)
    results = [
        {"recipient": mask(redact(r)), "verdict": verdict, "detail": mask(detail)}
        for r, verdict, detail in found
    ]
    sent = sum(r["verdict"] == "sent" for r in results)
    _audit(request, "notify-test", f"{channel}: {sent} of {len(results)} sent")
    lines = [f"{channel} → {r['recipient']}: {r['verdict']}: {r['detail']}" for r in results]
    data = {"channel": channel, "results": results}
    return _answer(request, data, lines, ok=sent == len(results))


def _word(request: Request, key: str) -> str:
    return TEXT[language(request)][key]


def setup(app: Any, settings: Settings) -> None:
    protect(settings)
    app.state.notify_transport = None  # httpx transport of test messages (tests: a mock)


ROUTES: list[BaseRoute] = [
    Route("/notifications", page, methods=["GET"]),
    Route("/api/notifications", page, methods=["GET"]),
    Route("/notifications/retry", retry_endpoint, methods=["POST"]),
    Route("/api/notifications/retry", retry_endpoint, methods=["POST"]),
    Route("/notifications/purge", purge_endpoint, methods=["POST"]),
    Route("/api/notifications/purge", purge_endpoint, methods=["POST"]),
    Route("/notifications/test", test_endpoint, methods=["POST"]),
    Route("/api/notifications/test", test_endpoint, methods=["POST"]),
]

__all__ = [
    "API_PARAMETERS",
    "NAV",
    "ROUTES",
    "chosen_recipients",
    "outbox_report",
    "purge",
    "retry",
    "setup",
]
