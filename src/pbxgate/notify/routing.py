"""Routing rules: which (channel, recipient) pairs a call event goes to.

Without ``[notify.routes.<name>]`` tables every enabled channel gets every event for all its
recipients. With routes, an event goes to the union of the matching routes' targets. A route
matches when every condition it sets holds: event kind, DID, caller and PBX (regular
expressions matched in full), time of day (``HH:MM-HH:MM`` in the PBX's zone, wrapping
midnight when the end is earlier) and weekday. Time is the moment the AGI saw the call, so a
retry a day later routes the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import time, tzinfo

from pbxgate.errors import ConfigError
from pbxgate.notify.events import KINDS, CallEvent
from pbxgate.notify.settings import RouteSettings
from pbxgate.notify.timezone import local_time

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Route:
    channels: tuple[str, ...]
    recipients: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    did: re.Pattern[str] | None = None
    caller: re.Pattern[str] | None = None
    pbx: re.Pattern[str] | None = None
    hours: tuple[time, time] | None = None
    weekdays: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, rs: RouteSettings, where: str) -> Route:
        if not rs.channels:
            raise ConfigError(f"{where}: a route needs channels = [...]")
        bad_kind = set(rs.kinds) - set(KINDS)
        if bad_kind:
            raise ConfigError(f"{where}.kinds: unknown kind {sorted(bad_kind)[0]!r}")
        try:
            days = frozenset(WEEKDAYS.index(d.strip().lower()[:3]) for d in rs.weekdays)
        except ValueError:
            raise ConfigError(f"{where}.weekdays: use mon, tue, ... sun") from None
        return cls(
            channels=tuple(rs.channels),
            recipients=tuple(rs.recipients),
            kinds=frozenset(rs.kinds),
            did=_regex(rs.did, f"{where}.did"),
            caller=_regex(rs.caller, f"{where}.caller"),
            pbx=_regex(rs.pbx, f"{where}.pbx"),
            hours=_hours(rs.hours, f"{where}.hours") if rs.hours else None,
            weekdays=days,
        )

    def matches(self, event: CallEvent, zone: tzinfo | None) -> bool:
        if self.kinds and event.kind not in self.kinds:
            return False
        if self.did and not self.did.fullmatch(event.did):
            return False
        if self.caller and not self.caller.fullmatch(event.caller_number):
            return False
        if self.pbx and not self.pbx.fullmatch(event.pbx):
            return False
        if self.hours is None and not self.weekdays:
            return True
        when = local_time(event.occurred_at, zone)
        if self.weekdays and when.weekday() not in self.weekdays:
            return False
        return self.hours is None or _in_hours(when.time(), *self.hours)


def _regex(text: str, where: str) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise ConfigError(f"{where} is not a valid regular expression: {exc}") from exc


def _hours(text: str, where: str) -> tuple[time, time]:
    try:
        start, end = (time.fromisoformat(part.strip()) for part in text.split("-"))
    except ValueError:
        raise ConfigError(f"{where} must look like 09:00-18:00, not {text!r}") from None
    return start, end


def _in_hours(t: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= t < end
    return t >= start or t < end  # wraps midnight: 22:00-06:00


class Router:
    def __init__(
        self, routes: Sequence[Route], recipients: Mapping[str, Sequence[str]], zone: tzinfo | None
    ) -> None:
        self.routes = list(routes)
        self.recipients = {k: list(v) for k, v in recipients.items()}
        self.zone = zone

    @classmethod
    def from_settings(
        cls,
        routes: Mapping[str, RouteSettings],
        recipients: Mapping[str, Sequence[str]],
        zone: tzinfo | None,
    ) -> Router:
        parsed = {
            name: Route.from_settings(r, f"notify.routes.{name}") for name, r in routes.items()
        }
        for name, route in parsed.items():
            unknown = [c for c in route.channels if c not in recipients]
            if unknown:
                raise ConfigError(
                    f"notify.routes.{name} names channel {unknown[0]!r}, which is not enabled",
                    hint=f"enabled: {', '.join(sorted(recipients)) or 'none'}",
                )
        return cls(list(parsed.values()), recipients, zone)

    def targets(self, event: CallEvent) -> list[tuple[str, str]]:
        """The (channel, recipient) pairs for ``event``, in a stable order, without repeats."""
        if not self.routes:
            pairs = [(ch, r) for ch, rs in self.recipients.items() for r in rs]
        else:
            pairs = []
            for route in self.routes:
                if route.matches(event, self.zone):
                    for ch in route.channels:
                        pairs += [(ch, r) for r in route.recipients or self.recipients[ch]]
        return list(dict.fromkeys(pairs))

    def all_recipients(self) -> list[str]:
        """Every recipient a channel or a route names."""
        found = [r for rs in self.recipients.values() for r in rs]
        found += [r for route in self.routes for r in route.recipients]
        return list(dict.fromkeys(found))


__all__ = ["Route", "Router"]
