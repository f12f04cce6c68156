"""``pbxgate cdr report``: the call report a manager reads, on screen, in a file or by mail."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from pbxgate.cdr.report.formats import FORMATS, render
from pbxgate.cdr.report.settings import LANGUAGES, ReportSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import now_in, resolve_window, zone
from pbxgate.cli.context import AppContext, pass_app
from pbxgate.errors import InputError
from pbxgate.private import open_private


@click.command()
@click.option("--yesterday", "period", flag_value="yesterday", help="Yesterday (the default).")
@click.option("--today", "period", flag_value="today", help="Today so far.")
@click.option("--week", "period", flag_value="week", help="The last seven whole days.")
@click.option("--month", "period", flag_value="month", help="The previous calendar month.")
@click.option("--from", "start", metavar="WHEN", help="Start, e.g. 2024-03-01.")
@click.option("--to", "end", metavar="WHEN", help="End (exclusive); a bare date = its end.")
@click.option("--source", help="Source name from [cdr.sources], a URL or an SQLite file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="Output format. Default: text on screen, html by mail.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--language", type=click.Choice(LANGUAGES), help="Default: [report] language.")
@click.option("--top", type=click.IntRange(1), help="Rows of top callers and DIDs.")
@click.option("--mail", metavar="TO[,TO...]", help="E-mail the report via [report.smtp].")
@click.option(
    "--queues/--no-queues",
    default=None,
    help="The Queues section, when [queue] source has queue_log lines for the period "
    "(default: [report] queues, on).",
)
@pass_app
def report(
    app: AppContext,
    period: str | None,
    start: str | None,
    end: str | None,
    source: str | None,
    fmt: str | None,
    output: Path | None,
    language: str | None,
    top: int | None,
    mail: str | None,
    queues: bool | None,
) -> None:
    """Call report: KPIs against the previous period, calls per hour, heat map, top callers
    and DIDs, missed calls and call-backs, extensions, recordings; queues and agents when
    queue_log has lines for the period.

    \b
    Examples:
      pbxgate cdr report                          # yesterday, on screen
      pbxgate cdr report --week --format html -o week.html
      pbxgate cdr report --month --format xlsx -o month.xlsx
      pbxgate cdr report --yesterday --mail boss@example.org,ops@example.org
    """
    from pbxgate.cdr.report.service import mail_report, make_report, options  # noqa: PLC0415

    settings = app.settings
    cdr = settings.get(CdrSettings)
    if period and (start or end):
        raise InputError(f"--{period} cannot be combined with --from/--to")
    now = now_in(zone(cdr.timezone))
    chosen = period or ("" if start or end else "yesterday")
    window = resolve_window(start=start, end=end, period=chosen or None, now=now)
    opts = options(
        settings,
        period=chosen,
        language=language or "",
        source=source or "",
        top=top,
        queues=queues,
    )
    data = make_report(settings, window, opts, now)
    if mail:
        to = [a.strip() for a in mail.split(",") if a.strip()]
        if not to or any("@" not in a for a in to):
            raise InputError(f"--mail {mail!r} is not a list of addresses")
        mail_report(settings, data, to, fmt or "html")
        click.echo(f"report {data['period']['label']} sent to {', '.join(to)}", err=True)
        if output is None:
            return
    body = render(data, fmt or "text", max_rows=settings.get(ReportSettings).max_rows)
    if output is not None:
        with os.fdopen(open_private(output), "wb") as fh:  # numbers and names: the owner's
            fh.write(body)
        click.echo(f"wrote {output}", err=True)
    elif fmt == "xlsx" and sys.stdout.isatty():
        raise InputError("an XLSX report is binary", hint="give --output FILE.xlsx")
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()


__all__ = ["report"]
