"""``pbxgate serve``: the long-running service (FastAGI listener and delivery worker)."""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from typing import TYPE_CHECKING

import click

from pbxgate.agi.settings import MAX_PROCESSES
from pbxgate.cli.context import AppContext, pass_app

if TYPE_CHECKING:
    from pbxgate.ami.live import LiveHub
    from pbxgate.config import Settings
    from pbxgate.web.settings import WebSettings


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where FastAGI listens. Default: [agi] listen_host:listen_port (127.0.0.1:4573).",
)
@click.option("--no-worker", is_flag=True, help="Serve FastAGI only; deliver elsewhere.")
@click.option(
    "--processes",
    type=click.IntRange(0, MAX_PROCESSES),
    metavar="N",
    help="FastAGI processes (0: in the service's own). Default: [agi] processes (1).",
)
@pass_app
def serve(app: AppContext, listen: str | None, no_worker: bool, processes: int | None) -> None:
    """Run pbxgate's service: FastAGI for AGI(agi://…) and the notification worker.

    With [web] enabled = true it serves the web console too ([web] listen), its Live page
    showing each call the moment FastAGI or the manager sees it. Stops cleanly on SIGTERM or
    Ctrl-C: open AGI sessions finish (up to [agi] drain_timeout seconds), then the worker stops.

    \b
    Example:
      pbxgate serve --listen 127.0.0.1:4573
      pbxgate serve --processes 2     # FastAGI on two cores (a PBX with hundreds of calls a second)
      # dialplan: same => n,AGI(agi://127.0.0.1/notify)
    """
    from pbxgate.agi.runner import loop_factory, parse_listen, run_service  # noqa: PLC0415
    from pbxgate.agi.settings import AgiSettings  # noqa: PLC0415
    from pbxgate.cdr.report.schedule import schedules_task  # noqa: PLC0415
    from pbxgate.web.settings import WebSettings  # noqa: PLC0415

    address = parse_listen(listen) if listen else None
    settings = app.settings
    agi = settings.get(AgiSettings)
    count = agi.processes if processes is None else processes
    console = _console_socket(settings.get(WebSettings))

    def ready(bound: tuple[str, int]) -> None:
        # What start-up made (modules, settings) lives as long as the process: out of the
        # collector's way, so that a full collection, which stops every call in flight, walks
        # only what was made since (6-10 ms less at 50 calls in flight).
        gc.collect()
        gc.freeze()
        worker = "without a worker" if no_worker else "with the delivery worker process"
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        where = f"{count} process{'es' if count > 1 else ''} of its own" if count else "in process"
        click.echo(
            f"pbxgate serve: FastAGI on {bound[0]}:{bound[1]} ({where}), {worker} ({loop} loop)",
            err=True,
        )
        if console is not None:
            from pbxgate.web.embedded import address as web_address  # noqa: PLC0415

            click.echo(f"pbxgate serve: web console on http://{web_address(console)}/", err=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reports = schedules_task(settings, stop)  # None unless [report.schedules] are set
        live, web = _console_task(settings, stop, console)
        try:
            if no_worker:
                stats = await run_service(
                    settings,
                    stop,
                    listen=address,
                    on_ready=ready,
                    worker=None,
                    live=live,
                    apart=True,
                    processes=count,
                )
            else:
                stats = await run_service(
                    settings,
                    stop,
                    listen=address,
                    on_ready=ready,
                    live=live,
                    apart=True,
                    processes=count,
                )
        finally:
            if web is not None:
                stop.set()  # the service stopped (or never started): the console with it
                await web
        if reports is not None:
            await reports
        click.echo(
            f"pbxgate serve: stopped after {stats.completed} AGI session(s)"
            f" ({stats.timed_out} timed out, {stats.protocol_errors} malformed)",
            err=True,
        )

    with asyncio.Runner(loop_factory=loop_factory(agi)) as runner:
        runner.run(main())


def _console_socket(web: WebSettings) -> socket.socket | None:
    """The web console's listening socket, with [web] enabled (bound before the service
    starts: a port in use is one line)."""
    if not web.enabled:
        return None
    from pbxgate.web.embedded import bind  # noqa: PLC0415

    return bind(web.listen)


def _console_task(
    settings: Settings, stop: asyncio.Event, sock: socket.socket | None
) -> tuple[LiveHub | None, asyncio.Future[None] | None]:
    """The live calls hub for the manager's follower (with [ami] enabled) and the console's
    task, both None without a console."""
    if sock is None:
        return None, None
    from pbxgate.ami.live import LiveHub  # noqa: PLC0415
    from pbxgate.ami.settings import AmiSettings  # noqa: PLC0415
    from pbxgate.web.embedded import run_console  # noqa: PLC0415

    live = LiveHub() if settings.get(AmiSettings).enabled else None
    return live, asyncio.ensure_future(run_console(settings, stop, sock, live))
