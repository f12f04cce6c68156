"""What every command receives: the loaded settings, built lazily from ``--config``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

import click

from pbxgate.config import Settings

# Every module that defines a settings section (pbxgate.config.section); light to import.
SETTINGS_MODULES = (
    "pbxgate.agi.settings",
    "pbxgate.ami.settings",
    "pbxgate.cdr.settings",
    "pbxgate.cdr.report.settings",
    "pbxgate.notify.settings",
    "pbxgate.queue.settings",
    "pbxgate.web.settings",
)


@dataclass
class AppContext:
    config_path: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The settings file, checked whole: an unknown section or key anywhere in it (a
        typo such as ``[ntoify.vk]``) stops the command with one line."""
        if self._settings is None:
            settings = Settings.load(self.config_path)
            for module in SETTINGS_MODULES:  # each registers its section on import
                importlib.import_module(module)
            settings.check_names()
            self._settings = settings
        return self._settings


pass_app = click.make_pass_decorator(AppContext, ensure=True)

__all__ = ["AppContext", "pass_app"]
