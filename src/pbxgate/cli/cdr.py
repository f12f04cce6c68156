"""``pbxgate cdr``: call history analytics over any Asterisk CDR store."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pbxgate.cdr.kpi import BREAKDOWNS
from pbxgate.cdr.model import ANSWERED, BUSY, CANCEL, CONGESTION, FAILED, NO_ANSWER, Leg
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.render import FORMATS, render
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cdr.window import Window, Zones, now_in, resolve_window, zone
from pbxgate.cli.context import AppContext, pass_app
from pbxgate.errors import ConfigError, InputError
from pbxgate.private import private_dir

# SQLAlchemy and what builds on it load when a command runs, not for --help (start-up time).
if TYPE_CHECKING:
    from pbxgate.cdr.csvimport import ImportResult
    from pbxgate.cdr.query import Filters
    from pbxgate.cdr.source import Source

EXIT_REJECTED = 6  # import finished, but some rows were rejected (see the reject file)


@click.group()
def cdr() -> None:
    """Query and import Asterisk call detail records (CDR).

    \b
    Examples:
      pbxgate cdr calls --today --inbound
      pbxgate cdr stats --yesterday --by hour
      pbxgate cdr import /var/log/asterisk/cdr-csv/Master.csv
    """


def _settings(app: AppContext) -> CdrSettings:
    return app.settings.get(CdrSettings)


@contextmanager
def _source(app: AppContext, name: str | None) -> Iterator[Source]:
    from pbxgate.cdr.source import open_source  # noqa: PLC0415

    source = open_source(_settings(app), name)
    try:
        yield source
    finally:
        source.close()


def window_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--from/--to/--today/--yesterday/--days/--source, shared by the query commands."""
    opts = [
        click.option("--source", help="Source name from [cdr.sources], a URL or an SQLite file."),
        click.option(
            "--days",
            type=click.IntRange(1, 3660),
            metavar="N",
            help="The last N days, today included.",
        ),
        click.option("--yesterday", is_flag=True, help="Yesterday."),
        click.option("--today", is_flag=True, help="Today (the default)."),
        click.option("--to", "end", metavar="WHEN", help="End (exclusive); a bare date = its end."),
        click.option("--from", "start", metavar="WHEN", help="Start, e.g. '2016-03-18 12:00'."),
    ]
    for opt in opts:
        func = opt(func)
    return func


def number_options(func: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--accountcode", help="Only this accountcode."),
        click.option("--cnum", help="Caller ID number filter (same forms as --src)."),
        click.option("--did", help="DID filter (same forms as --src)."),
        click.option("--dst", help="Destination filter (same forms as --src)."),
        click.option("--src", help="Caller filter: 8499 exact, '8499*' prefix, '*111*' contains."),
    ]
    for opt in opts:
        func = opt(func)
    return func


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    opts: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        click.option("--min-billsec", type=click.IntRange(0), help="Talk time at least N s."),
        click.option(
            "--disposition",
            multiple=True,
            help=f"Outcome ({ANSWERED}, '{NO_ANSWER}', {BUSY}, {FAILED}...); repeatable.",
        ),
        number_options,
        click.option("--internal", is_flag=True, help="Internal calls."),
        click.option("--outbound", is_flag=True, help="Calls out."),
        click.option("--inbound", is_flag=True, help="Calls from outside."),
    ]
    for opt in opts:
        func = opt(func)
    return func


def _one_of(opts: dict[str, Any], names: tuple[str, ...]) -> str | None:
    """The one flag of ``names`` that was given (popped from ``opts``), or None."""
    given = [name for name in names if opts.pop(name, False)]
    if len(given) > 1:
        raise InputError(f"--{given[0]} and --{given[1]} cannot be combined")
    return given[0] if given else None


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True
    )(func)


def _window(settings: CdrSettings, opts: dict[str, Any]) -> Window:
    start, end, days = opts.pop("start"), opts.pop("end"), opts.pop("days", None)
    period = _one_of(opts, ("today", "yesterday"))
    if period and (start or end):
        raise InputError(f"--{period} cannot be combined with --from/--to")
    if days is not None and (period or start or end):
        raise InputError(f"--days cannot be combined with --{period or 'from/--to'}")
    now = now_in(zone(settings.timezone))
    return resolve_window(start=start, end=end, period=period, days=days, now=now)


_DISPOSITIONS = (ANSWERED, NO_ANSWER, BUSY, FAILED, CONGESTION, CANCEL)  # ast_cdr_disp2str


def _disposition(text: str) -> str:
    """An outcome as Asterisk writes it; ``no-answer`` and ``NO_ANSWER`` mean ``NO ANSWER``."""
    value = " ".join(text.upper().replace("_", " ").replace("-", " ").split())
    if value not in _DISPOSITIONS:
        known = ", ".join(_DISPOSITIONS)
        raise InputError(f"unknown disposition {text!r}: Asterisk writes one of {known}")
    return value


def _filters(settings: CdrSettings, opts: dict[str, Any]) -> Filters:
    from pbxgate.cdr.query import Filters, NumberFilter  # noqa: PLC0415

    numbers = tuple(
        NumberFilter(col, opts[col]) for col in ("src", "dst", "did", "cnum") if opts.get(col)
    )
    return Filters(
        direction=_one_of(opts, ("inbound", "outbound", "internal")),
        numbers=numbers,
        dispositions=tuple(_disposition(d) for d in opts.get("disposition") or ()),
        min_billsec=opts.get("min_billsec"),
        accountcode=opts.get("accountcode"),
        rule=InternalRule.from_settings(settings),
    )


def _emit(
    rows: list[dict[str, Any]], columns: list[str], fmt: str, window: Window | None = None
) -> None:
    for line in render(rows, columns, fmt):
        click.echo(line)
    if not rows and window is not None and fmt == "table":
        click.echo(f"no calls in {window.describe()}", err=True)


@cdr.command()
@window_options
@filter_options
@format_option
@click.option("--legs", is_flag=True, help="Show raw CDR rows instead of one row per call.")
@click.option("--columns", help="Comma-separated columns (see --legs --columns all).")
@click.option("--recordings", is_flag=True, help="Resolve recordings under [cdr] monitor_dir.")
@pass_app
def calls(
    app: AppContext, /, legs: bool, columns: str | None, recordings: bool, fmt: str, **opts: Any
) -> None:
    """List calls in a time window, one row per call (legs grouped by linkedid).

    \b
    Example, the article's query (inbound external calls, 18 March 2016, 12:00-12:10):
      pbxgate cdr calls --from '2016-03-18 12:00' --to '2016-03-18 12:10' --inbound \\
          --legs --columns dst,src,duration,calldate,recordingfile
    """
    from pbxgate.cdr import api  # noqa: PLC0415

    settings = _settings(app)
    window = _window(settings, opts)
    filters = _filters(settings, opts)
    with _source(app, opts.get("source")) as source:
        if legs:
            chosen = _columns(columns, api.LEG_DEFAULT_COLUMNS, api.LEG_ALL_COLUMNS)
            found = api.list_legs(source, window, filters, chosen)
            rows = [api.leg_row(leg) for leg in found]
            default = known = chosen
        else:
            monitor = settings.monitor_dir if recordings else None
            rows = [api.call_row(c, monitor) for c in api.list_calls(source, window, filters)]
            default = api.CALL_COLUMNS + (
                ["recording_path", "recording_exists"] if recordings else []
            )
            known = [*default, "answered_via", "talked", "answered_at", "linkedid"]
    _emit(rows, _columns(columns, default, known), fmt, window)


def _columns(spec: str | None, default: list[str], known: list[str]) -> list[str]:
    if not spec:
        return default
    if spec == "all":
        return known
    chosen = [c.strip() for c in spec.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in known]
    if unknown:
        raise InputError(f"unknown column {unknown[0]!r}", hint=f"known: {', '.join(known)}")
    return chosen


@cdr.command()
@window_options
@number_options
@format_option
@click.option("--within", type=click.IntRange(1), default=24, show_default=True,
              help="Hours after the window to look for a call-back.")  # fmt: skip
@pass_app
def missed(app: AppContext, /, within: int, fmt: str, **opts: Any) -> None:
    """Inbound calls nobody answered, and whether the caller was called back or got through.

    resolution: "called back" (an answered call out to the number), "got through" (an answered
    call in from it) or "not yet"; after: how long after the missed call ended (h:mm:ss); by: the
    extension that called back or answered; attempts: unanswered call-backs before that.

    \b
    Example:
      pbxgate cdr missed --yesterday --did 74951234567
    """
    from pbxgate.cdr import api  # noqa: PLC0415

    settings = _settings(app)
    window = _window(settings, opts)
    filters = _filters(settings, opts)
    now = now_in(zone(settings.timezone))
    with _source(app, opts.get("source")) as source:
        result = api.missed(source, window, filters, within=timedelta(hours=within), now=now)
    _emit(result.rows, api.MISSED_COLUMNS, fmt, window)


STAT_LABELS = [
    ("calls", "Calls"),
    ("answered", "Answered"),
    ("missed", "Missed (inbound)"),
    ("asr", "ASR, %"),
    ("ner", "NER, %"),
    ("acd", "ACD, s"),
    ("talk_seconds", "Talk time, s"),
    ("busy_hour", "Busy hour"),
    ("busy_hour_calls", "Calls in busy hour"),
    ("peak_concurrent", "Peak concurrent calls"),
    ("peak_at", "Peak at"),
]


@cdr.command()
@window_options
@filter_options
@format_option
@click.option("--by", type=click.Choice(BREAKDOWNS), help="Break the KPIs down.")
@pass_app
def stats(app: AppContext, /, by: str | None, fmt: str, **opts: Any) -> None:
    """Calls, answered, missed, ASR, NER, ACD, talk time, busy hour, peak concurrent calls.

    \b
    Examples:
      pbxgate cdr stats --today
      pbxgate cdr stats --days 7 --by day
      pbxgate cdr stats --from 2026-11-01 --to 2026-11-30 --inbound --by did
    """
    from pbxgate.cdr import api  # noqa: PLC0415

    settings = _settings(app)
    window = _window(settings, opts)
    filters = _filters(settings, opts)
    with _source(app, opts.get("source")) as source:
        result = api.stats(source, window, filters, by)
    data = result.as_dict()
    if fmt in ("json", "ndjson"):
        import json  # noqa: PLC0415

        click.echo(json.dumps(data, ensure_ascii=False, indent=None if fmt == "ndjson" else 2))
        return
    if by:
        cols = ["key", "calls", "answered", "missed", "asr", "ner", "acd", "talk_seconds",
                "peak_concurrent"]  # fmt: skip
        _emit(data["groups"], cols, fmt)
        return
    totals = data["totals"]
    rows = [{"kpi": label, "value": totals[key]} for key, label in STAT_LABELS]
    if fmt == "table":
        click.echo(
            f"Calls {window.describe()} ({source.spec.name}; one call = legs grouped by linkedid)"
        )
    _emit(rows, ["kpi", "value"], fmt)
    if fmt == "table" and not totals["calls"]:  # early in the day, a weekend, a wrong source
        wider = " (--days 7: the last seven days)" if window.days <= 1 else ""
        click.echo(f"no calls in {window.describe()}{wider}", err=True)


@cdr.command(name="import")
@click.argument(
    "csv_files",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Append rejected rows to this file (default: rejects/FILE.rejects beside "
                   "the local store, holding the last run's rejects).")  # fmt: skip
@click.option("--gmt", is_flag=True, help="Timestamps are UTC (cdr.conf usegmtime=yes).")
@click.option("--follow", is_flag=True, help="Keep importing as Asterisk appends (Ctrl-C stops).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="--follow poll, s.")
@click.option("--full", is_flag=True,
              help="Read the whole file even where an earlier import of it ended.")  # fmt: skip
@pass_app
def import_(
    app: AppContext,
    csv_files: tuple[Path, ...],
    rejects: Path | None,
    gmt: bool,
    follow: bool,
    interval: float,
    full: bool,
) -> None:
    """Import Asterisk's Master.csv into pbxgate's local store (idempotent).

    Several files may be given, rotated and gzip-compressed ones too (Master.csv.1.gz); a row
    that is in two of them is imported once. Broken rows are reported with their line number
    and reason, written to the reject file (default: rejects/FILE.rejects beside the local
    store; it holds the last run's rejects), and make the exit status 6. A file with no
    importable row at all is refused (status 2). A file imported before that has only grown
    since (Master.csv is append-only) is read from where that import ended, and so is a file
    that starts with one imported before (a copy; Master.csv.1 after rotation) (--full: all of
    it).

    \b
    Examples:
      pbxgate cdr import /var/log/asterisk/cdr-csv/Master.csv --gmt
      pbxgate cdr import /var/log/asterisk/cdr-csv/Master.csv*
    """
    from pbxgate.cdr.csvimport import follow_csv, import_csv  # noqa: PLC0415
    from pbxgate.cdr.store import Store  # noqa: PLC0415

    if follow and len(csv_files) > 1:
        raise click.UsageError("--follow follows one file")
    settings = _settings(app)
    display = zone(settings.timezone)
    zones = Zones(source=zone("UTC") if gmt else display, display=display)
    store = Store.open_sqlite(settings.store_path())
    rejected = rows = 0
    resumed = False
    for csv_file in csv_files:
        reject_file = (
            rejects or settings.store_path().parent / "rejects" / f"{csv_file.name}.rejects"
        )
        private_dir(reject_file.parent)
        if rejects is None:
            reject_file.unlink(missing_ok=True)  # the default file tells about this run only
        with file_progress(csv_file) as (progress, note):
            result = import_csv(
                csv_file,
                store,
                zones,
                reject_file=reject_file,
                progress=progress,
                note=note,
                complete_only=follow,
                max_consecutive_rejects=settings.import_max_consecutive_rejects,
                resume=not (follow or full),
            )
        if result.refused:  # a resumed file's earlier rows were imported: it is one
            first = result.rejects[0]
            raise InputError(
                f"{csv_file} does not look like Asterisk's Master.csv: line {first.line}: "
                f"{first.reason}",
                hint=f"all {result.rows} rows were refused; they are in {reject_file}",
            )
        _report_import(result, reject_file, csv_file if len(csv_files) > 1 else None)
        rejected += result.rejected
        rows += result.rows
        resumed = resumed or bool(result.resumed_after)
        if result.resumed_after:
            same = result.resumed_from == str(csv_file.resolve())
            source = "" if same else f", from {result.resumed_from}, which they are the start of"
            click.echo(
                f"{csv_file}: read from line {result.resumed_after + 1} on (the lines before "
                f"were imported earlier{source}; --full reads them again)",
                err=True,
            )
    if not rows and not follow and not resumed:  # following a fresh, empty file is normal
        names = ", ".join(str(f) for f in csv_files)
        raise InputError(f"no CDR rows in {names}: the file is empty")
    if follow:
        (csv_file,) = csv_files
        click.echo(f"following {csv_file} (Ctrl-C stops)", err=True)

        def wait() -> bool:
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                return False
            return True

        follow_csv(
            csv_file,
            store,
            zones,
            offset=result.bytes_read,
            wait=wait,
            on_batch=lambda more: _report_import(more, reject_file),
            reject_file=reject_file,
        )
    if rejected:
        raise click.exceptions.Exit(EXIT_REJECTED)


def _days_progress(legs: Iterator[Leg], first: date, last: date) -> Iterator[Leg]:
    """Pass ``legs`` through, moving a progress bar day by day."""
    bar: Any
    with click.progressbar(
        length=(last - first).days + 1, label="Generating", file=sys.stderr
    ) as bar:
        day = first
        for leg in legs:
            if leg.start.date() > day:
                bar.update((leg.start.date() - day).days)
                day = leg.start.date()
            yield leg


@contextmanager
def file_progress(
    path: Path,
) -> Iterator[tuple[Callable[[int], None] | None, Callable[[str], None] | None]]:
    """A progress bar over the file's bytes, then the index being built, on a terminal only
    (cron logs stay clean); ``pbxgate queue import`` shows its files' with it too."""
    from pbxgate.cdr.csvimport import data_size  # noqa: PLC0415

    if not sys.stderr.isatty():
        yield None, None
        return
    bar: Any
    with click.progressbar(
        length=data_size(path), label=f"Importing {path.name}", file=sys.stderr
    ) as bar:
        seen = [0]

        def update(done: int) -> None:
            bar.update(done - seen[0])
            seen[0] = done

        def note(text: str) -> None:
            bar.label = text.capitalize()
            bar.render_progress()

        yield update, note


def _report_import(result: ImportResult, reject_file: Path, name: Path | None = None) -> None:
    click.echo(
        f"{f'{name}: ' if name else ''}{result.rows} rows read: {result.inserted} imported, "
        f"{result.duplicates} already present, {result.rejected} rejected"
    )
    for reject in result.rejects[:20]:
        click.echo(f"line {reject.line}: {reject.reason}", err=True)
    if result.rejected > 20:
        click.echo(f"... and {result.rejected - 20} more", err=True)
    if result.rejected:
        click.echo(f"rejected rows were written to {reject_file}", err=True)


@cdr.command(name="generate")
@click.option("--days", type=click.IntRange(1), default=7, show_default=True,
              help="How many days, ending today.")  # fmt: skip
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First day.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last day (inclusive).")
@click.option("--calls-per-day", type=click.IntRange(1), default=150, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same calls.")
@click.option("--into", "into", help="Write into this database URL (a FreePBX-shaped cdr table); "
              "its password, if any, in $PBXGATE_GENERATE_PASSWORD.")  # fmt: skip
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a Master.csv (cdr_csv with loguniqueid and loguserfield).")  # fmt: skip
@click.option("--queue-log", "queue_log", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a call centre's queue_log for the same days and seed "
              "(mode 0600: it holds phone numbers).")  # fmt: skip
@click.option("--agents", type=click.IntRange(1), default=10, show_default=True,
              help="Agents of the --queue-log call centre (40 calls a weekday each).")  # fmt: skip
@pass_app
def generate(app: AppContext, days: int, first: Any, last: Any, calls_per_day: int, seed: int,
             into: str | None, csv_out: Path | None, queue_log: Path | None,
             agents: int) -> None:  # fmt: skip
    """Generate realistic demo calls (ring groups, queues, transfers, Cyrillic names).

    By default they go into pbxgate's local store, the default source.

    \b
    Examples:
      pbxgate cdr generate --days 7
      pbxgate cdr generate --from 2026-01-01 --to 2026-01-31 --csv Master.csv
      pbxgate cdr generate --days 30 --queue-log queue_log --agents 20
    """
    from pbxgate.cdr.generate import generate as generate_legs  # noqa: PLC0415
    from pbxgate.cdr.source import has_password as make_url_password  # noqa: PLC0415
    from pbxgate.cdr.store import Store, open_target  # noqa: PLC0415

    settings = _settings(app)
    now = now_in(zone(settings.timezone))
    today = now.date()
    end_day: date = last.date() if last else today
    start_day: date = first.date() if first else end_day - timedelta(days=days - 1)
    legs = generate_legs(
        start_day, end_day, seed=seed, calls_per_day=calls_per_day, until=now if not last else None
    )
    if sys.stderr.isatty() and (end_day - start_day).days >= 30:  # a long run shows progress
        legs = _days_progress(legs, start_day, end_day)
    if queue_log is not None:
        from pbxgate.private import open_private  # noqa: PLC0415
        from pbxgate.queue.generate import generate_queue_log  # noqa: PLC0415

        lines = generate_queue_log(
            start_day, end_day, agents=agents, seed=seed, tz=zone(settings.timezone),
            until=now if not last else None,
        )  # fmt: skip
        # callers' numbers: 0600 before the first is written (like --csv, a missing folder is
        # the user's mistake, not made here)
        written = 0
        with open(open_private(queue_log), "w", encoding="utf-8") as out:
            for line in lines:
                out.write(f"{line}\n")
                written += 1
        click.echo(f"wrote {written} queue_log lines to {queue_log}")
    if csv_out is not None:
        from pbxgate.cdr.csvexport import write_master_csv  # noqa: PLC0415

        count = write_master_csv(legs, csv_out)
        click.echo(f"wrote {count} rows to {csv_out}")
        return
    if into:
        if "://" in into and make_url_password(into):
            raise ConfigError(
                "a password in --into would show in `ps` and shell history",
                hint="put it in $PBXGATE_GENERATE_PASSWORD instead",
            )
        password = os.environ.get("PBXGATE_GENERATE_PASSWORD")
        store = open_target(into, freepbx=True, password=password)
        where = store.engine.url.render_as_string(hide_password=True)
    else:
        store = Store.open_sqlite(settings.store_path())
        where = str(settings.store_path())
    result = store.insert(legs)
    click.echo(
        f"{start_day} .. {end_day}: {result.inserted} CDR rows written to {where}"
        + (f" ({result.duplicates} were already there)" if result.duplicates else "")
    )


@cdr.command()
@click.option("--source", help="Source name from [cdr.sources], a URL or an SQLite file.")
@pass_app
def doctor(app: AppContext, source: str | None) -> None:
    """Check a source: reachable, columns found, indexes that make queries fast.

    \b
    Example:
      pbxgate cdr doctor --source freepbx
    """
    from pbxgate.cdr.doctor import FAIL, diagnose  # noqa: PLC0415

    with _source(app, source) as src:
        checks = diagnose(src)
    for check in checks:
        mark = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}[check.status]
        click.echo(f"{mark} {check.what}: {check.detail}")
    if any(c.status == FAIL for c in checks):
        raise click.exceptions.Exit(3)
