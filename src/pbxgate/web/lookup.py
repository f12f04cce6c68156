"""One call from the CDR by its linkedid, for pages that name a call in their URL.

Two queries: the first and last start time of the call's legs (``WHERE linkedid = :id``, an
index look-up where the table has the recommended index, cdr.md §7), then the legs of that span
through the usual window query, grouped into calls as everywhere else, so the call a page shows
is the call the Calls page and the reports count. The URL never carries anything but the id:
what a page does with the call (a recording's file) comes from the CDR row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import bindparam, column, func, select, table

from pbxgate.cdr.model import Call
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import Filters, _as_datetime, fetch_calls
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.source import Source, open_source
from pbxgate.cdr.window import Window
from pbxgate.config import Settings

# Asterisk's AST_MAX_UNIQUEID (channel.h) is 150: nothing longer is a linkedid.
MAX_LINKEDID = 150


def plausible_linkedid(text: str) -> bool:
    """Whether ``text`` could be a linkedid at all (printable, no slashes, not too long)."""
    return 0 < len(text) <= MAX_LINKEDID and text.isprintable() and not set(text) & {"/", "\\"}


def find_call(settings: Settings, linkedid: str) -> Call | None:
    """The call whose legs share ``linkedid`` (uniqueid on old tables), or None."""
    if not plausible_linkedid(linkedid):
        return None
    cdr = settings.get(CdrSettings)
    source = open_source(cdr)
    try:
        span = _span(source, linkedid)
        if span is None:
            return None
        first, last = span
        window = Window(first, last + timedelta(seconds=1))
        calls = fetch_calls(source, window, Filters(rule=InternalRule.from_settings(cdr)))
    finally:
        source.close()
    return next((call for call in calls if call.key == linkedid), None)


def _span(source: Source, linkedid: str) -> tuple[datetime, datetime] | None:
    """When the call's first and last legs started (display time), or None."""
    layout = source.layout
    key = layout.group_column
    if not layout.has(key):
        return None
    tbl = table(layout.table, column(layout.time_column), column(key))
    when = tbl.c[layout.time_column]
    stmt = select(func.min(when), func.max(when)).where(tbl.c[key] == bindparam("id"))
    rows = list(source.stream(stmt, {"id": linkedid}))
    if not rows:
        return None
    first, last = (_as_datetime(value) for value in rows[0])
    if first is None or last is None:
        return None
    zones = source.zones
    return zones.to_display(first), zones.to_display(last)


__all__ = ["MAX_LINKEDID", "find_call", "plausible_linkedid"]
