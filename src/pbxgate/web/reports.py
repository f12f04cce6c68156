"""The Reports page: any report ``pbxgate cdr report`` makes, shown in the console, downloaded
in each of its formats, mailed now, and the configured schedules with what they have sent.

The report's options are the query string (``period`` or ``from``/``to``, ``language``,
``source``, ``top``, ``queues``), so a report can be shared as a link; a bad value is a 400
with one line. The page shows the report's own HTML (charts embedded as images, nothing from
another site) in a sandboxed frame; ``/reports/download?format=...`` gives the file the CLI's
``--format`` writes; "Mail it now" (admins) sends it over ``[report.smtp]`` to a schedule's
recipients or to ``[web] report_to`` and is audited. Each function below builds plain data
and knows nothing of HTTP; the endpoints at the end render it as HTML or JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pbxgate.cdr.report.formats import FORMATS, MIME, file_name
from pbxgate.cdr.report.settings import LANGUAGES, MAIL_FORMATS, PERIODS, ReportSettings
from pbxgate.cdr.settings import LOCAL_SOURCE, CdrSettings
from pbxgate.cdr.window import Window, limit_days, resolve_window, zone
from pbxgate.config import Settings, masked
from pbxgate.errors import InputError, PbxgateError
from pbxgate.web.data import MAX_DAYS
from pbxgate.web.render import add_text, is_api, language, problem, render
from pbxgate.web.security import client_address, requires
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role

# The query-string keys of a report (the CLI's options of the same names).
REPORT_QUERY = ("period", "from", "to", "language", "source", "top", "queues")
MAX_TOP = 1000
_TOP = re.compile(r"[0-9]{1,4}")  # ASCII digits only: "²".isdigit() is true, int("²") fails
SENT_SHOWN = 50
YES, NO = ("1", "yes", "true", "on"), ("0", "no", "false", "off")
FLASH = "reports_mail"  # the session key of the last "Mail it now" result (post/redirect/get)


@dataclass(frozen=True)
class ReportQuery:
    """A report's options, checked: what ``pbxgate cdr report`` takes on its command line."""

    period: str = ""
    start: str = ""
    end: str = ""
    language: str = "ru"
    source: str = ""
    top: int | None = None
    queues: bool | None = None

    @classmethod
    def parse(
        cls, query: Mapping[str, str], settings: Settings, default_language: str
    ) -> ReportQuery:
        """The options in ``query`` (empty values count as absent); InputError names a bad one."""
        get = {key: str(query.get(key) or "").strip() for key in REPORT_QUERY}
        period, start, end = get["period"], get["from"], get["to"]
        if period and period not in PERIODS:
            raise InputError(f"unknown period {period!r}", hint=f"one of {', '.join(PERIODS)}")
        if period and (start or end):
            raise InputError(f"period {period} cannot be combined with from/to")
        lang = get["language"] or default_language
        if lang not in LANGUAGES:
            raise InputError(f"unknown language {lang!r}", hint=f"one of {', '.join(LANGUAGES)}")
        source = get["source"]
        names = source_names(settings)
        if source and source not in names:
            raise InputError(f"unknown source {source!r}", hint=f"one of {', '.join(names)}")
        return cls(
            period=period or ("" if start or end else "yesterday"),
            start=start,
            end=end,
            language=lang,
            source=source,
            top=_top(get["top"]),
            queues=_yes_no(get["queues"]),
        )

    def params(self) -> dict[str, str]:
        """The query string of this report (only what is set), for links and forms."""
        values = {
            "period": self.period,
            "from": self.start,
            "to": self.end,
            "language": self.language,
            "source": self.source,
            "top": "" if self.top is None else str(self.top),
            "queues": "" if self.queues is None else ("yes" if self.queues else "no"),
        }
        return {key: value for key, value in values.items() if value}

    def window(self, now: datetime) -> Window:
        """The report's window: at most :data:`MAX_DAYS` days, as on the Calls page (a longer
        one of per-day charts ties a worker up for minutes)."""
        window = resolve_window(
            start=self.start or None, end=self.end or None, period=self.period or None, now=now
        )
        return limit_days(window, MAX_DAYS)


def _top(text: str) -> int | None:
    if not text:
        return None
    if not _TOP.fullmatch(text) or not 1 <= int(text) <= MAX_TOP:
        shown = text if len(text) <= 20 else text[:20] + "…"
        raise InputError(f"top must be a whole number from 1 to {MAX_TOP}, not {shown!r}")
    return int(text)


def _yes_no(text: str) -> bool | None:
    if not text:
        return None
    if text.lower() in YES:
        return True
    if text.lower() in NO:
        return False
    raise InputError(f"queues must be yes or no, not {text!r}")


def source_names(settings: Settings) -> list[str]:
    """The CDR sources a report may name: configured names only, never a URL or a file."""
    return [LOCAL_SOURCE, *sorted(settings.get(CdrSettings).sources)]


# -- the report, its files, the schedules ------------------------------------------------


def make(settings: Settings, query: ReportQuery, now: datetime) -> dict[str, Any]:
    """The report dict ``pbxgate cdr report`` would render for the same options."""
    from pbxgate.cdr.report.service import make_report, options  # noqa: PLC0415

    opts = options(
        settings,
        period=query.period,
        language=query.language,
        source=query.source,
        top=query.top,
        queues=query.queues,
    )
    return make_report(settings, query.window(now), opts, now)


def document(settings: Settings, report: dict[str, Any], fmt: str) -> tuple[bytes, str, str]:
    """The report as the file ``--format fmt`` writes: (bytes, media type, file name)."""
    from pbxgate.cdr.report.formats import render as render_format  # noqa: PLC0415

    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    body = render_format(report, fmt, max_rows=settings.get(ReportSettings).max_rows)
    media = "/".join(MIME[fmt])
    if MIME[fmt][0] == "text":
        media += "; charset=utf-8"
    return body, media, file_name(report, fmt)


def html_view(settings: Settings, report: dict[str, Any]) -> str:
    """The report's own HTML page with its charts embedded, for the console's frame; without
    matplotlib, the same page without charts."""
    from pbxgate.cdr.report.html import render_html, render_html_file  # noqa: PLC0415

    max_rows = settings.get(ReportSettings).max_rows
    try:
        return render_html_file(report, max_rows=max_rows)
    except PbxgateError:  # the charts' optional dependency is missing
        return render_html(report, {}, max_rows=max_rows)


def schedules(settings: Settings, now: datetime) -> dict[str, Any]:
    """The ``[report.schedules.*]`` with their next run, or the one line that is wrong."""
    from pbxgate.cdr.report.cron import next_fire  # noqa: PLC0415
    from pbxgate.cdr.report.schedule import load_plans  # noqa: PLC0415

    try:
        plans = load_plans(settings)
    except PbxgateError as exc:
        return {"items": [], "error": str(exc)}
    display = zone(settings.get(CdrSettings).timezone)
    after = now.replace(tzinfo=display) if display else now.astimezone()
    items = []
    for plan in plans:
        sched = plan.schedule
        fire = next_fire(plan.cron, plan.tz, after).astimezone(plan.tz)
        items.append(
            {
                "name": plan.name,
                "cron": plan.cron.text,
                "timezone": str(plan.tz),
                "period": sched.period,
                "format": sched.format,
                "to": masked(list(sched.to)),
                "next_run": fire.strftime("%Y-%m-%d %H:%M %Z").strip(),
            }
        )
    return {"items": items, "error": None}


def sent(settings: Settings, limit: int = SENT_SHOWN) -> list[dict[str, str]]:
    """What the schedules have sent (the sent log), newest first; none before the first."""
    from pbxgate.cdr.report.sentlog import SentLog  # noqa: PLC0415

    path = settings.get(ReportSettings).state_path()
    if not path.exists():  # the scheduler makes it; looking must not
        return []
    log = SentLog(path)
    try:
        rows = log.sent()
    finally:
        log.close()
    return [
        {"schedule": name, "period_start": start, "sent_at": at.replace("T", " ")[:19]}
        for name, start, at in reversed(rows[-limit:])
    ]


def mail_targets(settings: Settings) -> list[dict[str, Any]]:
    """Whom "Mail it now" may send to: ``[web] report_to``, then each schedule's list."""
    targets = []
    web = settings.get(WebSettings)
    if web.report_to:
        targets.append({"schedule": "", "to": masked(list(web.report_to)), "format": "html"})
    for name, sched in sorted(settings.get(ReportSettings).schedules.items()):
        targets.append({"schedule": name, "to": masked(list(sched.to)), "format": sched.format})
    return targets


def recipients(settings: Settings, schedule: str, fmt: str) -> tuple[list[str], str]:
    """Whom "Mail it now" sends to and in which format: a schedule's recipients (``[web]
    report_to`` for ``""``); ``fmt`` by default the schedule's format, else HTML."""
    scheduled = settings.get(ReportSettings).schedules
    if schedule and schedule not in scheduled:
        raise InputError(f"no report schedule named {schedule!r}")
    to = list(scheduled[schedule].to if schedule else settings.get(WebSettings).report_to)
    if not to:
        raise InputError("no recipients", hint="choose a schedule, or set [web] report_to")
    fmt = fmt or (scheduled[schedule].format if schedule else "html")
    if fmt not in MAIL_FORMATS:
        raise InputError(f"unknown format {fmt!r}", hint=f"one of {', '.join(MAIL_FORMATS)}")
    return to, fmt


def mail(
    settings: Settings, query: ReportQuery, now: datetime, to: list[str], fmt: str
) -> dict[str, Any]:
    """Make the report of ``query`` and send it; SMTP trouble is one SmtpError line."""
    from pbxgate.cdr.report.service import mail_report  # noqa: PLC0415

    report = make(settings, query, now)
    mail_report(settings, report, to, fmt)
    return {"period": report["period"]["label"], "to": to, "format": fmt}


def page(settings: Settings, query: ReportQuery, now: datetime) -> dict[str, Any]:
    """Everything the page shows: the report, its download links, schedules, sent log."""
    report = make(settings, query, now)
    params = query.params()
    return {
        "query": params,
        "report": report,
        "downloads": {
            fmt: "/reports/download?" + urlencode({**params, "format": fmt}) for fmt in FORMATS
        },
        "schedules": schedules(settings, now),
        "sent": sent(settings),
        "mail_targets": mail_targets(settings),
        "sources": source_names(settings),
    }


# -- endpoints ---------------------------------------------------------------------------


def _query(request: Request, values: Mapping[str, str] | None = None) -> ReportQuery:
    settings: Settings = request.app.state.settings_all
    query: ReportQuery = ReportQuery.parse(
        request.query_params if values is None else values, settings, language(request)
    )
    return query


@requires(Role.VIEWER)
async def reports_page(request: Request) -> Response:
    settings: Settings = request.app.state.settings_all
    try:
        query = _query(request)
        result = await run_in_threadpool(page, settings, query, request.app.state.now())
        view = await run_in_threadpool(html_view, settings, result["report"])
    except PbxgateError as exc:
        return problem(request, exc)
    return render(
        request,
        "reports.html",
        result=result,
        view=view,
        flash=request.session.pop(FLASH, None),
        can_mail=request.state.user.role.allows(Role.ADMIN),
        periods=PERIODS,
        languages=LANGUAGES,
        mail_formats=MAIL_FORMATS,
    )


@requires(Role.VIEWER)
async def reports_api(request: Request) -> Response:
    settings: Settings = request.app.state.settings_all
    try:
        query = _query(request)
        result = await run_in_threadpool(page, settings, query, request.app.state.now())
    except PbxgateError as exc:
        return problem(request, exc)
    return JSONResponse(result)


@requires(Role.VIEWER)
async def download(request: Request) -> Response:
    """The report as a file, as ``pbxgate cdr report --format FORMAT -o FILE`` writes it."""
    settings: Settings = request.app.state.settings_all
    fmt = request.query_params.get("format", "")
    try:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
        query = _query(request)
        report = await run_in_threadpool(make, settings, query, request.app.state.now())
        body, media, name = await run_in_threadpool(document, settings, report, fmt)
    except PbxgateError as exc:
        return problem(request, exc)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type=media, headers=headers)


@requires(Role.ADMIN)
async def mail_now(request: Request) -> Response:
    """Mail the report of the form's options now; audited, the result is one line."""
    settings: Settings = request.app.state.settings_all
    form = await request.form()
    values = {key: str(form.get(key) or "") for key in REPORT_QUERY}
    schedule, fmt = str(form.get("schedule") or ""), str(form.get("format") or "")
    try:
        query = _query(request, values)
        to, fmt = recipients(settings, schedule, fmt)
    except PbxgateError as exc:
        return problem(request, exc)
    user, address = request.state.user.name, client_address(request)
    target = f"schedule {schedule}" if schedule else "[web] report_to"
    now = request.app.state.now()
    try:
        done = await run_in_threadpool(mail, settings, query, now, to, fmt)
    except PbxgateError as exc:  # the SMTP server's answer (never the password), or the source
        request.app.state.users.audit(user, "report-mail-failed", f"{target}: {exc}", address)
        return _mailed(request, query, {"error": str(exc)}, str(exc))
    detail = f"{done['period']} to {target} ({len(to)} recipients, {fmt})"
    request.app.state.users.audit(user, "report-mail", detail, address)
    line = f"{done['period']} → {', '.join(to)} ({fmt})"
    return _mailed(request, query, {"sent": done}, None, line)


def _mailed(
    request: Request,
    query: ReportQuery,
    answer: dict[str, Any],
    error: str | None,
    line: str = "",
) -> Response:
    """JSON for the API (502 when the mail did not go); the page itself otherwise, its result
    line carried over the redirect in the session (post/redirect/get: a reload sends nothing)."""
    if is_api(request):
        return JSONResponse(answer, status_code=200 if error is None else 502)
    request.session[FLASH] = {"ok": error is None, "line": (error or line)[:500]}
    return RedirectResponse(
        f"/reports?{urlencode(query.params())}#report-mail-result", status_code=303
    )


ROUTES: list[BaseRoute] = [
    Route("/reports", reports_page, methods=["GET"]),
    Route("/api/reports", reports_api, methods=["GET"]),
    Route("/reports/download", download, methods=["GET"]),
    Route("/api/reports/download", download, methods=["GET"]),
    Route("/reports/mail", mail_now, methods=["POST"]),
    Route("/api/reports/mail", mail_now, methods=["POST"]),
]
NAV: list[tuple[str, str, Role]] = [("/reports", "reports", Role.VIEWER)]

add_text(
    {
        "ru": {
            "reports": "Отчёты", "report_show": "Показать", "report_period": "Период",
            "report_custom": "с… по…", "report_from": "с", "report_to": "по",
            "report_language": "Язык", "report_source": "Источник", "report_top": "Строк в топах",
            "report_queues": "Очереди", "report_default": "как настроено",
            "period_today": "сегодня", "period_yesterday": "вчера",
            "period_week": "неделя", "period_month": "месяц",
            "yes": "да", "no": "нет",
            "report_download": "Скачать", "report_mail": "Отправить сейчас",
            "report_mail_to": "Кому", "report_mail_format": "Формат",
            "report_mail_send": "Отправить", "report_mail_default": "как в расписании",
            "report_mail_none":
                "Получателей нет: задайте [report.schedules.*] или [web] report_to.",
            "report_mailed": "Отправлено", "report_mail_failed": "Не отправлено",
            "report_web_to": "[web] report_to",
            "report_schedules": "Расписания", "report_no_schedules":
                "Расписаний нет ([report.schedules.*] в настройках).",
            "report_name": "Имя", "report_cron": "cron", "report_recipients": "Получатели",
            "report_next": "Следующий запуск", "report_format": "Формат",
            "report_sent": "Отправленные", "report_nothing_sent": "Пока ничего не отправлено.",
            "report_period_start": "Начало периода", "report_sent_at": "Отправлено",
            "report_frame": "Отчёт",
        },
        "en": {
            "reports": "Reports", "report_show": "Show", "report_period": "Period",
            "report_custom": "from… to…", "report_from": "from", "report_to": "to",
            "report_language": "Language", "report_source": "Source", "report_top": "Top rows",
            "report_queues": "Queues", "report_default": "as configured",
            "period_today": "today", "period_yesterday": "yesterday",
            "period_week": "week", "period_month": "month",
            "yes": "yes", "no": "no",
            "report_download": "Download", "report_mail": "Mail it now",
            "report_mail_to": "To", "report_mail_format": "Format",
            "report_mail_send": "Send", "report_mail_default": "as scheduled",
            "report_mail_none": "No recipients: set [report.schedules.*] or [web] report_to.",
            "report_mailed": "Sent", "report_mail_failed": "Not sent",
            "report_web_to": "[web] report_to",
            "report_schedules": "Schedules", "report_no_schedules":
                "No schedules ([report.schedules.*] in the settings).",
            "report_name": "Name", "report_cron": "cron", "report_recipients": "Recipients",
            "report_next": "Next run", "report_format": "Format",
            "report_sent": "Sent", "report_nothing_sent": "Nothing sent yet.",
            "report_period_start": "Period start", "report_sent_at": "Sent at",
            "report_frame": "Report",
        },
    }
)  # fmt: skip

__all__ = [
    "NAV",
    "REPORT_QUERY",
    "ROUTES",
    "ReportQuery",
    "document",
    "mail",
    "make",
    "page",
    "recipients",
    "schedules",
    "sent",
]
