"""``pbxgate serve``: the long-running service (FastAGI, delivery worker, schedules)."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
def serve() -> None:
    """Run pbxgate's service: FastAGI listener, notification worker and report schedules."""
