"""``pbxgate notify``: incoming-call notifications (VK, Telegram, e-mail, webhook)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from pbxgate.cli.context import AppContext, pass_app
from pbxgate.config import default_paths
from pbxgate.errors import DeliveryError, InputError
from pbxgate.notify.events import KINDS, CallEvent
from pbxgate.notify.outbox import Outbox
from pbxgate.notify.recipients import redact
from pbxgate.notify.report import status_data, status_lines
from pbxgate.notify.settings import NotifySettings
from pbxgate.notify.vktoken import COMMUNITY_ADVICE, authorize_url, token_from_redirect
from pbxgate.private import open_private, private_dir


@click.group()
def notify() -> None:
    """Incoming-call notifications through AGI and a durable outbox.

    \b
    Example:
      pbxgate notify send-test-event --caller +79161234567 && pbxgate notify status
    """


@notify.command("vk-token")
@click.option("--app-id", type=int, help="ID of your VK app (for a user token via OAuth).")
@click.option("--scope", default="messages,offline", show_default=True, help="Rights to ask for.")
@click.option("--group-id", type=int, help="Ask for a community token of this community via OAuth.")
@click.option("--community", is_flag=True, help="Paste a community key created in VK's settings.")
@click.option(
    "--save",
    type=click.Path(path_type=Path),
    help="Where to store the token (mode 0600). Default: vk.token beside the config file.",
)
def vk_token(
    app_id: int | None, scope: str, group_id: int | None, community: bool, save: Path | None
) -> None:
    """Get a VK token and store it in a file that [notify.vk] token_file points to.

    The token is read from the terminal (never from the command line) and written to a file.

    \b
    Examples:
      pbxgate notify vk-token --community
      pbxgate notify vk-token --app-id 1234567
    """

    click.echo(COMMUNITY_ADVICE + "\n")
    if community:
        token = click.prompt("Community key", hide_input=True).strip()
    elif app_id is not None:
        click.echo("Open this address in a browser logged in to VK and allow access:\n")
        click.echo("  " + authorize_url(app_id, scope, group_id) + "\n")
        pasted = click.prompt("Paste the address of the page VK sent you to", hide_input=True)
        token = token_from_redirect(pasted)
    else:
        raise InputError("give --community or --app-id", hint="see pbxgate notify vk-token --help")
    if not token:
        raise InputError("the token is empty")
    path = save or default_paths()[0].parent / "vk.token"
    private_dir(path.parent)
    with os.fdopen(open_private(path), "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    kind = "user" if app_id is not None and group_id is None and not community else "community"
    click.echo(f"Saved the token to {path} (mode 0600). Add to your config:\n")
    click.echo(f'[notify.vk]\nenabled = true\ntoken_file = "{path}"\ntoken_type = "{kind}"')
    click.echo('recipients = ["<your VK user id>"]')


@notify.command("test")
@click.argument("channel", type=click.Choice(["vk", "telegram", "email", "webhook"]))
@click.option("--to", "recipients", multiple=True, help="Recipient (default: the configured ones).")
@pass_app
def test_channel(app: AppContext, channel: str, recipients: tuple[str, ...]) -> None:
    """Send a test message through one channel now and show its answer plainly.

    \b
    Example:
      pbxgate notify test vk --to 123456
    """
    import asyncio  # noqa: PLC0415 - asyncio and httpx load only for the commands that use them

    from pbxgate.notify.testsend import send_test  # noqa: PLC0415

    results = asyncio.run(send_test(app.settings, channel, list(recipients)))
    failed = 0
    for recipient, verdict, detail in results:
        click.echo(f"{channel} -> {redact(recipient)}: {verdict}: {detail}")
        failed += verdict != "sent"
    if failed:
        raise DeliveryError(f"{failed} of {len(results)} test messages were not delivered")


@notify.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", default=10, show_default=True, help="Dead letters to list.")
@pass_app
def status(app: AppContext, as_json: bool, limit: int) -> None:
    """Show the outbox: backlog, deliveries per channel, last error, dead letters.

    \b
    Example:
      pbxgate notify status --json
    """

    box = _open_outbox(app)
    try:
        data = status_data(box.backlog(), box.status(), box.dead_letters(limit=limit))
    finally:
        box.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        for line in status_lines(data, time.time()):
            click.echo(line)


@notify.command("retry")
@click.option("--channel", help="Only this channel's dead letters.")
@pass_app
def retry(app: AppContext, channel: str | None) -> None:
    """Send dead letters again and make waiting retries due now (after fixing the cause).

    \b
    Example:
      pbxgate notify retry --channel vk
    """

    box = _open_outbox(app)
    try:
        now = time.time()
        hurried = box.hurry(now, channel)
        count = box.revive(now, channel)
    finally:
        box.close()
    click.echo(f"{count} dead letter(s) queued again, {hurried} waiting retries due now")


@notify.command("purge")
@click.option(
    "--sent-older-than",
    type=float,
    default=30.0,
    show_default=True,
    help="Delete sent deliveries older than this many days.",
)
@click.option("--dead", is_flag=True, help="Also delete dead letters.")
@click.option("--channel", help="Only this channel.")
@pass_app
def purge(app: AppContext, sent_older_than: float, dead: bool, channel: str | None) -> None:
    """Delete old sent deliveries (and, with --dead, dead letters) from the outbox.

    \b
    Example:
      pbxgate notify purge --sent-older-than 7 --dead
    """

    if sent_older_than < 0:
        raise InputError("--sent-older-than must not be negative")
    box = _open_outbox(app)
    try:
        cutoff = time.time() - sent_older_than * 86400
        with _purge_progress() as progress:
            count = box.purge(sent_before=cutoff, dead=dead, channel=channel, progress=progress)
    finally:
        box.close()
    click.echo(f"{count} deliveries deleted")


@contextlib.contextmanager
def _purge_progress() -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the outbox's deliveries, on a terminal only (cron logs stay
    clean)."""
    if not sys.stderr.isatty():
        yield None
        return
    bar: Any = None
    seen = [0]
    with contextlib.ExitStack() as stack:

        def update(done: int, span: int) -> None:
            nonlocal bar
            if bar is None:  # the span is known once the purge has looked
                bar = stack.enter_context(
                    click.progressbar(length=span, label="Purging", file=sys.stderr)
                )
            bar.update(done - seen[0])
            seen[0] = done

        yield update


@notify.command("send-test-event")
@click.option("--caller", default="+79161234567", show_default=True, help="Caller number.")
@click.option("--name", default="", help="CALLERID(name); empty = look it up.")
@click.option("--did", default="74951234567", show_default=True, help="The number dialled.")
@click.option("--kind", type=click.Choice(list(KINDS)), default="incoming")
@click.option("--dialstatus", default="NOANSWER", show_default=True, help="For --kind missed.")
@click.option(
    "--call",
    "call_id",
    default="",
    help="Continue this call (the id printed before): its caller, name and DID unless given.",
)
@click.option("--answered-by", default="102", show_default=True, help="For answered, ended.")
@click.option("--talk", default=151.0, show_default=True, help="Seconds talked, for ended.")
@pass_app
def send_test_event(
    app: AppContext,
    caller: str,
    name: str,
    did: str,
    kind: str,
    dialstatus: str,
    call_id: str,
    answered_by: str,
    talk: float,
) -> None:
    """Put a made-up call into the outbox, as pbxgate-agi would (the worker delivers it).

    \b
    Examples:
      pbxgate notify send-test-event --caller +79161234567 --name "Иван"
      # with [notify] follow: the same call's message, edited (its caller, name, DID kept)
      pbxgate notify send-test-event --kind answered --call 1733400000.123456
      pbxgate notify send-test-event --kind ended --call 1733400000.123456
    """
    from pbxgate.notify.service import (  # noqa: PLC0415
        accept,
        admitted,
        close_outboxes,
        outbox_for,
    )

    now = time.time()
    uid = call_id or f"{now:.6f}"
    talking = kind in ("answered", "ended")
    event = CallEvent(
        kind=kind,
        uniqueid=uid,
        linkedid=uid,
        caller_number=caller,
        caller_name=name,
        did=did,
        channel="Local/test@pbxgate",
        context="pbxgate-test",
        extension=did,
        occurred_at=now,
        dialstatus=dialstatus if kind == "missed" else "",
        answered_by=answered_by if talking else "",
        talk_seconds=talk if kind == "ended" else 0.0,
    )
    try:
        if call_id:
            earlier = outbox_for(app.settings.get(NotifySettings)).call_events(call_id)
            event = _continued(event, earlier, click.get_current_context())
        stored = accept(app.settings, event)
    finally:
        close_outboxes()
    if stored:
        click.echo(f"queued {event.event_id} (call {event.call_id})")
    elif not admitted(app.settings, event):
        number = event.caller_number or "an empty number"
        click.echo(f"not queued: {number} counts as internal ([cdr] rule)")
    else:
        click.echo(f"not queued: call {event.call_id} has its {kind} event already")


def _continued(event: CallEvent, earlier: list[CallEvent], ctx: click.Context) -> CallEvent:
    """``event`` as the next event of the call whose ``earlier`` events are in the outbox: the
    call's caller, name, DID (and PBX, channel) unless given on the command line, and for a
    talking kind the extension that answered it. An explicit option wins, as a real call's
    later event may carry another number (the dialplan rewrote CALLERID, a transfer)."""
    if not earlier:  # an id the outbox does not know (or purged): a new call of that id
        return event

    def given(option: str) -> bool:
        source = ctx.get_parameter_source(option)
        return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)

    first = earlier[0]
    facts: dict[str, Any] = {
        "uniqueid": first.uniqueid,
        "linkedid": first.linkedid,
        "pbx": first.pbx,
        "channel": first.channel,
        "context": first.context,
    }
    if not given("caller"):
        facts["caller_number"] = first.caller_number
    if not given("name"):
        facts["caller_name"] = first.caller_name
    if not given("did"):
        facts["did"], facts["extension"] = first.did, first.extension
    took = [e for e in earlier if e.answered_by]
    if event.answered_by and took and not given("answered_by"):
        facts["answered_by"], facts["answered_name"] = took[-1].answered_by, took[-1].answered_name
    return dataclasses.replace(event, **facts)


@notify.command("worker")
@click.option("--until-idle", is_flag=True, help="Exit once nothing is left to deliver.")
@pass_app
def worker(app: AppContext, until_idle: bool) -> None:
    """Deliver from the outbox until SIGTERM or Ctrl-C (pbxgate serve runs the same worker).

    \b
    Examples:
      pbxgate -v notify worker
      pbxgate notify worker --until-idle   # e.g. from cron when pbxgate serve is not used
    """
    import asyncio  # noqa: PLC0415

    from pbxgate.notify.service import run_worker  # noqa: PLC0415

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(app.settings, stop, until_idle=until_idle)

    asyncio.run(main())
    if until_idle:  # from cron: say what is left, so the log shows it
        box = _open_outbox(app)
        try:
            channels = box.status()
            due = box.next_due()
        finally:
            box.close()
        sent = sum(c.sent for c in channels)
        waiting = sum(c.pending + c.in_flight for c in channels)
        dead = sum(c.dead for c in channels)
        line = f"outbox: {sent} sent in all, {waiting} waiting to retry, {dead} dead letters"
        if waiting and due is not None:
            wait = max(0, round(due - time.time()))
            line += f"; the next retry is due at {time.strftime('%H:%M:%S', time.localtime(due))}"
            line += f" (in {wait} s): run again then"
        click.echo(line)


@notify.command("fake-vk")
@click.option("--port", default=8081, show_default=True, help="Port on 127.0.0.1.")
@click.option("--rate", default=20.0, show_default=True, help="Error 6 above this many requests/s.")
@click.option("--delay", default=0.0, help="Seconds before each answer (a slow VK).")
@click.option("--fail", "fail", multiple=True, help="PEER:CODE - answer this VK error for a peer.")
def fake_vk(port: int, rate: float, delay: float, fail: tuple[str, ...]) -> None:
    """A local stand-in for VK's messages.send; prints each message a user would see.

    Point [notify.vk] api_base at it: api_base = "http://127.0.0.1:8081".

    \b
    Example:
      pbxgate notify fake-vk --port 8081 --fail 42:901
    """
    from pbxgate.notify.fakevk import FakeVkServer, FakeVkState  # noqa: PLC0415

    failures: dict[int, int] = {}
    for item in fail:
        peer, _, code = item.partition(":")
        if not (peer.lstrip("-").isdigit() and code.isdigit()):
            raise InputError(f"--fail {item!r}: use PEER:CODE, e.g. 42:901")
        failures[int(peer)] = int(code)
    state = FakeVkState(rate=rate, delay=delay, fail=failures)
    server = FakeVkServer(port, state, echo=click.echo)
    click.echo(f"fake VK listening on {server.base_url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _open_outbox(app: AppContext) -> Outbox:
    from pbxgate.notify.service import open_outbox  # noqa: PLC0415

    return open_outbox(app.settings.get(NotifySettings))
