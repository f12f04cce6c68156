"""The Missed page: missed inbound calls of a window and what became of each.

For every missed call (``pbxgate cdr missed``'s rule, :mod:`pbxgate.cdr.missed`): who called,
when, on which DID and to which queue, ring group or phone, how many times that number was
missed in the window, and its state, judged as the Today report judges it (a call-back or a
later answered call within ``[report] callback_hours``):

    called_back      we rang the number back and they answered (by whom, when)
    rang_no_answer   we rang back, nobody answered (the last attempt: by whom, when)
    got_through      they called again and were answered
    open             nothing yet
    no_number        the caller withheld the number

A user (viewer and up) may mark a call handled with a comment, and take the mark back. Marks
live in pbxgate's own web database (``[web] database``, 0600, beside the users)::

    web_handled(linkedid PK, who, at, comment)          at: UTC, ISO 8601 text

Every mark and unmark goes into the audit log. A mark is only taken for a call the CDR holds
as a missed inbound call (404 otherwise).

    GET  /missed, /api/missed                         ?period=|from=&to=, unhandled=1
    POST /missed/{linkedid}/handled                   form: csrf, comment
    POST /api/missed/{linkedid}/handled               JSON {"comment": ...} or form; X-CSRF-Token
    POST /missed/{linkedid}/unhandled, /api/missed/{linkedid}/unhandled
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, create_engine, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pbxgate.cdr.api import clock_duration
from pbxgate.cdr.missed import CALLED_BACK, GOT_THROUGH, NO_NUMBER, MissedCall, missed_calls
from pbxgate.cdr.missed import number_key as key_of
from pbxgate.cdr.model import INBOUND, OUTBOUND, Call
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import Filters, fetch_calls
from pbxgate.cdr.report.settings import ReportSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.source import open_source
from pbxgate.cdr.window import Window, limit_days, resolve_window, zone
from pbxgate.config import Settings
from pbxgate.errors import InputError, PbxgateError, SourceError
from pbxgate.private import private_file
from pbxgate.web.data import MAX_DAYS
from pbxgate.web.lookup import find_call
from pbxgate.web.render import add_text, is_api, problem, render
from pbxgate.web.security import client_address, requires
from pbxgate.web.settings import WebSettings
from pbxgate.web.users import Role

MAX_COMMENT = 500
MAX_BODY = 16 * 1024  # a mark's body: a comment of 500 characters, in JSON or a form
CHUNK = 500  # linkedids per IN (...) when reading marks: well under SQLite's variable limit
PERIODS = ("today", "yesterday", "week", "month")
# The query-string keys of the page: the filter is the URL, as on the Calls page.
MISSED_QUERY = ("period", "from", "to", "unhandled")
STATES = ("open", "rang_no_answer", "called_back", "got_through", "no_number")

NAV = [("/missed", "missed_board", Role.VIEWER)]
# For /api/openapi.json (openapi.py).
_LINKEDID = {"linkedid": "the missed call's linkedid (as /api/missed lists it)"}
API_PARAMETERS: dict[str, dict[str, Any]] = {
    "/api/missed": {
        "period": "today, yesterday, week or month (when from/to are not given); today by default",
        "from": "first day or moment, as pbxgate cdr missed --from (YYYY-MM-DD)",
        "to": "last day or moment, as pbxgate cdr missed --to",
        "unhandled": "1: only the calls nobody has marked handled",
    },
    "/api/missed/{linkedid}/handled": _LINKEDID,
    "/api/missed/{linkedid}/unhandled": _LINKEDID,
}

add_text(
    {
        "ru": {
            "missed_board": "Пропущенные", "missed_when": "Когда", "missed_caller": "Кто звонил",
            "missed_did": "Номер (DID)", "missed_dst": "Очередь / группа / телефон",
            "missed_tries": "Пропущено раз", "missed_state": "Что дальше",
            "missed_handled": "Обработан", "missed_comment": "Комментарий",
            "missed_mark": "Отметить обработанным", "missed_unmark": "Снять отметку",
            "missed_unhandled_only": "Только необработанные", "missed_none": "Пропущенных нет",
            "missed_by": "кто", "missed_after": "через", "missed_attempts": "недозвонов",
            "missed_in_all": "пропущено", "missed_handled_count": "обработано",
            "state_open": "Ещё нет", "state_rang_no_answer": "Перезванивали, не ответил",
            "state_called_back": "Перезвонили", "state_got_through": "Дозвонился сам",
            "state_no_number": "Номер скрыт",
            "missed_from": "С", "missed_to": "По", "missed_period": "Период",
            "missed_today": "сегодня", "missed_yesterday": "вчера",
            "missed_week": "7 дней", "missed_month": "прошлый месяц",
        },
        "en": {
            "missed_board": "Missed", "missed_when": "When", "missed_caller": "Caller",
            "missed_did": "Number (DID)", "missed_dst": "Queue / group / phone",
            "missed_tries": "Times missed", "missed_state": "What next",
            "missed_handled": "Handled", "missed_comment": "Comment",
            "missed_mark": "Mark handled", "missed_unmark": "Unmark",
            "missed_unhandled_only": "Not yet handled only", "missed_none": "No missed calls",
            "missed_by": "by", "missed_after": "after", "missed_attempts": "unanswered",
            "missed_in_all": "missed", "missed_handled_count": "handled",
            "state_open": "Not yet", "state_rang_no_answer": "Called back, no answer",
            "state_called_back": "Called back", "state_got_through": "Got through",
            "state_no_number": "Number withheld",
            "missed_from": "From", "missed_to": "To", "missed_period": "Period",
            "missed_today": "today", "missed_yesterday": "yesterday",
            "missed_week": "7 days", "missed_month": "last month",
        },
    }
)  # fmt: skip


# -- the store of marks ------------------------------------------------------------------


@dataclass(frozen=True)
class Mark:
    linkedid: str
    who: str
    at: datetime  # UTC
    comment: str

    def as_dict(self, display: Any = None) -> dict[str, str]:
        local = self.at.astimezone(display) if display else self.at.astimezone()
        return {"who": self.who, "at": _utc_iso(self.at), "local": f"{local:%Y-%m-%d %H:%M}",
                "comment": self.comment}  # fmt: skip


metadata = MetaData()
handled_table = Table(
    "web_handled",
    metadata,
    Column("linkedid", String(150), primary_key=True),
    Column("who", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("comment", Text, nullable=False, default=""),
)


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _now() -> datetime:
    return datetime.now(UTC)


def check_comment(comment: str) -> str:
    text = comment.strip()
    if len(text) > MAX_COMMENT:
        raise InputError(f"the comment is too long: use at most {MAX_COMMENT} characters")
    return text


class HandledStore:
    """Which missed calls someone marked handled, in the web database (created 0600)."""

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = _now) -> None:
        self.path = path
        self._clock = clock
        try:
            private_file(path, companions=True)  # comments may name callers and numbers
        except OSError as exc:
            raise SourceError(f"cannot create the web database {path}: {exc.strerror}") from exc
        self.engine: Engine = create_engine(f"sqlite:///{path}")
        with self._translated("open"):
            metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def mark(self, linkedid: str, who: str, comment: str) -> Mark:
        """Mark ``linkedid`` handled by ``who`` now (a second mark replaces the first)."""
        mark = Mark(linkedid, who, self._clock(), check_comment(comment))
        row = {"linkedid": linkedid, "who": who, "at": _utc_iso(mark.at), "comment": mark.comment}
        stmt = sqlite_insert(handled_table).values(**row)
        stmt = stmt.on_conflict_do_update(index_elements=["linkedid"], set_=row)
        with self._translated("mark a call handled"), self.engine.begin() as conn:
            conn.execute(stmt)
        return mark

    def unmark(self, linkedid: str) -> bool:
        """Take the mark off ``linkedid``; False when it had none."""
        stmt = handled_table.delete().where(handled_table.c.linkedid == linkedid)
        with self._translated("unmark a call"), self.engine.begin() as conn:
            return bool(conn.execute(stmt).rowcount)

    def get(self, linkedid: str) -> Mark | None:
        return self.marks([linkedid]).get(linkedid)

    def marks(self, linkedids: Iterable[str]) -> dict[str, Mark]:
        """The marks of those of ``linkedids`` that have one."""
        wanted = sorted(set(linkedids))
        found: dict[str, Mark] = {}
        with self._translated("read marks"), self.engine.connect() as conn:
            for i in range(0, len(wanted), CHUNK):
                part = wanted[i : i + CHUNK]
                query = select(handled_table).where(handled_table.c.linkedid.in_(part))
                for r in conn.execute(query):
                    found[r.linkedid] = Mark(
                        r.linkedid, r.who, datetime.fromisoformat(r.at), r.comment
                    )
        return found

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise SourceError(
                f"cannot {doing} in the web database {self.path}: {reason}",
                hint="check [web] database",
            ) from exc


# -- the board (no HTTP here) ------------------------------------------------------------


def board_window(query: Mapping[str, str], now: datetime) -> Window:
    """The window the query string names: ``period`` or ``from``/``to``; today by default;
    at most :data:`MAX_DAYS` days, as on the Calls page."""
    period = query.get("period") or None
    start, end = query.get("from") or None, query.get("to") or None
    if period not in (None, *PERIODS):
        raise InputError(f"unknown period {period!r}", hint=f"use one of: {', '.join(PERIODS)}")
    window = resolve_window(start=start, end=end, period=None if start or end else period, now=now)
    return limit_days(window, MAX_DAYS)


def missed_rows(settings: Settings, window: Window, now: datetime) -> list[dict[str, Any]]:
    """The missed calls of ``window``, oldest first, each with its state (see the module)."""
    cdr = settings.get(CdrSettings)
    within = timedelta(hours=settings.get(ReportSettings).callback_hours)
    horizon = max(window.end, min(window.end + within, now))  # as api.missed and the report
    source = open_source(cdr)
    try:
        rule = InternalRule.from_settings(cdr)
        calls = fetch_calls(source, Window(window.start, horizon), Filters(rule=rule), lean=True)
    finally:
        source.close()
    inside = [c for c in calls if c.start in window]
    items = missed_calls(inside, calls, within)
    tries = Counter(key_of(item.call.src) for item in items if item.resolution != NO_NUMBER)
    unanswered = _unanswered_callbacks(calls)
    return [_row(item, tries, unanswered, within) for item in items]


def _unanswered_callbacks(calls: list[Call]) -> dict[str, list[Call]]:
    """Outbound calls nobody answered, by the number they rang (its last ten digits)."""
    found: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        if call.direction == OUTBOUND and not call.answered and key_of(call.dst):
            found[key_of(call.dst)].append(call)
    return found


def _row(
    item: MissedCall, tries: Counter[str], unanswered: dict[str, list[Call]], within: timedelta
) -> dict[str, Any]:
    row = item.as_row()
    call = item.call
    row["start"] = _local(call.start)
    number = key_of(call.src)
    row["tries"] = tries.get(number, 1) if item.resolution != NO_NUMBER else 1
    row["after"] = clock_duration(item.after_seconds)
    row["state"], row["action"] = _state(item, unanswered.get(number, []), within)
    return row


def _state(
    item: MissedCall, unanswered: list[Call], within: timedelta
) -> tuple[str, dict[str, Any] | None]:
    """The state key and what was done: who, when, how long after the missed call ended."""
    if item.resolution == NO_NUMBER:
        return "no_number", None
    if item.resolution in (CALLED_BACK, GOT_THROUGH) and item.resolved_at is not None:
        state = "called_back" if item.resolution == CALLED_BACK else "got_through"
        return state, _action(item, item.resolved_at, item.resolved_by, answered=True)
    if not item.attempts:
        return "open", None
    end = item.call.end
    tried = [c for c in unanswered if end <= c.start <= end + within and c is not item.call]
    if not tried:  # pragma: no cover - attempts counts exactly these calls
        return "open", None
    last = max(tried, key=lambda c: c.start)
    return "rang_no_answer", _action(item, last.start, last.src, answered=False)


def _action(item: MissedCall, at: datetime, by: str, *, answered: bool) -> dict[str, Any]:
    after = max(0, int((at - item.call.end).total_seconds()))
    return {"by": by, "at": _local(at), "after": clock_duration(after), "answered": answered}


def board(
    settings: Settings,
    query: Mapping[str, str],
    now: datetime,
    marks_of: Callable[[Iterable[str]], dict[str, Mark]],
) -> dict[str, Any]:
    """The page's dict: the window, the counts by state, the rows with their marks."""
    window = board_window(query, now)
    rows = missed_rows(settings, window, now)
    marks = marks_of(row["linkedid"] for row in rows)
    display = zone(settings.get(CdrSettings).timezone)
    for row in rows:
        mark = marks.get(row["linkedid"])
        row["handled"] = mark.as_dict(display) if mark else None
    states = Counter(row["state"] for row in rows)
    unhandled_only = query.get("unhandled") in ("1", "on", "yes", "true")
    shown = [row for row in rows if not (unhandled_only and row["handled"])]
    return {
        "window": {"from": _local(window.start), "to": _local(window.end),
                   "label": window.describe()},
        "filters": {key: query[key] for key in MISSED_QUERY if query.get(key)},
        "total": len(rows),
        "handled": sum(1 for row in rows if row["handled"]),
        "states": {state: states.get(state, 0) for state in STATES},
        "rows": shown,
    }  # fmt: skip


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def is_missed(call: Call | None) -> bool:
    return call is not None and call.direction == INBOUND and not call.answered


# -- HTTP --------------------------------------------------------------------------------


async def _board(request: Request) -> dict[str, Any]:
    query = {k: v for k, v in request.query_params.items() if k in MISSED_QUERY}
    settings: Settings = request.app.state.settings_all
    store: HandledStore = request.app.state.handled
    now = request.app.state.now()
    return await run_in_threadpool(board, settings, query, now, store.marks)


@requires(Role.VIEWER)
async def missed_page(request: Request) -> Response:
    try:
        result = await _board(request)
    except PbxgateError as exc:
        return problem(request, exc)
    query = {k: v for k, v in request.query_params.items() if k in MISSED_QUERY}
    return render(request, "missed.html", result=result, query=query, back=urlencode(query),
                  periods=PERIODS, states=STATES, max_comment=MAX_COMMENT)  # fmt: skip


@requires(Role.VIEWER)
async def missed_api(request: Request) -> Response:
    """Missed inbound calls of a window, each with its state and handled mark.

    state: open, rang_no_answer (we rang back, nobody answered), called_back, got_through
    (they called again and were answered) or no_number; action: who did it, when, how long
    after the missed call ended; tries: how many of the window's missed calls came from that
    number; handled: who marked it, when (UTC and local) and the comment, or null."""
    try:
        return JSONResponse(await _board(request))
    except PbxgateError as exc:
        return problem(request, exc)


@requires(Role.VIEWER)
async def mark_handled(request: Request) -> Response:
    """Mark a missed call handled, with an optional comment; audited.

    The body is JSON, ``{"comment": "called the customer, solved"}``, or a form with
    ``comment``; at most 500 characters. Marking again replaces the mark. 404 when the CDR holds
    no missed inbound call by that linkedid."""
    linkedid = request.path_params["linkedid"]
    try:
        fields = await _fields(request)
        comment = check_comment(str(fields.get("comment", "")))
        call = await run_in_threadpool(find_call, request.app.state.settings_all, linkedid)
    except PbxgateError as exc:
        return problem(request, exc)
    if not is_missed(call):
        return _not_found(request, f"call {linkedid!r} is not a missed call in the CDR")
    store: HandledStore = request.app.state.handled
    user = request.state.user.name
    mark = await run_in_threadpool(store.mark, linkedid, user, comment)
    detail = f"{linkedid}: {comment}" if comment else linkedid
    request.app.state.users.audit(user, "missed-handled", detail, client_address(request))
    return _done(request, fields, linkedid, mark)


@requires(Role.VIEWER)
async def unmark_handled(request: Request) -> Response:
    """Take a missed call's handled mark off; audited (404 when it has none)."""
    linkedid = request.path_params["linkedid"]
    try:
        fields = await _fields(request)
    except PbxgateError as exc:
        return problem(request, exc)
    store: HandledStore = request.app.state.handled
    if not await run_in_threadpool(store.unmark, linkedid):
        return _not_found(request, f"call {linkedid!r} has no handled mark")
    user = request.state.user.name
    request.app.state.users.audit(user, "missed-unhandled", linkedid, client_address(request))
    return _done(request, fields, linkedid, None)


async def _fields(request: Request) -> Mapping[str, Any]:
    """The request's fields: a JSON object (API) or a form; at most :data:`MAX_BODY` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await _body(request))
        except (ValueError, RecursionError):  # UnicodeDecodeError; 16 K of "["
            raise InputError("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InputError('the body must be a JSON object, e.g. {"comment": "..."}')
        if not isinstance(body.get("comment", ""), str):
            raise InputError("comment must be a string")
        return body
    return await request.form()


async def _body(request: Request) -> bytes:
    """The body, read only up to :data:`MAX_BODY` bytes (a chunked one has no length)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _too_large()
    return bytes(body)


def _too_large() -> InputError:
    return InputError(f"the body is larger than {MAX_BODY // 1024} KiB: a comment is short")


def _done(
    request: Request, fields: Mapping[str, Any], linkedid: str, mark: Mark | None
) -> Response:
    if is_api(request):
        display = zone(request.app.state.settings_all.get(CdrSettings).timezone)
        return JSONResponse(
            {"linkedid": linkedid, "handled": mark.as_dict(display) if mark else None}
        )
    back = urlencode(
        [(k, v) for k, v in parse_qsl(str(fields.get("back", ""))) if k in MISSED_QUERY]
    )
    return RedirectResponse(f"/missed?{back}#{dom_id('missed', linkedid)}", status_code=303)


def _not_found(request: Request, message: str) -> Response:
    if is_api(request):
        return JSONResponse({"error": message}, status_code=404)
    return Response(message, status_code=404, media_type="text/plain; charset=utf-8")


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def dom_id(prefix: str, linkedid: str) -> str:
    """An HTML id for a row's element: ``missed-1458291573_157155`` (no dots to escape)."""
    return f"{prefix}-{_NOT_ID.sub('_', linkedid)}"


def setup(app: Starlette, settings: Settings) -> None:
    app.state.handled = HandledStore(settings.get(WebSettings).database_path)
    app.state.templates.filters["dom_id"] = dom_id


ROUTES: list[BaseRoute] = [
    Route("/missed", missed_page),
    Route("/api/missed", missed_api),
    Route("/missed/{linkedid}/handled", mark_handled, methods=["POST"]),
    Route("/api/missed/{linkedid}/handled", mark_handled, methods=["POST"]),
    Route("/missed/{linkedid}/unhandled", unmark_handled, methods=["POST"]),
    Route("/api/missed/{linkedid}/unhandled", unmark_handled, methods=["POST"]),
]

__all__ = [
    "MAX_COMMENT",
    "NAV",
    "ROUTES",
    "HandledStore",
    "Mark",
    "board",
    "board_window",
    "check_comment",
    "dom_id",
    "missed_rows",
    "setup",
]
