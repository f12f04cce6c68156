"""The report as JSON (the dict itself) and CSV (one block per table): pure dict -> str.

CSV has one table per file by nature; a report has several. Each block starts with a line
``# <section>``, then a header row, then the rows, and blocks are separated by an empty line:
spreadsheet programs open it as is and a script splits it on the ``#`` lines.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from pbxgate.cdr.report.i18n import WEEKDAYS, paused_reasons


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """``(name, header, rows)`` of every table in the report; shared by CSV and XLSX."""
    out: list[tuple[str, list[str], list[list[Any]]]] = []
    period = report["period"]
    out.append(
        (
            "period",
            ["from", "to", "previous_from", "previous_to", "source"],
            [
                [
                    period["from"],
                    period["to"],
                    report["previous"]["from"],
                    report["previous"]["to"],
                    report["source"],
                ]
            ],
        )
    )
    out.append(
        _dicts("kpis", report["kpis"], ["key", "unit", "value", "previous", "delta", "change_pct"])
    )
    out.append(_dicts("hourly", report["hourly"], None))
    if report["daily"]:
        out.append(_dicts("daily", report["daily"], None))
    if report["heatmap"]:
        days = WEEKDAYS["en"]
        out.append(
            (
                "heatmap",
                ["weekday", *(f"{h:02d}" for h in range(24))],
                [[days[d], *row] for d, row in enumerate(report["heatmap"])],
            )
        )
    for name in ("top_callers", "top_dids", "missed", "extensions"):
        out.append(_dicts(name, report[name], None))
    if report.get("queues"):
        out.extend(_queue_sections(report["queues"]))
    out.append(_dicts("recordings", report["recordings"], None))
    return out


def _queue_sections(section: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """Per queue (then all of them), per agent (pauses by reason as ``lunch 30:00, ...``), per
    hour of the day."""
    total = [section["total"]] if section["total"] else []
    agents = [{**a, "paused": paused_reasons(a["paused"])} for a in section["agents"]]
    return [
        _dicts("queues", section["by_queue"] + total, None),
        _dicts("queue_agents", agents, None),
        _dicts("queue_hourly", section["hourly"], None),
    ]


def _dicts(
    name: str, rows: list[dict[str, Any]], columns: list[str] | None
) -> tuple[str, list[str], list[list[Any]]]:
    header = columns or (list(rows[0]) if rows else [])
    return name, header, [[row.get(c) for c in header] for row in rows]


# Characters XML 1.0 forbids (an XLSX cell cannot hold them); a caller name may carry them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# What a spreadsheet takes for the start of a formula in a cell it opens.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_LIKE = re.compile(r"[+-]?[\d\s().-]*")  # +79161234567, -5: data, not a formula


def cell_text(value: str) -> str:
    """A text value as a report's file holds it: without the characters XML forbids."""
    return _NOT_XML.sub("", value)


def inert(value: str) -> str:
    """A caller's text (a caller ID name is the caller's to choose) that a spreadsheet will
    not run as a formula (``=HYPERLINK(...)``): a leading ``'``, as OWASP advises for CSV;
    a number (``+79161234567``) stays as it is."""
    value = cell_text(value)
    if value.startswith(_FORMULA_START) and not _NUMBER_LIKE.fullmatch(value):
        return "'" + value
    return value


def render_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for i, (name, header, rows) in enumerate(sections(report)):
        if i:
            buf.write("\n")
        buf.write(f"# {name}\n")
        if header:
            writer.writerow(header)
        for row in rows:
            writer.writerow(
                ["" if v is None else inert(v) if isinstance(v, str) else v for v in row]
            )
    return buf.getvalue()


__all__ = ["cell_text", "inert", "render_csv", "render_json", "sections"]
