"""Shared builders for the notify tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pbxgate.notify.events import CallEvent


def make_event(n: int = 1, **kw: object) -> CallEvent:
    base: dict[str, object] = {
        "kind": "incoming",
        "uniqueid": f"1700000000.{n}",
        "linkedid": f"1700000000.{n}",
        "caller_number": "+79161234567",
        "caller_name": "",
        "did": "74951234567",
        "channel": f"PJSIP/trunk-{n:08x}",
        "context": "from-trunk",
        "extension": "74951234567",
        "occurred_at": 1700000000.0 + n,
    }
    base.update(kw)
    return CallEvent(**base)  # type: ignore[arg-type]


def stored_ids(path: Path) -> list[str]:
    """What another connection (another process, after a crash) finds in the outbox."""
    con = sqlite3.connect(path)
    try:
        return [r[0] for r in con.execute("SELECT event_id FROM events ORDER BY event_id")]
    finally:
        con.close()
