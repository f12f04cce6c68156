"""What every command receives: the loaded settings, built lazily from ``--config``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from pbxgate.config import Settings


@dataclass
class AppContext:
    config_path: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(self.config_path)
        return self._settings


pass_app = click.make_pass_decorator(AppContext, ensure=True)

__all__ = ["AppContext", "pass_app"]
