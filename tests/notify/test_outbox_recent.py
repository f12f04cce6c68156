"""``Outbox.recent``: the latest deliveries for the web console, on every backend (SQLite,
MariaDB, PostgreSQL), and the live page's follower of an outbox on each."""

from __future__ import annotations

from pathlib import Path

from pbxgate.notify.outbox import DeliveryRow, Outbox
from pbxgate.notify.settings import DatabaseSettings, NotifySettings
from pbxgate.web.livefeed import OutboxFollower

from .conftest import Place
from .helpers import make_event


def test_recent_is_newest_first_with_state_kind_and_error(place: Place) -> None:
    box = place.open()
    box.enqueue(make_event(1))
    box.enqueue(make_event(1, kind="missed", dialstatus="NOANSWER"))
    box.plan("incoming:1700000000.1", [("vk", "1"), ("email", "a@example.org")], now=100.0)
    box.plan("missed:1700000000.1", [("vk", "1")], now=101.0)
    first = {d.recipient: d for d in box.claim(now=102.0, lease=30.0, limit=2)}
    box.mark_dead(first["1"].id, now=103.0, reason="VK error 901")
    rows = box.recent(10)
    assert [(r.kind, r.channel, r.state) for r in rows] == [
        ("missed", "vk", "pending"),
        ("incoming", "email", "in-flight"),
        ("incoming", "vk", "dead"),
    ]
    assert rows[2] == DeliveryRow(first["1"].id, "incoming:1700000000.1", "incoming", "vk", "1",
                                  "dead", 1, "VK error 901", 103.0)  # fmt: skip
    assert box.recent(1) == rows[:1]
    assert box.recent(10, after=rows[1].id) == rows[:1]  # a follower's cursor
    assert box.recent(10, after=rows[0].id) == []


def test_the_live_pages_follower_reads_each_backend(place: Place) -> None:
    box: Outbox = place.open()
    box.enqueue(make_event(1, occurred_at=1000.0))
    box.plan("incoming:1700000000.1", [("vk", "1")], now=1000.0)
    if place.kind == "sqlite":
        ns = NotifySettings(outbox=Path(place.target))
    else:
        ns = NotifySettings(database=DatabaseSettings(url=place.target, node="web"))
    follower = OutboxFollower(ns, ttl=600.0, keep=5)
    try:
        state, events, rows = follower.poll(1100.0)
        assert state == "following" and [e.linkedid for e in events] == ["1700000000.1"]
        assert [r.recipient for r in rows] == ["1"]
        box.enqueue(make_event(2, occurred_at=1101.0))
        box.plan("incoming:1700000000.2", [("vk", "2")], now=1101.0)
        _, events, rows = follower.poll(1102.0 + 60)  # asked later: nothing is missed
        assert [e.linkedid for e in events] == ["1700000000.2"]
        assert [r.recipient for r in rows] == ["2"]
    finally:
        follower.close()
