"""``pbxgate queue``: call-centre queues from Asterisk's queue_log."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pbxgate.cli.context import AppContext, pass_app
from pbxgate.errors import InputError
from pbxgate.private import private_dir

if TYPE_CHECKING:
    from pbxgate.queue.log import QueuedCall
    from pbxgate.queue.settings import QueueSettings
    from pbxgate.queue.source import QueueSource

EXIT_REJECTED = 6  # as `cdr import`: finished, but some lines were rejected
CALL_LEAD = 3600  # tieout: CDRs read from this long before the first call entered a queue


@click.group()
def queue() -> None:
    """Call-centre queues from Asterisk's queue_log.

    Read a queue_log file directly (FILE), or the lines `pbxgate queue import` keeps in
    pbxgate's store, or Asterisk's realtime queue_log table ([queue] source).

    \b
    Examples:
      pbxgate queue import /var/log/asterisk/queue_log
      pbxgate queue stats --yesterday --by hour
      pbxgate queue calls /var/log/asterisk/queue_log
    """


def _queue_settings(app: AppContext) -> QueueSettings:
    from pbxgate.queue.settings import QueueSettings  # noqa: PLC0415

    return app.settings.get(QueueSettings)


def scope_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The window, the source and the filters, shared by calls, stats and agents."""
    opts = [
        click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path)),
        click.option(
            "--source",
            help="'local', a [cdr.sources.NAME], a URL or an SQLite file "
            "holding Asterisk's queue_log table (default: [queue] source).",
        ),
        click.option("--yesterday", is_flag=True, help="Yesterday."),
        click.option("--today", is_flag=True, help="Today (the default, but for a FILE: all)."),
        click.option("--to", "end", metavar="WHEN", help="End (exclusive); a bare date = its end."),
        click.option("--from", "start", metavar="WHEN", help="Start, e.g. '2026-12-01 09:00'."),
        click.option("--queue", "queues", multiple=True, help="Only this queue; repeatable."),
        click.option(
            "--agent",
            "agents",
            multiple=True,
            help="Only calls this agent answered or was rung for; repeatable.",
        ),
        click.option("--caller", help="Caller filter: 8499 exact, '8499*' prefix, '*111*'."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


@dataclass
class Scope:
    source: QueueSource
    start: int | None  # Unix seconds; None: from the beginning
    end: int | None
    label: str  # the window, for headings
    queues: tuple[str, ...]
    agents: tuple[str, ...]
    caller: str | None

    def keeps(self, call: QueuedCall) -> bool:
        """The filters (the window is :func:`pbxgate.queue.report.window_calls`'s)."""
        if self.queues and call.queue not in self.queues:
            return False
        if (
            self.agents
            and call.agent not in self.agents
            and not any(a in self.agents for a, _, _ in call.rang)
        ):
            return False
        return self.caller is None or fnmatch.fnmatchcase(call.caller, self.caller)

    def calls(self) -> list[QueuedCall]:
        from pbxgate.queue.report import window_calls  # noqa: PLC0415

        return [c for c in window_calls(self.source, self.start, self.end) if self.keeps(c)]


@contextmanager
def _scope(app: AppContext, opts: dict[str, Any]) -> Iterator[Scope]:
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.cdr.window import now_in, resolve_window, zone  # noqa: PLC0415
    from pbxgate.queue.source import open_queue_source, window_bounds  # noqa: PLC0415

    cdr_settings = app.settings.get(CdrSettings)
    path, start, end = opts["path"], opts["start"], opts["end"]
    periods = [p for p in ("today", "yesterday") if opts[p]]
    if len(periods) > 1:
        raise InputError("--today and --yesterday cannot be combined")
    if periods and (start or end):
        raise InputError(f"--{periods[0]} cannot be combined with --from/--to")
    if path is not None and opts["source"]:
        raise InputError("give a FILE or --source, not both")
    display = zone(cdr_settings.timezone)
    lo: int | None = None
    hi: int | None = None
    label = "all of the file"
    if path is None or periods or start or end:
        window = resolve_window(start=start, end=end, period=periods[0] if periods else None,
                                now=now_in(display))  # fmt: skip
        lo, hi = window_bounds(window, display)
        label = window.describe()
    source = open_queue_source(cdr_settings, _queue_settings(app), file=path, name=opts["source"])
    try:
        yield Scope(source, lo, hi, label, tuple(opts["queues"]), tuple(opts["agents"]),
                    opts["caller"])  # fmt: skip
    finally:
        source.close()


@queue.command(name="import")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Append rejected lines to this file (default: rejects/FILE.rejects beside "
                   "the store, holding the last run's rejects).")  # fmt: skip
@click.option("--full", is_flag=True,
              help="Read the whole file even where an earlier import of it ended.")  # fmt: skip
@pass_app
def import_(app: AppContext, files: tuple[Path, ...], rejects: Path | None, full: bool) -> None:
    """Import queue_log files into pbxgate's store (idempotent; default: [queue] log).

    A file imported before that has only grown since is read from where that import ended,
    and so is one that starts with a file imported before (queue_log.1 after a rotation);
    gzip-compressed files are read whole. A line that is not a queue_log line is reported with
    its number, kept in the reject file and makes the exit status 6; events pbxgate does not
    know are stored and counted.

    \b
    Examples:
      pbxgate queue import
      pbxgate queue import /var/log/asterisk/queue_log.1.gz /var/log/asterisk/queue_log
    """
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.cli.cdr import file_progress  # noqa: PLC0415
    from pbxgate.queue.store import QueueStore  # noqa: PLC0415

    settings = _queue_settings(app)
    if not files:
        if not settings.log.is_file():
            raise InputError(f"no queue_log at {settings.log}",
                             hint="give the file, or set [queue] log")  # fmt: skip
        # what Asterisk wrote before logrotate renamed the file is in the .1 file: read on
        # from where the last import of it ended
        rotated = settings.log.with_name(settings.log.name + ".1")
        files = (rotated, settings.log) if rotated.is_file() else (settings.log,)
    store_path = app.settings.get(CdrSettings).store_path()
    store = QueueStore(store_path)
    rejected = 0
    try:
        for path in files:
            reject_file = rejects or store_path.parent / "rejects" / f"{path.name}.rejects"
            private_dir(reject_file.parent)
            if rejects is None:
                reject_file.unlink(missing_ok=True)  # the default file tells about this run
            with file_progress(path) as (progress, _):
                result = store.import_file(path, resume=not full, reject_file=reject_file,
                                           progress=progress)  # fmt: skip
            if result.refused:  # a resumed file's earlier lines were imported
                first = result.rejects[0]
                raise InputError(
                    f"{path} does not look like Asterisk's queue_log: line {first.line}: "
                    f"{first.reason}"
                )
            if result.resumed_after:
                same = result.resumed_from == str(path.resolve())
                origin = "" if same else f", from {result.resumed_from}, which it starts with"
                click.echo(f"{path}: read from line {result.resumed_after + 1} on (the lines "
                           f"before were imported earlier{origin}; --full reads them again)",
                           err=True)  # fmt: skip
            unknown = ", ".join(f"{e} ({n})" for e, n in result.unknown.most_common())
            kept = f"; events pbxgate does not know, kept: {unknown}" if unknown else ""
            click.echo(
                f"{path}: {result.lines} lines read: {result.inserted} imported, "
                f"{result.duplicates} already present, {result.rejected} rejected{kept}"
            )
            for reject in result.rejects:
                click.echo(f"line {reject.line}: {reject.reason}", err=True)
            if result.rejected > len(result.rejects):
                click.echo(f"... and {result.rejected - len(result.rejects)} more", err=True)
            if result.rejected:
                click.echo(f"rejected lines are in {reject_file}", err=True)
            rejected += result.rejected
    finally:
        store.close()
    if rejected:
        raise click.exceptions.Exit(EXIT_REJECTED)


@queue.command()
@scope_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per call.")
@pass_app
def calls(app: AppContext, /, as_json: bool, **opts: Any) -> None:
    """One row per queued call: when it entered, who called, how it left the queue
    (answered by whom after how long, abandoned, timed out), the agents it rang.

    \b
    Example:
      pbxgate queue calls /var/log/asterisk/queue_log
      2026-12-05 12:01:18  700  84991000005  answered by Anna Smirnova after 2 s, talked 2 s
    """
    from pbxgate.queue.log import ANSWERED  # noqa: PLC0415

    with _scope(app, opts) as scope:
        found = scope.calls()
    for call in found:
        if as_json:
            click.echo(json.dumps(call.as_row(), ensure_ascii=False))
            continue
        when = _when(app, call.entered_at)
        if call.outcome == ANSWERED:
            what = f"answered by {call.agent} after {call.wait} s, " + (
                f"talked {call.talk} s" if call.completed else "talking"
            )
            if call.transferred_to:
                what += f", transferred to {call.transferred_to}"
        else:
            what = f"{call.outcome} after {call.wait} s"
        rang = ", ".join(f"{a} ({e.lower()})" for a, e, _ in call.rang)
        click.echo(f"{when}  {call.queue}  {call.caller or '-'}  {what}"
                   + (f"; rang {rang}" if rang else ""))  # fmt: skip
    if not found and not as_json:
        click.echo(f"no queued calls in {scope.label}", err=True)


@queue.command()
@scope_options
@click.option(
    "--by",
    "group",
    type=click.Choice(["queue", "agent", "hour"]),
    default="queue",
    show_default=True,
    help="One row per queue, per agent who answered, per hour.",
)
@click.option("--service-level", type=click.IntRange(0),
              help="Seconds within which an answer counts for the service level, for every "
                   "queue (default: [queue] service_level and service_levels).")  # fmt: skip
@click.option("--short-abandon", type=click.IntRange(0),
              help="Callers who gave up within this many seconds are left out of the service "
                   "level (default: [queue] short_abandon, 5).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@pass_app
def stats(
    app: AppContext,
    /,
    group: str,
    service_level: int | None,
    short_abandon: int | None,
    as_json: bool,
    **opts: Any,
) -> None:
    """Offered, answered, abandoned (short abandons apart), timed out, service level, wait
    (average, 90th percentile, longest) and talk, per queue, agent or hour of the day.

    \b
    Example:
      pbxgate queue stats --yesterday --by hour
      pbxgate queue stats /var/log/asterisk/queue_log --service-level 30
    """
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.notify.timezone import load_zone, local_time  # noqa: PLC0415
    from pbxgate.queue.stats import GROUPINGS, by  # noqa: PLC0415

    settings = _queue_settings(app)
    key = GROUPINGS[group]
    if group == "hour":  # in the PBX's zone ([cdr] timezone)
        zone = load_zone(app.settings.get(CdrSettings).timezone)
        key = lambda c: f"{local_time(c.entered_at, zone).hour:02d}"  # noqa: E731
    with _scope(app, opts) as scope:
        found = scope.calls()
    rows = by(
        found,
        key,
        service_level=settings.service_level if service_level is None else service_level,
        short_abandon=settings.short_abandon if short_abandon is None else short_abandon,
        per_queue=settings.service_levels if service_level is None else None,
    )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_row(), ensure_ascii=False))
        return
    click.echo(f"Queue calls {scope.label} ({scope.source.name})")
    click.echo(f"{group:<16} {'offered':>7} {'answered':>8} {'abandon':>7} {'short':>5} "
               f"{'timeout':>7} {'SL':>6} {'wait avg':>8} {'p90':>4} {'max':>4} "
               f"{'talk avg':>8}")  # fmt: skip
    for r in rows:
        sl = "-" if r.service_level is None else f"{r.service_level:.0%}"
        click.echo(f"{r.key[:16]:<16} {r.offered:>7} {r.answered:>8} {r.abandoned:>7} "
                   f"{r.short_abandoned:>5} {r.timed_out:>7} {sl:>6} {r.wait_avg:>8.1f} "
                   f"{r.wait_p90:>4} {r.wait_max:>4} {r.talk_avg:>8.1f}")  # fmt: skip
    if not rows:
        click.echo(f"no queued calls in {scope.label}", err=True)


@queue.command("agents")
@scope_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per agent.")
@pass_app
def agents_cmd(app: AppContext, /, as_json: bool, **opts: Any) -> None:
    """Per agent: calls taken, rings not answered, talk time, logged-in time, paused time by
    reason, occupancy (talk over logged-in minus paused time).

    \b
    Example:
      pbxgate queue agents --yesterday
    """
    from pbxgate.queue.report import agent_lines, window_agents  # noqa: PLC0415

    with _scope(app, opts) as scope:
        lines = agent_lines(scope.source, scope.start, scope.end)
        rows = window_agents(lines, scope.start, scope.end, now=int(time.time()),
                             queues=scope.queues, aliases=_queue_settings(app).members)  # fmt: skip
    if scope.agents:
        rows = [r for r in rows if r.agent in scope.agents]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_row(), ensure_ascii=False))
        return
    click.echo(f"Agents {scope.label} ({scope.source.name})")
    click.echo(f"{'agent':<20} {'taken':>5} {'no answer':>9} {'talk':>8} {'logged in':>9} "
               f"{'paused':>8} {'occupancy':>9}  paused by reason")  # fmt: skip
    for r in rows:
        occupancy = "-" if r.occupancy is None else f"{r.occupancy:.0%}"
        reasons = ", ".join(f"{k} {_hms(v)}" for k, v in sorted(r.paused.items()))
        click.echo(f"{r.agent[:20]:<20} {r.taken:>5} {r.rang_unanswered:>9} {_hms(r.talk):>8} "
                   f"{_hms(r.logged_in):>9} {_hms(r.paused_total):>8} {occupancy:>9}  "
                   f"{reasons}")  # fmt: skip
    if not rows:
        click.echo(f"no agents in {scope.label}", err=True)


@queue.command("tieout")
@scope_options
@click.option(
    "--cdr-source",
    help="The CDRs to compare with: a [cdr.sources] name, a URL or an SQLite file "
    "(default: [cdr] default_source).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per queued call.")
@pass_app
def tieout_cmd(app: AppContext, /, cdr_source: str | None, as_json: bool, **opts: Any) -> None:
    """Each queued call beside the CDR of the same call (by uniqueid/linkedid): answered or
    not, talk, wait; the differences that matter, and none of those that are expected
    (docs/queue.md, "queue_log and the CDR"). Exit status 1 when a call does not tie out.

    \b
    Example:
      pbxgate queue tieout --yesterday --cdr-source freepbx
    """
    from datetime import datetime  # noqa: PLC0415

    from pbxgate.cdr.query import fetch_calls  # noqa: PLC0415
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.cdr.source import open_source  # noqa: PLC0415
    from pbxgate.cdr.window import Window, zone  # noqa: PLC0415
    from pbxgate.queue.tieout import tie_out  # noqa: PLC0415

    settings = app.settings.get(CdrSettings)
    with _scope(app, opts) as scope:
        found = scope.calls()
    if not found:
        click.echo(f"no queued calls in {scope.label}", err=True)
        return
    display = zone(settings.timezone)
    # a call starts before it enters a queue (a greeting, an IVR, an earlier queue)
    lo = min(c.entered_at for c in found) - CALL_LEAD
    hi = max(c.entered_at for c in found) + 60
    window = Window(*(datetime.fromtimestamp(t, display).replace(tzinfo=None) for t in (lo, hi)))
    cdr = open_source(settings, cdr_source)
    try:
        cdr_calls = fetch_calls(cdr, window)
    finally:
        cdr.close()
    rows = tie_out(found, cdr_calls)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row.as_row(), ensure_ascii=False, default=str))
            continue
        if row.agrees:
            continue
        when = _when(app, row.call.entered_at)
        click.echo(f"{when}  {row.call.queue}  {row.call.caller or '-'}  "
                   f"{'; '.join(row.differences)}")  # fmt: skip
    agree = sum(r.agrees for r in rows)
    click.echo(f"{agree} of {len(rows)} queued calls tie out with the CDR "
               f"({scope.source.name}; {cdr.spec.name})", err=as_json)  # fmt: skip
    if agree != len(rows):
        raise click.exceptions.Exit(1)


def _when(app: AppContext, epoch: int) -> str:
    """A moment in the PBX's zone ([cdr] timezone), as windows and --by hour read it."""
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.notify.timezone import load_zone, local_time  # noqa: PLC0415

    zone = load_zone(app.settings.get(CdrSettings).timezone)
    return local_time(epoch, zone).strftime("%Y-%m-%d %H:%M:%S")


def _hms(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
