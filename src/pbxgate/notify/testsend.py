"""``pbxgate notify test <channel>``: one made-up call rendered and sent right now."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pbxgate.config import Settings
from pbxgate.errors import ConfigError
from pbxgate.notify.build import build_channel, build_renderer
from pbxgate.notify.channels.base import Dead, Retry, Sent
from pbxgate.notify.events import CallEvent
from pbxgate.notify.recipients import ref
from pbxgate.notify.settings import NotifySettings

if TYPE_CHECKING:
    import httpx


def sample_event(now: float) -> CallEvent:
    uid = f"test-{now:.6f}"
    return CallEvent(
        kind="incoming",
        uniqueid=uid,
        linkedid=uid,
        caller_number="+79161234567",
        caller_name="pbxgate test",
        did="",
        channel="Local/test@pbxgate",
        context="pbxgate-test",
        extension="s",
        occurred_at=now,
    )


async def send_test(
    settings: Settings,
    channel_name: str,
    recipients: list[str],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    now: float | None = None,
) -> list[tuple[str, str, str]]:
    """Send to each recipient; return (recipient, "sent" | "retry later" | "refused", detail)."""
    ns = settings.get(NotifySettings)
    section = getattr(ns, channel_name)
    targets = recipients or list(section.recipients)
    if not targets:
        raise ConfigError(
            f"no recipients for {channel_name}",
            hint=f"set [notify.{channel_name}] recipients or pass --to",
        )
    when = time.time() if now is None else now
    event = sample_event(when)
    message = build_renderer(settings).render(event)
    channel = build_channel(channel_name, ns, transport)
    results = []
    try:
        for recipient in targets:
            key = f"{event.event_id}|{ref(recipient)}"  # no webhook secret in a header either
            outcome = await channel.send(message, recipient, key)
            if isinstance(outcome, Sent):
                results.append((recipient, "sent", outcome.detail))
            elif isinstance(outcome, Retry):
                results.append((recipient, "retry later", outcome.reason))
            else:
                assert isinstance(outcome, Dead)
                results.append((recipient, "refused", outcome.reason))
    finally:
        await channel.aclose()
    return results


__all__ = ["sample_event", "send_test"]
