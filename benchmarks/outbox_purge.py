"""How long the calls' commits wait while ``pbxgate notify purge`` runs, and how long it takes.

A SQLite outbox is filled with ``--events`` events, each a call's message sent to two
recipients (two deliveries and two message rows), half of them old enough to go; a second
process then commits one call's event every ``--every`` seconds (as ``pbxgate serve``'s outbox
writer would) while this one purges, and each commit's time is reported (p50, p99, max) with
the purge's own:

    .venv/bin/python benchmarks/outbox_purge.py --events 180000

``--url`` runs it on a shared outbox (PostgreSQL or MariaDB) instead: the outbox tables at that
URL are emptied first, so give it a scratch database.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox


def call(n: int) -> CallEvent:
    uid = f"1800000000.{n}"
    return CallEvent("incoming", uid, uid, "+79161234567", "", "74951234567", "PJSIP/trunk",
                     "from-trunk", "74951234567", time.time())  # fmt: skip


def open_box(where: str) -> Outbox:
    return Outbox.connect(where) if "://" in where else Outbox.open(Path(where))


def fill(where: str, events: int) -> None:
    """``events`` planned events, each sent to two recipients; the first half long ago."""
    open_box(where).close()
    old = [1000.0 if n < events // 2 else 9e9 for n in range(events)]  # the first half
    rows = [(f"incoming:{n}", "incoming", '{"caller_number":"+79161234567"}', old[n], 1)
            for n in range(events)]  # fmt: skip
    sent = [(f"incoming:{n}", channel, "1", "sent", 0.0, old[n], f"call-{n}", 10)
            for n in range(events) for channel in ("vk", "telegram")]  # fmt: skip
    shown = [(f"call-{n}", channel, "1", 10, "ref", old[n], old[n])
             for n in range(events) for channel in ("vk", "telegram")]  # fmt: skip
    events_sql = "INSERT INTO events (event_id, kind, payload, created_at, planned) VALUES"
    deliveries_sql = (
        "INSERT INTO deliveries (event_id, channel, recipient, state, next_attempt_at,"
        " updated_at, thread, stage) VALUES"
    )
    messages_sql = (
        "INSERT INTO messages (thread, channel, recipient, stage, ref, sent_at, updated_at) VALUES"
    )
    batches = ((events_sql, rows), (deliveries_sql, sent), (messages_sql, shown))
    if "://" not in where:
        conn = sqlite3.connect(where)
        with conn:
            for sql, batch in batches:
                conn.executemany(f"{sql} ({', '.join('?' * len(batch[0]))})", batch)
        conn.close()
        return
    engine = create_engine(where)
    tables = ", ".join(f"pbxgate_{table}" for table in ("deliveries", "messages", "events"))
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as conn:  # emptied, not deleted from: no dead rows from earlier runs
        if postgresql:
            conn.execute(text(f"TRUNCATE {tables}"))
        else:
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for table in tables.split(", "):
                conn.execute(text(f"TRUNCATE {table}"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
        for sql, batch in batches:
            width = len(batch[0])
            named = (
                sql.replace("INTO ", "INTO pbxgate_")
                + " ("
                + ", ".join(f":p{i}" for i in range(width))
                + ")"
            )
            for start in range(0, len(batch), 10000):
                chunk = [dict(zip([f"p{i}" for i in range(width)], row, strict=True))
                         for row in batch[start : start + 10000]]  # fmt: skip
                conn.execute(text(named), chunk)
    with engine.begin() as conn:  # statistics as the server keeps them for a table in use
        conn.execute(text("ANALYZE" if postgresql else f"ANALYZE TABLE {tables}"))
    engine.dispose()


def committer(where: str, every: float, stop: multiprocessing.synchronize.Event,
              waits: multiprocessing.Queue) -> None:  # type: ignore[type-arg]  # fmt: skip
    box = open_box(where)
    found: list[float] = []
    n = 0
    while not stop.is_set():
        started = time.perf_counter()
        box.enqueue(call(n))
        found.append(time.perf_counter() - started)
        n += 1
        time.sleep(every)
    box.close()
    waits.put(found)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=180000, help="events in the outbox")
    parser.add_argument("--every", type=float, default=0.01, help="seconds between calls")
    parser.add_argument("--url", help="a shared outbox's SQLAlchemy URL (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.url or str(Path(tmp) / "outbox.sqlite3")
        fill(where, args.events)
        stop = multiprocessing.Event()
        waits: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        calls = multiprocessing.Process(target=committer, args=(where, args.every, stop, waits))
        calls.start()
        time.sleep(1.0)  # the calls' commits before the purge
        box = open_box(where)
        started = time.perf_counter()
        removed = box.purge(sent_before=5000.0, dead=True)
        took = time.perf_counter() - started
        left = {t: box._query(f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("events", "messages")}
        box.close()
        time.sleep(0.5)
        stop.set()
        found = waits.get()
        calls.join()
    ms = [w * 1000 for w in found]
    print(
        f"purge: {removed} of {args.events * 2} deliveries in {took:.2f} s; left "
        f"{left['events']} events (with the calls') and {left['messages']} message rows"
    )
    print(f"calls' commits meanwhile: {len(ms)}; p50 {percentile(ms, 0.5):.2f} ms, "
          f"p99 {percentile(ms, 0.99):.2f} ms, max {max(ms):.2f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
