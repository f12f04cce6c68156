"""Assemble the worker from settings: channels, router, renderer, retry policy, outbox."""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from pbxgate.ami.settings import AmiSettings
from pbxgate.cdr.settings import CdrSettings
from pbxgate.config import Settings
from pbxgate.errors import ConfigError
from pbxgate.notify.channels.base import Channel
from pbxgate.notify.names import NameResolver
from pbxgate.notify.retry import RetryPolicy
from pbxgate.notify.routing import Router
from pbxgate.notify.service import open_outbox
from pbxgate.notify.settings import NotifySettings
from pbxgate.notify.templates import DEFAULTS, Renderer, read_template
from pbxgate.notify.timezone import load_zone
from pbxgate.notify.worker import Worker

if TYPE_CHECKING:
    import httpx

CHANNEL_NAMES = ("vk", "telegram", "email", "webhook")


def build_channel(
    name: str, ns: NotifySettings, transport: httpx.AsyncBaseTransport | None = None
) -> Channel:
    """One channel from its settings section (``transport`` replaces the network in tests)."""
    from pbxgate.notify.channels.email import EmailChannel  # noqa: PLC0415
    from pbxgate.notify.channels.telegram import TelegramChannel  # noqa: PLC0415
    from pbxgate.notify.channels.vk import VkChannel  # noqa: PLC0415
    from pbxgate.notify.channels.webhook import WebhookChannel  # noqa: PLC0415

    timeout = ns.http_timeout
    if name == "vk":
        return VkChannel(ns.vk, transport=transport, timeout=timeout)
    if name == "telegram":
        return TelegramChannel(ns.telegram, transport=transport, timeout=timeout)
    if name == "webhook":
        return WebhookChannel(ns.webhook, transport=transport, timeout=timeout)
    if name == "email":
        try:
            return EmailChannel(ns.email)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    raise ConfigError(f"unknown channel {name!r}", hint=", ".join(CHANNEL_NAMES))


def enabled_recipients(ns: NotifySettings) -> dict[str, list[str]]:
    sections: list[tuple[str, bool, list[str]]] = [
        ("vk", ns.vk.enabled, ns.vk.recipients),
        ("telegram", ns.telegram.enabled, ns.telegram.recipients),
        ("email", ns.email.enabled, ns.email.recipients),
        ("webhook", ns.webhook.enabled, ns.webhook.recipients),
    ]
    return {name: list(rcpts) for name, on, rcpts in sections if on}


def build_renderer(settings: Settings) -> Renderer:
    ns = settings.get(NotifySettings)
    cdr = settings.get(CdrSettings)
    sources = {
        kind: read_template(
            getattr(ns, f"{kind}_template"),
            getattr(ns, f"{kind}_template_file"),
            default,
            f"notify.{kind}_template",
        )
        for kind, default in DEFAULTS.items()
    }
    names = NameResolver(ns.phonebook, cdr.store_path())
    return Renderer(
        sources["incoming"],
        sources["missed"],
        load_zone(cdr.timezone),
        names,
        answered=sources["answered"],
        ended=sources["ended"],
        called_back=sources["called_back"],
    )


def build_worker(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> tuple[Worker, dict[str, Channel]]:
    ns = settings.get(NotifySettings)
    zone = load_zone(settings.get(CdrSettings).timezone)
    recipients = enabled_recipients(ns)
    router = Router.from_settings(ns.routes, recipients, zone)
    renderer = build_renderer(settings)
    channels = {name: build_channel(name, ns, transport) for name in recipients}
    policy = RetryPolicy(ns.backoff_initial, ns.backoff_max, ns.max_attempts)
    worker = Worker(
        open_outbox(ns, synchronous="NORMAL"),
        channels,
        router,
        renderer,
        policy=policy,
        clock=time.time,
        rng=random.Random(),
        lease=ns.lease_seconds,
        concurrency=ns.concurrency,
        follow=ns.follows(settings.get(AmiSettings).enabled),
        edit_delay=ns.edit_delay,
    )
    return worker, channels


__all__ = ["CHANNEL_NAMES", "build_channel", "build_renderer", "build_worker", "enabled_recipients"]
