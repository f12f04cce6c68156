"""``pbxgate notify status`` as data, then as text: pure functions over outbox snapshots."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict
from typing import Any

from pbxgate.notify.outbox import ChannelStatus, DeadLetter
from pbxgate.notify.recipients import redact


def status_data(
    backlog: int, channels: Sequence[ChannelStatus], dead: Sequence[DeadLetter]
) -> dict[str, Any]:
    return {
        "backlog": backlog,
        "channels": [asdict(c) for c in channels],
        # rows from before references may hold a webhook URL whole: shown redacted anyway
        "dead_letters": [{**asdict(d), "recipient": redact(d.recipient)} for d in dead],
    }


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def status_lines(data: dict[str, Any], now: float) -> Iterator[str]:
    yield f"events waiting to be planned: {data['backlog']}"
    if not data["channels"]:
        yield "no deliveries yet"
    else:
        head = (
            f"{'channel':<10}{'pending':>8}{'retrying':>9}{'in-flight':>10}{'sent':>8}{'dead':>6}"
        )
        yield head + "  oldest pending"
    for c in data["channels"]:
        oldest = c["oldest_pending_at"]
        age = _age(now - oldest) if oldest is not None else "-"
        yield (
            f"{c['channel']:<10}{c['pending']:>8}{c['retrying']:>9}{c['in_flight']:>10}{c['sent']:>8}"
            f"{c['dead']:>6}  {age}"
        )
        if c["last_error"]:
            yield f"  last error ({_age(now - c['last_error_at'])} ago): {c['last_error']}"
    if data["dead_letters"]:
        yield "dead letters (newest first; pbxgate notify retry sends them again):"
    for d in data["dead_letters"]:
        yield f"  #{d['id']} {d['event_id']} {d['channel']}->{d['recipient']}: {d['reason']}"


__all__ = ["status_data", "status_lines"]
