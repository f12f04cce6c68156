"""What the console's pages show, as plain dicts: each page's HTML and its ``/api/`` twin are
rendered from the same dict (datasette's habit). Nothing here knows about HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import now_in, resolve_window, zone
from pbxgate.config import Settings
from pbxgate.errors import InputError

PER_PAGE = 50
MAX_PER_PAGE = 500
DIRECTIONS = ("inbound", "outbound", "internal")
NUMBER_FIELDS = ("src", "dst", "did")
# The query-string keys of the Calls page: the filter is the URL, so a view can be shared.
CALL_QUERY = ("period", "from", "to", "direction", *NUMBER_FIELDS, "outcome", "page", "per_page")


def local_now(settings: Settings) -> datetime:
    return now_in(zone(settings.get(CdrSettings).timezone))


def today(settings: Settings, now: datetime, language: str) -> dict[str, Any]:
    """Today so far against yesterday: the report's KPIs, calls per hour by outcome, the busy
    hour, peak concurrency and the missed calls with their call-back state."""
    from pbxgate.cdr.report.service import make_report, options  # noqa: PLC0415

    window = resolve_window(period="today", now=now)
    opts = options(settings, period="today", language=language, queues=False)
    return make_report(settings, window, opts, now)


def calls(settings: Settings, query: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """One page of calls for the filters in ``query`` (the Calls page's query string), newest
    first with a stable order, and how many there are in all."""
    from pbxgate.cdr import api  # noqa: PLC0415
    from pbxgate.cdr.numbers import InternalRule  # noqa: PLC0415
    from pbxgate.cdr.query import Filters, NumberFilter  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    cdr = settings.get(CdrSettings)
    period = query.get("period") or None
    start, end = query.get("from") or None, query.get("to") or None
    if period not in (None, "today", "yesterday", "week", "month"):
        raise InputError(f"unknown period {period!r}")
    window = resolve_window(start=start, end=end, period=None if start or end else period, now=now)
    direction = query.get("direction") or None
    if direction is not None and direction not in DIRECTIONS:
        raise InputError(f"unknown direction {direction!r}")
    numbers = tuple(NumberFilter(f, query[f]) for f in NUMBER_FIELDS if query.get(f))
    filters = Filters(direction=direction, numbers=numbers, rule=InternalRule.from_settings(cdr))
    source = open_source(cdr)
    try:
        found = api.list_calls(source, window, filters)
    finally:
        source.close()
    outcome = query.get("outcome") or ""
    rows = [api.call_row(call) for call in found if not outcome or call.outcome == outcome]
    rows.sort(key=lambda row: (row["start"], row["linkedid"]), reverse=True)
    per_page = _number(query.get("per_page"), PER_PAGE, 1, MAX_PER_PAGE, "per_page")
    pages = max(1, -(-len(rows) // per_page))
    page = _number(query.get("page"), 1, 1, pages, "page")
    shown = rows[(page - 1) * per_page : page * per_page]
    return {
        "window": {"from": _iso(window.start), "to": _iso(window.end), "label": window.describe()},
        "filters": {key: query[key] for key in CALL_QUERY if query.get(key)},
        "total": len(rows),
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "rows": [_jsonable(row) for row in shown],
    }


def _number(text: str | None, default: int, low: int, high: int, name: str) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{name} must be a number, not {text!r}") from None
    return min(max(value, low), high)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


__all__ = ["CALL_QUERY", "calls", "local_now", "today"]
