"""The Calls page: the calls of a window, filtered as ``pbxgate cdr calls`` filters them, a page
at a time, each call's legs on demand, and the whole filtered list as CSV or XLSX.

    /calls               /api/calls               a page of calls (the filter is the query string)
    /calls/{linkedid}    /api/calls/{linkedid}    one call: its row, its legs, its timeline
    /calls.csv           /api/calls.csv           every call the filter passes, streamed
    /calls.xlsx          /api/calls.xlsx          the same as a workbook

Viewers and above; the "▶" link to a call's recording is shown to listeners and above. The
page works without JavaScript (each row links to its call's page); with it (``calls.js``) a
button opens the call's legs and timeline under its row.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pbxgate.cdr.callindex import CallIndex, DayStore
from pbxgate.cdr.render import cell
from pbxgate.cdr.report.i18n import duration, label
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import day_window, file_stem
from pbxgate.config import Settings
from pbxgate.errors import PbxgateError
from pbxgate.optional import need
from pbxgate.web import data
from pbxgate.web.background import run_beside
from pbxgate.web.lookup import plausible_linkedid
from pbxgate.web.render import TEXT, add_text, is_api, language, problem, render
from pbxgate.web.security import client_address, requires
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role

log = logging.getLogger(__name__)

NAV = [("/calls", "calls", Role.VIEWER)]
COLUMNS = (
    "start",
    "direction",
    "src",
    "caller",
    "did",
    "dst",
    "answered_by",
    "outcome",
    "ring",
    "talk",
    "legs",
)  # fmt: skip  (after the legs button and the recording link)
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROWS_A_WRITE = 500  # CSV rows sent at a time
REFRESH_SECONDS = 60.0  # how often the keeper looks for stale days in the call index
# A page of calls is computed once for everyone who asks for the same one (the same query
# string) within this many seconds: a room of people opening today's calls costs one query.
CALLS_SECONDS = 5.0

_QUERY = {
    "period": "today, yesterday, week (the last 7 whole days) or month (the previous calendar "
    "month); today by default",
    "from": "first day or moment, as pbxgate cdr calls --from (2016-03-18, 18.03.2016 12:00); "
    "with from or to, period is not used",
    "to": "last day (whole) or moment (exclusive), as pbxgate cdr calls --to; now by default",
    "direction": "inbound, outbound or internal",
    "src": "caller number: 113 exact, 8499* prefix, *1111 suffix, *111* contains",
    "dst": "called number, matched as src",
    "did": "the DID dialled, matched as src",
    "cnum": "caller ID number, matched as src",
    "extension": "calls that rang (or were answered by) this extension's phone",
    "queue": "calls dialled to this queue or ring group number, or queued in it",
    "outcome": "answered, unanswered, or missed (inbound and unanswered)",
    "disposition": "the call's outcome as Asterisk writes it: ANSWERED, NO ANSWER, BUSY, "
    "FAILED, CONGESTION, CANCEL; repeat it (or separate by commas) for several",
    "min_billsec": "talk time at least this many seconds",
    "accountcode": "a leg of the call has this accountcode",
}
_PAGING = {
    "page": "page number, from 1 (past the last page: the last)",
    "per_page": "rows a page, 50 by default, at most 500",
}
# For /api/openapi.json (openapi.py).
API_PARAMETERS: dict[str, dict[str, Any]] = {
    "/api/calls": {**_QUERY, **_PAGING},
    "/api/calls.csv": _QUERY,
    "/api/calls.xlsx": _QUERY,
    "/api/calls/{linkedid}": {"linkedid": "the call's linkedid (as /api/calls lists it)"},
}

add_text(
    {
        "ru": {
            "calls_period": "Период", "calls_any": "любой", "calls_today": "сегодня",
            "calls_yesterday": "вчера", "calls_week": "7 дней", "calls_month": "прошлый месяц",
            "calls_from": "С", "calls_to": "По",
            "calls_when_hint": "2016-03-18 12:00",
            "calls_direction": "Направление", "calls_any_direction": "любое",
            "dir_inbound": "входящий", "dir_outbound": "исходящий",
            "dir_internal": "внутренний", "dir_external": "транзитный",
            "calls_src": "Кто звонил", "calls_dst": "Кому", "calls_did": "DID",
            "calls_cnum": "CallerID", "calls_number_hint": "8499* — начало, *111* — часть",
            "calls_extension": "Внутренний номер", "calls_queue": "Очередь / группа",
            "calls_outcome": "Итог", "calls_any_outcome": "любой",
            "oc_answered": "отвеченные", "oc_unanswered": "неотвеченные",
            "oc_missed": "пропущенные входящие",
            "calls_disposition": "Статус Asterisk", "calls_min_billsec": "Разговор от, с",
            "calls_accountcode": "accountcode", "calls_per_page": "На странице",
            "calls_reset": "Сбросить", "calls_csv": "Скачать CSV", "calls_xlsx": "Скачать XLSX",
            "calls_export": "Выгрузить всё отобранное",
            "col_start": "Начало", "col_direction": "Направление", "col_src": "Номер",
            "col_caller": "Имя", "col_did": "DID", "col_dst": "Кому",
            "col_answered_by": "Ответил", "col_outcome": "Итог", "col_ring": "Ожидание, с",
            "col_talk": "Разговор, с", "col_legs": "Плеч", "col_recording": "Запись",
            "calls_show_legs": "Плечи звонка", "calls_legs_of": "Плечи звонка в {start}",
            "calls_listen": "Слушать запись звонка в {start}", "calls_loading": "Загрузка…",
            "calls_failed": "Не удалось загрузить", "calls_call": "Звонок",
            "calls_timeline": "Хронология", "calls_legs": "Плечи (строки CDR)",
            "calls_back": "К списку звонков", "calls_no_call": "Такого звонка нет",
            "calls_first": "Первая страница", "calls_prev": "Предыдущая страница",
            "calls_next": "Следующая страница", "calls_last": "Последняя страница",
            "tl_answered": "{who}: вызов с {at}, гудки {ring} с, ответил, разговор {talk} с",
            "tl_transfer": "{who}: перевод в {at}, гудки {ring} с, ответил, разговор {talk} с",
            "tl_unanswered": "{who}: вызов с {at}, гудки {ring} с, {status}",
            "tl_pbx": "АТС ({who}) с {at}, {talk} с",
            "tl_end": "Звонок закончился в {end}",
            "tl_ring": "гудки", "tl_talk": "разговор",
        },
        "en": {
            "calls_period": "Period", "calls_any": "any", "calls_today": "today",
            "calls_yesterday": "yesterday", "calls_week": "7 days", "calls_month": "last month",
            "calls_from": "From", "calls_to": "To",
            "calls_when_hint": "2016-03-18 12:00",
            "calls_direction": "Direction", "calls_any_direction": "any",
            "dir_inbound": "inbound", "dir_outbound": "outbound", "dir_internal": "internal",
            "dir_external": "external",
            "calls_src": "Caller", "calls_dst": "Called", "calls_did": "DID",
            "calls_cnum": "Caller ID", "calls_number_hint": "8499* starts, *111* contains",
            "calls_extension": "Extension", "calls_queue": "Queue / ring group",
            "calls_outcome": "Outcome", "calls_any_outcome": "any",
            "oc_answered": "answered", "oc_unanswered": "unanswered",
            "oc_missed": "missed inbound",
            "calls_disposition": "Asterisk status", "calls_min_billsec": "Talk at least, s",
            "calls_accountcode": "accountcode", "calls_per_page": "Per page",
            "calls_reset": "Reset", "calls_csv": "Download CSV", "calls_xlsx": "Download XLSX",
            "calls_export": "Export everything filtered",
            "col_start": "Start", "col_direction": "Direction", "col_src": "From",
            "col_caller": "Caller", "col_did": "DID", "col_dst": "To",
            "col_answered_by": "Answered by", "col_outcome": "Outcome", "col_ring": "Ring, s",
            "col_talk": "Talk, s", "col_legs": "Legs", "col_recording": "Recording",
            "calls_show_legs": "Call legs", "calls_legs_of": "Legs of the call at {start}",
            "calls_listen": "Listen to the call at {start}", "calls_loading": "Loading…",
            "calls_failed": "Could not load", "calls_call": "Call",
            "calls_timeline": "Timeline", "calls_legs": "Legs (CDR rows)",
            "calls_back": "Back to the calls", "calls_no_call": "No such call",
            "calls_first": "First page", "calls_prev": "Previous page",
            "calls_next": "Next page", "calls_last": "Last page",
            "tl_answered": "{who}: rang from {at} for {ring} s, answered, talked {talk} s",
            "tl_transfer": "{who}: transferred at {at}, rang {ring} s, answered, talked {talk} s",
            "tl_unanswered": "{who}: rang from {at} for {ring} s, {status}",
            "tl_pbx": "PBX ({who}) from {at}, {talk} s",
            "tl_end": "Call ended at {end}",
            "tl_ring": "ringing", "tl_talk": "talking",
        },
    }
)  # fmt: skip


def setup(app: Starlette, settings: Settings) -> None:
    """The call index in ``app.state.call_index`` and, while the application runs (its
    lifespan: ``pbxgate web``), a thread that fills it at start and keeps it (:func:`keep`)."""
    app.state.call_index = CallIndex(
        store=_day_store(settings), today=lambda: app.state.now().date()
    )

    def page(pairs: Any) -> dict[str, Any]:
        return data.calls(settings, list(pairs), app.state.now(), index=app.state.call_index)

    app.state.calls_kept = data.Kept(
        page,
        fresh=CALLS_SECONDS,
        limit=CALLS_SECONDS,
        max_age=CALLS_SECONDS,
        clock=lambda: app.state.clock(),  # noqa: PLW0108 (a test may replace the clock)
        max_keys=256,
    )
    app.state.warming.add("calls")
    run_beside(app, keep, "calls-index")


def _day_store(settings: Settings) -> DayStore | None:
    """The call index on disk, beside the console's database; without it (a damaged file, one
    that is not ours) the console works as before, working days out again after a restart."""
    path = settings.get(WebSettings).database_path.with_name("callindex.sqlite3")
    try:
        return DayStore(path)
    except (sqlite3.Error, OSError) as exc:
        log.warning("calls: the call index is not kept on disk (%s: %s); removing the file "
                    "loses nothing", path, exc)  # fmt: skip
        return None


def keep(app: Starlette, stop: threading.Event) -> None:
    """The call index's keeper: :func:`warm` it, then every REFRESH_SECONDS work out again
    the kept days gone stale (:meth:`CallIndex.refresh_stale`), so that no reader waits for
    them, until ``stop``."""
    from pbxgate.cdr.numbers import InternalRule  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    index: CallIndex = app.state.call_index
    index.ahead = True  # days read back from disk, however old, are served and redone behind
    warm(app, stop)
    app.state.warming.discard("calls")
    cdr = app.state.settings_all.get(CdrSettings)
    failing = False
    while not stop.wait(REFRESH_SECONDS):
        try:
            source = open_source(cdr)
            try:
                index.refresh_stale(source, InternalRule.from_settings(cdr), stop.is_set)
            finally:
                source.close()
        except Exception as exc:  # the pages work without it: a stale day is worked out there
            if not failing:
                log.warning("calls: the call index is not kept up to date: %s", exc)
            failing = True
            index.ahead = False
        else:
            failing = False
            index.ahead = True


def warm(app: Starlette, stop: threading.Event) -> int:
    """Work out the calls of every day from the first of last month to today, newest first,
    so that the first page filtered on direction, outcome or talk time over a month is quick
    (a month of 150,000 calls is a few seconds of one core). Days already kept are skipped;
    ``stop`` ends it between two days. Returns the number of days done."""
    from pbxgate.cdr.numbers import InternalRule  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    settings: Settings = app.state.settings_all
    index: CallIndex = app.state.call_index
    today = app.state.now().date()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    cdr = settings.get(CdrSettings)
    done = 0
    try:
        source = open_source(cdr)
        try:
            rule = InternalRule.from_settings(cdr)
            for back in range((today - first).days + 1):
                if stop.is_set():
                    break
                index.briefs(source, day_window(today - timedelta(days=back)), rule)
                done += 1
        finally:
            source.close()
    except Exception as exc:  # the page works without it, only slower the first time
        log.warning("calls: the call index was not prepared: %s", exc)
    return done


# -- a page of calls -------------------------------------------------------------------------


async def _calls(request: Request) -> dict[str, Any]:
    state = request.app.state
    # The filter as read (data.read_calls_query reads only these keys, the last of a repeated
    # one): one key per page, whatever the order of the query string. The sort is by name
    # only, so a repeated key keeps its values' order.
    pairs = tuple(
        sorted(
            (
                (k, v.strip())
                for k, v in request.query_params.multi_items()
                if k in data.CALL_QUERY and v.strip()
            ),
            key=lambda pair: pair[0],
        )
    )
    kept: data.Kept = state.calls_kept
    found: dict[str, Any] = await run_in_threadpool(kept.get, pairs)
    listener = request.state.user.role.allows(Role.LISTENER)
    api = "/api" if is_api(request) else ""
    result = {**found, "rows": [dict(row) for row in found["rows"]]}  # the kept one stays as is
    for row in result["rows"]:
        key = quote(row["linkedid"], safe="")
        row["detail_url"] = f"{api}/calls/{key}"
        if listener and row["recording"]:
            row["recording_url"] = f"/recordings/{key}"
    shared = urlencode(result["filters"], doseq=True)
    tail = f"?{shared}" if shared else ""
    result["export"] = {"csv": f"{api}/calls.csv{tail}", "xlsx": f"{api}/calls.xlsx{tail}"}
    return result


@requires(Role.VIEWER)
async def calls_page(request: Request) -> Response:
    try:
        result = await _calls(request)
    except PbxgateError as exc:
        return problem(request, exc)
    return render(
        request,
        "calls.html",
        result=result,
        query=dict(request.query_params),
        dispositions=data.DISPOSITIONS,
        chosen=set(result["filters"].get("disposition", [])),
        columns=COLUMNS,
        pages=page_links(result),
    )


@requires(Role.VIEWER)
async def calls_api(request: Request) -> Response:
    """One page of calls of a window, newest first (ties by linkedid: a stable order), and how
    many there are in all; the filter is the query string, as on the Calls page."""
    try:
        return JSONResponse(await _calls(request))
    except PbxgateError as exc:
        return problem(request, exc)


def page_links(result: dict[str, Any]) -> dict[str, str]:
    """The query strings of the first, previous, next and last pages (those that exist)."""
    page, pages = result["page"], result["pages"]
    wanted = {"first": 1, "prev": page - 1, "next": page + 1, "last": pages}
    base = {**result["filters"], "per_page": str(result["per_page"])}
    return {
        name: urlencode({**base, "page": str(number)}, doseq=True)
        for name, number in wanted.items()
        if 1 <= number <= pages and number != page
    }


# -- one call --------------------------------------------------------------------------------


async def _call(request: Request) -> dict[str, Any] | None:
    linkedid = request.path_params["linkedid"]
    if not plausible_linkedid(linkedid):
        return None
    detail: dict[str, Any] | None = await run_in_threadpool(
        data.call_detail, request.app.state.settings_all, linkedid
    )
    if detail is not None:
        lang = language(request)
        timeline = detail["timeline"]
        for item in timeline["items"]:
            item["text"] = timeline_text(item, lang)
        timeline["end"] = timeline_end(timeline["duration"], lang)
        if request.state.user.role.allows(Role.LISTENER) and detail["call"]["recording"]:
            detail["call"]["recording_url"] = f"/recordings/{quote(linkedid, safe='')}"
    return detail


@requires(Role.VIEWER)
async def call_page(request: Request) -> Response:
    try:
        detail = await _call(request)
    except PbxgateError as exc:
        return problem(request, exc)
    status = 200 if detail is not None else 404
    return render(request, "calls_detail.html", status, detail=detail)


@requires(Role.VIEWER)
async def call_api(request: Request) -> Response:
    """One call: its row (as /api/calls lists it), its legs (the raw CDR rows, in order) and
    its timeline (who rang from when and for how long, who answered, transfers, the end; in
    seconds from the call's start, each item also said in words). 404 for an unknown call."""
    try:
        detail = await _call(request)
    except PbxgateError as exc:
        return problem(request, exc)
    if detail is None:
        linkedid = request.path_params["linkedid"]
        return JSONResponse({"error": f"no call {linkedid!r} in the CDR"}, status_code=404)
    return JSONResponse(detail)


def timeline_text(item: dict[str, Any], lang: str) -> str:
    """One timeline item in words, for screen readers and for everyone under the bars."""
    template = TEXT[lang][f"tl_{item['kind']}"]
    status = label(lang, item["status"]) if item["status"] else "—"
    return template.format(who=item["who"], at=duration(item["at"]), ring=item["ring"],
                           talk=item["talk"], status=status)  # fmt: skip


def timeline_end(seconds: int, lang: str) -> str:
    return TEXT[lang]["tl_end"].format(end=duration(seconds))


# -- exports ---------------------------------------------------------------------------------


async def _export(request: Request, kind: str) -> Response:
    state = request.app.state
    pairs = request.query_params.multi_items()
    try:
        asked, total, rows = await run_in_threadpool(
            data.export_calls, state.settings_all, pairs, state.now(), index=state.call_index
        )
    except PbxgateError as exc:
        return problem(request, exc)
    name = f"{file_stem(asked.window.start, asked.window.end)}.{kind}"
    detail = f"{kind} {asked.window.describe()} {total} calls {urlencode(asked.filters, True)}"
    state.users.audit(request.state.user.name, "calls-export", detail, client_address(request))
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Cache-Control": "private, no-store"}  # fmt: skip
    if kind == "csv":
        return StreamingResponse(csv_lines(rows), media_type="text/csv; charset=utf-8",
                                 headers=headers)  # fmt: skip
    try:
        body = await run_in_threadpool(xlsx_bytes, rows, asked.window.describe())
    except PbxgateError as exc:
        return problem(request, exc)
    return Response(body, media_type=XLSX_TYPE, headers=headers)


@requires(Role.VIEWER)
async def export_csv(request: Request) -> Response:
    """Every call the filter passes (all pages, newest first) as CSV, streamed: the columns of
    ``pbxgate cdr calls --columns all`` and the same text, UTF-8 without a byte-order mark."""
    return await _export(request, "csv")


@requires(Role.VIEWER)
async def export_xlsx(request: Request) -> Response:
    """Every call the filter passes (all pages, newest first) as an XLSX workbook."""
    return await _export(request, "xlsx")


def csv_lines(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The CSV ``pbxgate cdr calls --format csv`` writes (its cells, ``\\n`` line ends), a few
    hundred rows at a time.

    No byte-order mark, as the CLI writes none: the file is for scripts and spreadsheets
    alike, a BOM would become part of the first column's name for most CSV readers, and Excel
    in a Russian locale expects ``;`` between fields anyway, so it would not open this file in
    columns even with one. The XLSX export is the file for Excel."""
    columns = data.EXPORT_COLUMNS
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for i, row in enumerate(rows, start=1):
        writer.writerow([cell(row.get(c)) for c in columns])
        if i % ROWS_A_WRITE == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def xlsx_bytes(rows: Iterator[dict[str, Any]], title: str) -> bytes:
    """One sheet, ``calls``: a bold header row, then a row a call with native types (times
    as Excel dates), written row by row (openpyxl's write-only mode)."""
    need("openpyxl", "an XLSX export")
    from openpyxl import Workbook  # type: ignore[import-untyped]  # noqa: PLC0415
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]  # noqa: PLC0415
    from openpyxl.styles import Font  # type: ignore[import-untyped]  # noqa: PLC0415

    columns = data.EXPORT_COLUMNS
    book = Workbook(write_only=True)
    book.properties.title = f"calls {title}"
    sheet = book.create_sheet("calls")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in columns:
        head = WriteOnlyCell(sheet, value=name)
        head.font = bold
        header.append(head)
    sheet.append(header)
    for row in rows:
        sheet.append([_xlsx_value(sheet, row.get(c), WriteOnlyCell) for c in columns])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # not allowed in an XLSX cell


def _xlsx_value(sheet: Any, value: Any, make: Any) -> Any:
    if isinstance(value, datetime):
        stamp = make(sheet, value=value)
        stamp.number_format = "yyyy-mm-dd hh:mm:ss"
        return stamp
    if isinstance(value, str):
        return _ILLEGAL.sub("", value)
    return value


ROUTES: list[BaseRoute] = [
    Route("/calls", calls_page),
    Route("/api/calls", calls_api),
    Route("/calls.csv", export_csv),
    Route("/calls.xlsx", export_xlsx),
    Route("/api/calls.csv", export_csv),
    Route("/api/calls.xlsx", export_xlsx),
    Route("/calls/{linkedid}", call_page),
    Route("/api/calls/{linkedid}", call_api),
]

__all__ = [
    "API_PARAMETERS",
    "COLUMNS",
    "NAV",
    "ROUTES",
    "csv_lines",
    "file_stem",
    "page_links",
    "setup",
    "timeline_text",
    "xlsx_bytes",
]
