"""One entry point from a report dict to the bytes of a format."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pbxgate.cdr.window import file_stem

FORMATS = ("text", "html", "xlsx", "csv", "json")
SUFFIX = {"text": "txt", "html": "html", "xlsx": "xlsx", "csv": "csv", "json": "json"}
MIME = {
    "text": ("text", "plain"),
    "html": ("text", "html"),
    "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "csv": ("text", "csv"),
    "json": ("application", "json"),
}


def render(report: dict[str, Any], fmt: str, *, max_rows: int = 100) -> bytes:
    """The report in ``fmt`` as bytes (UTF-8 for the text formats)."""
    if fmt == "text":
        from pbxgate.cdr.report.text import render_text  # noqa: PLC0415

        return render_text(report, max_rows=max_rows).encode()
    if fmt == "html":
        from pbxgate.cdr.report.html import render_html_file  # noqa: PLC0415

        return render_html_file(report, max_rows=max_rows).encode()
    if fmt == "xlsx":
        from pbxgate.cdr.report.xlsx import render_xlsx  # noqa: PLC0415

        return render_xlsx(report)
    if fmt == "csv":
        from pbxgate.cdr.report.tabular import render_csv  # noqa: PLC0415

        return render_csv(report).encode()
    if fmt == "json":
        from pbxgate.cdr.report.tabular import render_json  # noqa: PLC0415

        return render_json(report).encode()
    raise ValueError(f"unknown report format {fmt!r}")


def file_name(report: dict[str, Any], fmt: str) -> str:
    """``calls-2016-03-18.html``, ``calls-2024-03-01..2024-03-31.xlsx``: the last day included,
    as the report's label says it, and named as the Calls page's export of the same window
    (:func:`pbxgate.cdr.window.file_stem`)."""
    period = report["period"]
    start = datetime.fromisoformat(period["from"])
    end = datetime.fromisoformat(period["to"])
    return f"{file_stem(start, end)}.{SUFFIX[fmt]}"


__all__ = ["FORMATS", "MIME", "SUFFIX", "file_name", "render"]
