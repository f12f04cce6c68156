"""``pbxgate config``: look at the effective settings."""

from __future__ import annotations

import json

import click

# Importing the settings modules registers every section, so that show lists them all.
import pbxgate.agi.settings
import pbxgate.cdr.report.settings
import pbxgate.cdr.settings
import pbxgate.notify.settings  # noqa: F401
from pbxgate.cli.context import AppContext, pass_app
from pbxgate.config import to_toml


@click.group()
def config() -> None:
    """Inspect pbxgate's settings (file + PBXGATE_* environment).

    \b
    Example:
      pbxgate --config /etc/pbxgate/config.toml config show
    """


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of TOML.")
@pass_app
def show(app: AppContext, as_json: bool) -> None:
    """Print the effective settings with every secret masked.

    \b
    Example:
      PBXGATE_CDR_TIMEZONE=Europe/Moscow pbxgate config show
    """
    settings = app.settings
    settings.check_sections()
    data = settings.describe()
    origin = str(settings.path) if settings.path else "(no file: defaults and environment)"
    if as_json:
        click.echo(json.dumps({"file": origin, "settings": data}, indent=2, ensure_ascii=False))
        return
    click.echo(f"# file: {origin}")
    click.echo(to_toml(data), nl=False)
