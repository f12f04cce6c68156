"""The ``pbxgate`` command: one group per area, errors as one line and a non-zero exit."""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from pathlib import Path

import click

from pbxgate import __version__
from pbxgate.cli.context import AppContext
from pbxgate.errors import PbxgateError
from pbxgate.optional import missing

# Each area's commands are imported when they are asked for: `pbxgate glbp` does not load
# SQLAlchemy, `pbxgate cdr` does not load the GLBP simulator (start-up is most of a short
# command's time).
AREAS = {
    "ami": "pbxgate.cli.ami:ami",
    "cdr": "pbxgate.cli.cdr:cdr",
    "config": "pbxgate.cli.config_cmd:config",
    "glbp": "pbxgate.cli.glbp:glbp",
    "notify": "pbxgate.cli.notify:notify",
    "queue": "pbxgate.cli.queue:queue",
    "serve": "pbxgate.cli.serve:serve",
    "web": "pbxgate.cli.web:web",
}


# What `pbxgate --help` says of each area, without importing it (SQLAlchemy alone takes a
# quarter of a second); a test checks these against the commands' own first lines.
SUMMARIES = {
    "ami": "Asterisk's calls live, from the manager interface (AMI).",
    "cdr": "Query and import Asterisk call detail records (CDR).",
    "config": "Inspect pbxgate's settings (file + PBXGATE_* environment).",
    "glbp": "Cisco GLBP: engine, IOS commands, simulator and packet codec.",
    "notify": "Incoming-call notifications through AGI and a durable outbox.",
    "queue": "Call-centre queues from Asterisk's queue_log.",
    "serve": "Run pbxgate's service: FastAGI for AGI(agi://…) and the notification worker.",
    "web": "The web console: today's calls, the call list, for named users, in a browser.",
}


class AreaGroup(click.Group):
    """The top-level group, loading an area's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *AREAS})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in AREAS:
            module, _, name = AREAS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), name)
            if cmd_name == "cdr":  # `pbxgate cdr report` lives in its own module
                command.add_command(importlib.import_module("pbxgate.cli.report").report)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=AreaGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Settings file (TOML). Default: $PBXGATE_CONFIG, ~/.config/pbxgate/config.toml, "
    "/etc/pbxgate/config.toml.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logging.")
@click.option("-v", "--verbose", is_flag=True, help="Log what pbxgate does to stderr.")
@click.version_option(__version__, prog_name="pbxgate")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool, verbose: bool) -> None:
    """pbxgate: call notifications, CDR analytics and GLBP for Asterisk and network admins.

    \b
    Example:
      pbxgate cdr generate --days 7 && pbxgate cdr stats --today
    """
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = AppContext(config_path=config_path, debug=debug)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; library errors become ``error: ...`` on stderr and their exit code."""
    args = sys.argv[1:] if argv is None else argv
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=args, prog_name="pbxgate", standalone_mode=False)
    except PbxgateError as exc:
        _traceback(args)
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "pbxgate"
        click.echo(f"error: {exc.format_message()} (see `{where} --help`)", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the user gave that cannot be written or read, a full disk
        _traceback(args)
        reason = exc.strerror or str(exc)
        if exc.filename is not None:
            click.echo(f"error: {exc.filename}: {reason}", err=True)
            return 2
        click.echo(f"error: {reason}", err=True)
        return 1
    except Exception as exc:  # a bug: say so in one line, the traceback is one flag away
        _traceback(args)
        extra = missing(exc) if isinstance(exc, ModuleNotFoundError) else None
        if extra is not None:  # an optional package this command needs
            click.echo(f"error: {extra}", err=True)
            return extra.exit_code
        click.echo(
            f"error: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True
        )
        return 70
    return code if isinstance(code, int) else 0


def _traceback(args: list[str]) -> None:
    """With ``--debug``, the traceback of the error being handled, before its line: the exit
    status stays the error's own (a script's check must not change with the flag)."""
    if "--debug" in args:
        traceback.print_exc()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
