"""Make a report from settings and deliver it: what the CLI and the scheduler share."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.report.build import ReportOptions, build_report
from pbxgate.cdr.report.formats import MIME, file_name, render
from pbxgate.cdr.report.settings import ReportSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.source import open_source
from pbxgate.cdr.window import Window
from pbxgate.config import Settings


def options(
    settings: Settings,
    *,
    period: str = "",
    language: str = "",
    source: str = "",
    top: int | None = None,
    queues: bool | None = None,
) -> ReportOptions:
    cdr = settings.get(CdrSettings)
    rep = settings.get(ReportSettings)
    return ReportOptions(
        period=period,
        language=language or rep.language,
        top=top or rep.top,
        callback_hours=rep.callback_hours,
        monitor_dir=cdr.monitor_dir,
        recordings_url=rep.recordings_url,
        source=source or cdr.default_source,
        queues=rep.queues if queues is None else queues,
    )


def make_report(
    settings: Settings, window: Window, opts: ReportOptions, now: datetime
) -> dict[str, Any]:
    """Open the source named in ``opts``, build the report, close the source; then the Queues
    section, when ``opts.queues`` and the queue source has lines for ``window``."""
    cdr = settings.get(CdrSettings)
    source = open_source(cdr, opts.source or None)
    try:
        report = build_report(source, window, InternalRule.from_settings(cdr), opts, now)
    finally:
        source.close()
    if opts.queues:
        from pbxgate.cdr.report.queues import queue_report  # noqa: PLC0415

        section = queue_report(settings, window, now)
        if section is not None:
            report["queues"] = section
    return report


def mail_report(
    settings: Settings,
    report: dict[str, Any],
    to: list[str],
    fmt: str = "html",
    *,
    message_id: str | None = None,
) -> None:
    """Send ``report`` to ``to``: HTML with charts (text only for ``text``); xlsx, csv and
    json are attached as a file as well."""
    from pbxgate.cdr.report.mail import build_message, send  # noqa: PLC0415

    rep = settings.get(ReportSettings)
    attachment = None
    if fmt in ("xlsx", "csv", "json"):
        mime = "/".join(MIME[fmt])
        attachment = (file_name(report, fmt), mime, render(report, fmt, max_rows=rep.max_rows))
    msg = build_message(
        report,
        sender=rep.smtp.sender,
        to=to,
        attachment=attachment,
        max_rows=rep.max_rows,
        message_id=message_id,
        html=fmt != "text",
    )
    send(msg, rep.smtp)


__all__ = ["mail_report", "make_report", "options"]
