"""``pbxgate glbp``: the GLBP engine, IOS shell and simulator."""

from __future__ import annotations

import click


@click.group()
def glbp() -> None:
    """Cisco GLBP: engine, IOS commands, simulator and packet codec."""
