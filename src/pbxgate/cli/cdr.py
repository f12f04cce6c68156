"""``pbxgate cdr``: call history analytics over any Asterisk CDR store."""

from __future__ import annotations

import click


@click.group()
def cdr() -> None:
    """Query and import Asterisk call detail records (CDR)."""
