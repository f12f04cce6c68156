"""``pbxgate serve``: the long-running service (FastAGI listener and delivery worker)."""

from __future__ import annotations

import asyncio
import signal

import click

from pbxgate.cli.context import AppContext, pass_app


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    help="Where FastAGI listens. Default: [agi] listen_host:listen_port (127.0.0.1:4573).",
)
@click.option("--no-worker", is_flag=True, help="Serve FastAGI only; deliver elsewhere.")
@pass_app
def serve(app: AppContext, listen: str | None, no_worker: bool) -> None:
    """Run pbxgate's service: FastAGI for AGI(agi://…) and the notification worker.

    Stops cleanly on SIGTERM or Ctrl-C: open AGI sessions finish (up to [agi] drain_timeout
    seconds), then the worker stops.

    \b
    Example:
      pbxgate serve --listen 127.0.0.1:4573
      # dialplan: same => n,AGI(agi://127.0.0.1/notify)
    """
    from pbxgate.agi.runner import loop_factory, parse_listen, run_service  # noqa: PLC0415
    from pbxgate.agi.settings import AgiSettings  # noqa: PLC0415
    from pbxgate.cdr.report.schedule import schedules_task  # noqa: PLC0415

    address = parse_listen(listen) if listen else None
    settings = app.settings

    def ready(bound: tuple[str, int]) -> None:
        worker = "without a worker" if no_worker else "with the delivery worker"
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        click.echo(
            f"pbxgate serve: FastAGI on {bound[0]}:{bound[1]}, {worker} ({loop} loop)", err=True
        )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        reports = schedules_task(settings, stop)  # None unless [report.schedules] are set
        if no_worker:
            stats = await run_service(settings, stop, listen=address, on_ready=ready, worker=None)
        else:
            stats = await run_service(settings, stop, listen=address, on_ready=ready)
        if reports is not None:
            await reports
        click.echo(
            f"pbxgate serve: stopped after {stats.completed} AGI session(s)"
            f" ({stats.timed_out} timed out, {stats.protocol_errors} malformed)",
            err=True,
        )

    with asyncio.Runner(loop_factory=loop_factory(settings.get(AgiSettings))) as runner:
        runner.run(main())
