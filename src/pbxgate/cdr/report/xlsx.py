"""The report as an XLSX workbook (openpyxl): one sheet per table, a native chart per period.

Sheets carry the same tables as the CSV blocks (:func:`~pbxgate.cdr.report.tabular.sections`)
with headers in the report's language, so a manager can filter and sort them; the hourly sheet
(and the queue_hourly sheet of a report with queues) has an Excel bar chart (stacked by outcome)
that recalculates if the numbers are edited.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from pbxgate.cdr.report.build import OUTCOMES, QUEUE_OUTCOMES
from pbxgate.cdr.report.i18n import label
from pbxgate.cdr.report.tabular import cell_text, sections
from pbxgate.optional import need

# Sheet titles: at most 31 characters, no []:*?/\ (Excel's rules).
SHEETS = {
    "period": "period",
    "kpis": "kpis",
    "hourly": "hourly",
    "daily": "daily",
    "heatmap": "heatmap",
    "top_callers": "top_callers",
    "top_dids": "top_dids",
    "missed": "missed",
    "extensions": "extensions",
    "queues": "queues",
    "queue_agents": "queue_agents",
    "queue_hourly": "queue_hourly",
    "recordings": "recordings",
}
# Column headers that have a word of their own in the report's language.
_HEADER_WORDS = {
    "key": "kpi",
    "value": "value",
    "previous": "prev_value",
    "delta": "change",
    "hour": "hour",
    "answered": "answered",
    "no_answer": "no_answer",
    "busy": "busy",
    "failed": "failed",
    "total": "total",
    "number": "number",
    "name": "name",
    "calls": "calls",
    "missed": "no_answer",
    "talk_seconds": "talk",
    "did": "did",
    "start": "start",
    "src": "caller",
    "dst": "dst",
    "outcome": "outcome",
    "ring": "ring",
    "resolution": "resolution",
    "by": "by",
    "attempts": "attempts",
    "extension": "extension",
    "file": "file",
    "weekday": "weekday",
    # the Queues sheets
    "queue": "queue",
    "offered": "offered",
    "abandoned": "abandoned",
    "short_abandoned": "short_abandoned",
    "timed_out": "timed_out",
    "other_exits": "other_exits",
    "other": "other_exits",
    "in_queue": "in_queue",
    "target_seconds": "sl_target",
    "service_level_pct": "service_level",
    "wait_avg": "wait_avg",
    "wait_p90": "wait_p90",
    "wait_max": "wait_max",
    "talk_avg": "talk_avg",
    "agent": "agent",
    "taken": "taken",
    "rang_unanswered": "rang_unanswered",
    "talk": "talk",
    "logged_in": "logged_in",
    "paused_total": "paused",
    "paused": "paused_reasons",
    "occupancy_pct": "occupancy",
}
# Native charts: sheet -> (the stacked columns, the chart's title word).
_CHARTS = {
    "hourly": (OUTCOMES, "hourly"),
    "queue_hourly": (QUEUE_OUTCOMES, "queue_hourly"),
}


def render_xlsx(report: dict[str, Any]) -> bytes:
    """The workbook, written row by row (openpyxl's write-only mode: a month of missed calls
    and recordings is 100,000+ rows, twice as fast and a fraction of the memory)."""
    need("openpyxl", "an XLSX report")
    from openpyxl import Workbook  # type: ignore[import-untyped]  # noqa: PLC0415
    from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]  # noqa: PLC0415
    from openpyxl.styles import Font  # type: ignore[import-untyped]  # noqa: PLC0415

    lang = report["language"]
    book = Workbook(write_only=True)
    stamp = datetime.fromisoformat(report["generated"])
    book.properties.created = stamp
    book.properties.modified = stamp
    book.properties.title = f"{label(lang, 'title')}: {report['period']['label']}"
    bold = Font(bold=True)
    for name, header, rows in sections(report):
        sheet = book.create_sheet(SHEETS[name])
        sheet.freeze_panes = "A2"
        _widths(sheet, header, rows)
        titles = []
        for text in (_header(lang, h) for h in header):
            cell = WriteOnlyCell(sheet, value=text)
            cell.font = bold
            titles.append(cell)
        sheet.append(titles)
        for row in rows:
            sheet.append([_cell(sheet, v, WriteOnlyCell) for v in row])
        if name in _CHARTS and rows:
            keys, title = _CHARTS[name]
            _stacked_chart(sheet, header, len(rows), keys, label(lang, title), lang)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _cell(sheet: Any, value: Any, make: Any) -> Any:
    """A value as its cell: text always as text (openpyxl takes a string that starts with
    ``=`` for a formula, and a caller ID name is the caller's to choose), without the
    characters XML forbids (they failed the whole file)."""
    if not isinstance(value, str):
        return value
    value = cell_text(value)
    if not value.startswith("="):
        return value
    cell = make(sheet, value=value)
    cell.data_type = "s"
    return cell


def _header(lang: str, key: str) -> str:
    word = _HEADER_WORDS.get(key)
    return label(lang, word) if word else key


def _widths(sheet: Any, header: list[str], rows: list[list[Any]]) -> None:
    from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]  # noqa: PLC0415

    for i, name in enumerate(header, start=1):
        longest = max([len(str(name)), *(len(str(r[i - 1] or "")) for r in rows[:500])])
        sheet.column_dimensions[get_column_letter(i)].width = min(60, max(6, longest + 2))


def _stacked_chart(
    sheet: Any, header: list[str], count: int, keys: tuple[str, ...], title: str, lang: str
) -> None:
    """An Excel column chart of the adjacent columns ``keys``, stacked, per row (hour)."""
    from openpyxl.chart import BarChart, Reference  # type: ignore[import-untyped]  # noqa: PLC0415

    chart = BarChart()
    chart.type = "col"
    chart.grouping = "stacked"
    chart.overlap = 100
    chart.title = title
    chart.x_axis.title = label(lang, "hour_axis")
    chart.y_axis.title = label(lang, "calls_axis")
    first = header.index(keys[0]) + 1
    data = Reference(
        sheet, min_col=first, max_col=first + len(keys) - 1, min_row=1, max_row=count + 1
    )
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(Reference(sheet, min_col=1, min_row=2, max_row=count + 1))
    chart.width, chart.height = 22, 9
    sheet.add_chart(chart, "H2")


__all__ = ["render_xlsx"]
