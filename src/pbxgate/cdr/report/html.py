"""The report as one self-contained HTML page (Jinja2): no scripts, no external assets.

The same template serves the file (charts as ``data:`` URIs, opens offline) and the e-mail
(charts as ``cid:`` references to inline parts, which mail clients show while many of them
block ``data:`` images).
"""

from __future__ import annotations

import base64
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from pbxgate.cdr.report.i18n import duration, label, moment, number, paused_reasons
from pbxgate.cdr.report.text import kpi_change, kpi_value, queue_rows

_ENV = Environment(
    loader=PackageLoader("pbxgate.cdr.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def data_uris(charts: dict[str, bytes]) -> dict[str, str]:
    return {
        name: "data:image/png;base64," + base64.b64encode(png).decode()
        for name, png in charts.items()
    }


def render_html(report: dict[str, Any], images: dict[str, str], *, max_rows: int = 100) -> str:
    """The page; ``images`` maps chart names to their ``src`` (data URI or ``cid:``)."""
    lang = report["language"]
    template = _ENV.get_template("report.html.j2")
    return template.render(
        r=report,
        lang=lang,
        images=images,
        max_rows=max_rows,
        t=lambda key: label(lang, key),
        kpi_value=kpi_value,
        kpi_change=kpi_change,
        duration=duration,
        number=number,
        moment=moment,
        percent=lambda v: "–" if v is None else f"{v:.1f}",
        paused_reasons=paused_reasons,
        queue_rows=lambda section: queue_rows(section, lambda key: label(lang, key)),
    )


def render_html_file(report: dict[str, Any], *, max_rows: int = 100) -> str:
    """The page with its charts embedded: what ``--format html`` writes."""
    from pbxgate.cdr.report.charts import render_charts  # noqa: PLC0415 - matplotlib

    return render_html(report, data_uris(render_charts(report)), max_rows=max_rows)


__all__ = ["data_uris", "render_html", "render_html_file"]
