"""``pbxgate notify``: incoming-call notifications (VK, Telegram, e-mail, webhook)."""

from __future__ import annotations

import click


@click.group()
def notify() -> None:
    """Incoming-call notifications through AGI and a durable outbox."""
