"""``pbxgate queue``: call-centre queues from Asterisk's queue_log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pbxgate.cli.context import AppContext, pass_app

if TYPE_CHECKING:
    from pbxgate.queue.log import QueuedCall, QueueLogLine


@click.group()
def queue() -> None:
    """Call-centre queues from Asterisk's queue_log.

    \b
    Example:
      pbxgate queue calls /var/log/asterisk/queue_log
    """


@queue.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per call.")
@pass_app
def calls(app: AppContext, path: Path, as_json: bool) -> None:
    """One row per queued call: when it entered, who called, how it left the queue
    (answered by whom after how long, abandoned, timed out), the agents it rang.

    \b
    Example:
      pbxgate queue calls /var/log/asterisk/queue_log
      2026-12-05 12:01:18  700  84991000005  answered by Anna Smirnova after 2 s, talked 2 s
    """
    from pbxgate.queue.log import ANSWERED  # noqa: PLC0415

    for call in _journeys(path):
        if as_json:
            click.echo(json.dumps(call.as_row(), ensure_ascii=False))
            continue
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(call.entered_at))
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


def _lines(path: Path) -> list[QueueLogLine]:
    """The file's queue_log lines; a one-line error naming the file and the line."""
    from pbxgate.errors import InputError  # noqa: PLC0415
    from pbxgate.queue.log import read_lines  # noqa: PLC0415

    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return list(read_lines(fh))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from exc
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc


def _journeys(path: Path) -> list[QueuedCall]:
    from pbxgate.queue.log import journeys  # noqa: PLC0415

    return journeys(_lines(path))


@queue.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--by",
    "group",
    type=click.Choice(["queue", "agent", "hour"]),
    default="queue",
    show_default=True,
    help="One row per queue, per agent who answered, per hour.",
)
@click.option(
    "--service-level",
    default=20,
    show_default=True,
    help="Seconds within which an answer counts for the service level.",
)
@click.option(
    "--short-abandon",
    default=5,
    show_default=True,
    help="Callers who gave up within this many seconds are left out of the service level.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per row.")
@pass_app
def stats(
    app: AppContext,
    path: Path,
    group: str,
    service_level: int,
    short_abandon: int,
    as_json: bool,
) -> None:  # fmt: skip
    """Offered, answered, abandoned (short abandons apart), timed out, service level, wait
    (average, 90th percentile, longest) and talk, per queue, agent or hour of the day.

    \b
    Example:
      pbxgate queue stats /var/log/asterisk/queue_log --service-level 30
    """
    from pbxgate.cdr.settings import CdrSettings  # noqa: PLC0415
    from pbxgate.notify.timezone import load_zone, local_time  # noqa: PLC0415
    from pbxgate.queue.stats import GROUPINGS, by  # noqa: PLC0415

    key = GROUPINGS[group]
    if group == "hour":  # in the PBX's zone ([cdr] timezone)
        zone = load_zone(app.settings.get(CdrSettings).timezone)
        key = lambda c: f"{local_time(c.entered_at, zone).hour:02d}"  # noqa: E731
    rows = by(_journeys(path), key, service_level=service_level, short_abandon=short_abandon)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_row(), ensure_ascii=False))
        return
    click.echo(f"{group:<16} {'offered':>7} {'answered':>8} {'abandon':>7} {'short':>5} "
               f"{'timeout':>7} {'SL':>6} {'wait avg':>8} {'p90':>4} {'max':>4} "
               f"{'talk avg':>8}")  # fmt: skip
    for r in rows:
        sl = "-" if r.service_level is None else f"{r.service_level:.0%}"
        click.echo(f"{r.key[:16]:<16} {r.offered:>7} {r.answered:>8} {r.abandoned:>7} "
                   f"{r.short_abandoned:>5} {r.timed_out:>7} {sl:>6} {r.wait_avg:>8.1f} "
                   f"{r.wait_p90:>4} {r.wait_max:>4} {r.talk_avg:>8.1f}")  # fmt: skip


@queue.command("agents")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per agent.")
@pass_app
def agents_cmd(app: AppContext, path: Path, as_json: bool) -> None:
    """Per agent: calls taken, rings not answered, talk time, logged-in time, paused time by
    reason, occupancy (talk over logged-in minus paused time).

    \b
    Example:
      pbxgate queue agents /var/log/asterisk/queue_log
    """
    from pbxgate.queue.agents import agents  # noqa: PLC0415

    rows = agents(_lines(path))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_row(), ensure_ascii=False))
        return
    click.echo(f"{'agent':<20} {'taken':>5} {'no answer':>9} {'talk':>8} {'logged in':>9} "
               f"{'paused':>8} {'occupancy':>9}  paused by reason")  # fmt: skip
    for r in rows:
        occupancy = "-" if r.occupancy is None else f"{r.occupancy:.0%}"
        reasons = ", ".join(f"{k} {_hms(v)}" for k, v in sorted(r.paused.items()))
        click.echo(f"{r.agent[:20]:<20} {r.taken:>5} {r.rang_unanswered:>9} {_hms(r.talk):>8} "
                   f"{_hms(r.logged_in):>9} {_hms(r.paused_total):>8} {occupancy:>9}  "
                   f"{reasons}")  # fmt: skip


def _hms(seconds: int) -> str:
    hours, rest = divmod(max(0, seconds), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
