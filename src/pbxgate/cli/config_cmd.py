"""``pbxgate config``: look at the effective settings."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import click

# Importing the settings modules registers every section, so that show lists them all.
import pbxgate.agi.settings
import pbxgate.cdr.report.settings
import pbxgate.cdr.settings
import pbxgate.notify.settings  # noqa: F401
from pbxgate.cdr.settings import CdrSettings
from pbxgate.cli.context import SETTINGS_MODULES, AppContext, pass_app
from pbxgate.config import Settings, default_paths, registered_sections, to_toml
from pbxgate.configedit import set_value, write
from pbxgate.errors import ConfigError, InputError


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
    _zones_checked(settings.get(CdrSettings))
    data = settings.describe()
    origin = str(settings.path) if settings.path else "(no file: defaults and environment)"
    if as_json:
        click.echo(json.dumps({"file": origin, "settings": data}, indent=2, ensure_ascii=False))
        return
    click.echo(f"# file: {origin}")
    click.echo(to_toml(data), nl=False)


@config.command("set")
@click.argument("name")
@click.argument("value")
@pass_app
def set_(app: AppContext, name: str, value: str) -> None:
    """Set NAME (section.key, or section.table.key) to VALUE in the settings file.

    The same command run twice leaves the file as once; comments and other settings stay.
    The file is --config, else $PBXGATE_CONFIG, else ~/.config/pbxgate/config.toml (created).
    A secret belongs in a file of its own or the environment: set NAME_file or NAME_env.

    \b
    Examples:
      pbxgate config set report.smtp.port 8025
      pbxgate config set notify.vk.recipients '["123456789"]'
      pbxgate config set cdr.sources.freepbx.password_file /etc/pbxgate/cdr.pass
    """
    import os  # noqa: PLC0415

    path = app.config_path or Path(os.environ.get("PBXGATE_CONFIG") or default_paths()[0])
    if name.rsplit(".", 1)[-1] in ("password", "token"):
        raise InputError(
            f"{name} would put a secret on the command line",
            hint=f"set {name}_file (a file holding it) or {name}_env (a variable) instead",
        )
    text = set_value(path, name, value)
    import tomllib  # noqa: PLC0415

    check = Settings(tomllib.loads(text), path=path, environ={})  # the file, as it will be
    for module in SETTINGS_MODULES:
        importlib.import_module(module)
    check.check_names()
    _check_value(check, name.split(".", maxsplit=1)[0])
    write(path, text)
    click.echo(f"{path}: {name} = {value}")


def _check_value(settings: Settings, section: str) -> None:
    """The section read with the new value by its own rules (types, modes, ports...); a secret
    it names elsewhere need not be readable by whoever runs `config set`."""
    cls = registered_sections().get(section)
    if cls is None:
        return
    try:
        read = settings.get(cls)
        if isinstance(read, CdrSettings):
            _zones_checked(read)
    except ConfigError as exc:
        text = str(exc)
        if "_env names $" in text or "_file " in text:
            return
        raise ConfigError(f"{text}; nothing was written") from exc


def _zones_checked(cdr: CdrSettings) -> None:
    try:
        cdr.check_zones()
    except ValueError as exc:
        raise ConfigError(f"invalid [cdr] settings: {exc}") from None
