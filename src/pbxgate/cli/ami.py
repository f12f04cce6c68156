"""``pbxgate ami``: Asterisk's calls as they happen, from the manager interface."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import asdict

import click

from pbxgate.cli.context import AppContext, pass_app


@click.group()
def ami() -> None:
    """Asterisk's calls live, from the manager interface (AMI).

    Needs a manager.conf user with read = call, given in [ami] (the secret there or in
    PBXGATE_AMI_SECRET, never on a command line).

    \b
    Example:
      pbxgate ami watch
    """


@ami.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@pass_app
def watch(app: AppContext, as_json: bool) -> None:
    """Print every change of every call: ringing (and which phones), answered (by whom), ended
    (with the hangup cause). Reconnects by itself; Ctrl-C stops.

    \b
    Example:
      pbxgate ami watch
      12:01:03 84991111111 -> 4996491913  ringing 101 102
      12:01:07 84991111111 -> 4996491913  answered by 102
      12:03:38 84991111111 -> 4996491913  ended after 2:31 (Normal Clearing)
    """
    from pbxgate.ami.calls import ENDED, TALKING, CallState, CallTracker  # noqa: PLC0415
    from pbxgate.ami.settings import AmiSettings  # noqa: PLC0415

    settings = app.settings.get(AmiSettings)
    settings.credentials()  # a missing user or secret: one line, before connecting

    def show(state: CallState) -> None:
        if as_json:
            click.echo(json.dumps(asdict(state), ensure_ascii=False))
            return
        when = time.strftime("%H:%M:%S", time.localtime())
        who = f"{state.caller_number or 'unknown'} -> {state.did or '?'}"
        if state.state == ENDED:
            talk = state.ended_at - state.answered_at if state.answered_at else 0
            what = (
                f"ended after {int(talk) // 60}:{int(talk) % 60:02d}"
                if state.answered_at
                else "ended unanswered"
            )
            what += f" ({state.cause})" if state.cause else ""
        elif state.state == TALKING:
            what = f"answered by {state.answered_by or '?'}"
        else:
            what = "ringing " + " ".join(state.ringing) if state.ringing else "new"
        click.echo(f"{when} {who}  {what}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await CallTracker(show).follow(settings.client, stop, fail_first=True)

    asyncio.run(main())
