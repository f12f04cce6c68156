"""``pbxgate ami``: Asterisk's calls as they happen, from the manager interface."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from pbxgate.cli.context import AppContext, pass_app

if TYPE_CHECKING:
    from pbxgate.ami.calls import CallState


@click.group()
def ami() -> None:
    """Asterisk's calls live, from the manager interface (AMI).

    Needs a manager.conf user with read = call and write = reporting, given in [ami] (the
    secret there or in PBXGATE_AMI_SECRET, never on a command line).

    \b
    Example:
      pbxgate ami watch
    """


def describe(state: CallState, now: float | None = None) -> str:
    """One line for a change of a call, as ``pbxgate ami watch`` prints it."""
    from pbxgate.ami.calls import ENDED, TALKING  # noqa: PLC0415

    when = time.strftime("%H:%M:%S", time.localtime(now))
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
        if state.transfers:
            what += f", transferred to {state.talking_to}"
    else:
        what = "ringing " + " ".join(state.ringing) if state.ringing else "new"
    return f"{when} {who}  {what}"


PBX_OPTION = click.option(
    "--pbx", help="The PBX's manager to use, where [ami.managers] names several."
)


@ami.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@PBX_OPTION
@pass_app
def watch(app: AppContext, as_json: bool, pbx: str | None) -> None:
    """Print every change of every call: ringing (and which phones), answered (by whom), ended
    (with the hangup cause). Reconnects by itself; Ctrl-C stops.

    \b
    Example:
      pbxgate ami watch
      12:01:03 84991111111 -> 4996491913  ringing 101 102
      12:01:07 84991111111 -> 4996491913  answered by 102
      12:03:38 84991111111 -> 4996491913  ended after 2:31 (Normal Clearing)
    """
    from pbxgate.ami.calls import CallTracker  # noqa: PLC0415
    from pbxgate.ami.settings import AmiSettings  # noqa: PLC0415

    settings = app.settings.get(AmiSettings).manager(pbx)
    settings.credentials()  # a missing user or secret: one line, before connecting

    def show(state: CallState) -> None:
        click.echo(json.dumps(asdict(state), ensure_ascii=False) if as_json else describe(state))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await CallTracker(show).follow(settings.client, stop, fail_first=True)

    asyncio.run(main())


@ami.command()
@click.option("--json", "as_json", is_flag=True, help="The stream's own JSON lines.")
@PBX_OPTION
@pass_app
def live(app: AppContext, as_json: bool, pbx: str | None) -> None:
    """The calls in progress now, then every change, from a running pbxgate serve (its
    [ami] live_socket): no second manager login. Ctrl-C stops.

    \b
    Example:
      pbxgate ami live
      in progress: 1
      12:01:03 84991111111 -> 4996491913  ringing 101 102
      12:01:07 84991111111 -> 4996491913  answered by 102
    """
    from pbxgate.ami.calls import CallState  # noqa: PLC0415
    from pbxgate.ami.live import read_socket  # noqa: PLC0415
    from pbxgate.ami.settings import AmiSettings  # noqa: PLC0415
    from pbxgate.errors import DeliveryError  # noqa: PLC0415

    path = app.settings.get(AmiSettings).manager(pbx, check=False).live_socket_path()

    async def main() -> None:
        async for item in read_socket(path):
            if as_json:
                click.echo(json.dumps(item, ensure_ascii=False))
            elif item["type"] == "snapshot":
                calls = [CallState(**c) for c in item["calls"]]  # type: ignore[attr-defined]
                click.echo(f"in progress: {len(calls)}")
                for call in calls:
                    click.echo(describe(call))
            else:
                click.echo(describe(CallState(**item["call"])))  # type: ignore[arg-type]
        raise DeliveryError("pbxgate serve closed the live-calls stream")

    try:
        asyncio.run(main())
    except (FileNotFoundError, ConnectionRefusedError):
        raise DeliveryError(
            f"no live-calls stream at {path}",
            hint="is pbxgate serve running with [ami] enabled (and the same [ami] live_socket)?",
        ) from None
    except PermissionError:
        raise DeliveryError(
            f"not allowed to read {path}", hint="run as the user pbxgate serve runs as"
        ) from None
    except KeyboardInterrupt:
        pass
