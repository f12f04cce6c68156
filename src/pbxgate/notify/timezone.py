"""The PBX's time zone (``[cdr] timezone``) for message times and time-of-day routes."""

from __future__ import annotations

from datetime import datetime, tzinfo

from pbxgate.cdr.window import zone
from pbxgate.errors import ConfigError


def load_zone(name: str) -> tzinfo | None:
    """The zone as the CDR side reads it (:func:`pbxgate.cdr.window.zone`: "utc" too); None
    (this host's zone) for an empty name."""
    try:
        return zone(name)
    except ConfigError:
        raise ConfigError(
            f"unknown time zone {name!r} in [cdr] timezone", hint="e.g. Europe/Moscow"
        ) from None


def local_time(ts: float, zone: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ts, zone) if zone else datetime.fromtimestamp(ts).astimezone()


__all__ = ["load_zone", "local_time"]
