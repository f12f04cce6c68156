"""Delivery latency through the outbox to a local fake VK: idle, and a burst under a 20/s limit.

Latency is measured from the moment ``accept`` returns (the event is committed; the AGI session
would now return to the dialplan) to the moment the fake VK shows the message. The fake VK
answers error 6 when more than ``--rate`` requests arrive within any one second, so the run also
proves the client-side limiter keeps bursts under VK's limit.

    .venv/bin/python benchmarks/notify_delivery.py --idle 50 --burst 500 --rate 20
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pbxgate.config import Settings
from pbxgate.notify import service
from pbxgate.notify.channels.vk import random_id
from pbxgate.notify.events import CallEvent
from pbxgate.notify.fakevk import FakeVkServer, FakeVkState


def event(n: int) -> CallEvent:
    uid = f"bench.{n}"
    return CallEvent(
        "incoming",
        uid,
        uid,
        "+79161234567",
        "",
        "74951234567",
        "PJSIP/trunk",
        "from-trunk",
        "74951234567",
        time.time(),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


class Watch:
    """Times at which the fake VK showed each random_id (monotonic, this process)."""

    def __init__(self, state: FakeVkState) -> None:
        self.shown: dict[int, float] = {}
        self.cond = threading.Condition()
        state.before_reply = self.on_reply

    def on_reply(self, form: dict[str, str], body: dict[str, Any]) -> None:
        if "response" in body:
            with self.cond:
                self.shown.setdefault(int(form["random_id"]), time.monotonic())
                self.cond.notify_all()

    def wait_for(self, rids: set[int], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: rids <= self.shown.keys(), timeout)


def produce(settings: Settings, numbers: range) -> dict[int, float]:
    sent_at = {}
    for n in numbers:
        ev = event(n)
        service.accept(settings, ev)
        sent_at[random_id(f"{ev.event_id}|vk|1001")] = time.monotonic()
    return sent_at


async def measure(args: argparse.Namespace, settings: Settings, watch: Watch) -> dict[str, Any]:
    stop = asyncio.Event()
    worker = asyncio.create_task(service.run_worker(settings, stop))
    # The first call also waits for the worker to start (imports, templates, first connection):
    # reported apart as "cold", not mixed into the idle figures.
    first = await asyncio.to_thread(produce, settings, range(-1, 0))
    assert await asyncio.to_thread(watch.wait_for, set(first), 30), "cold delivery timed out"
    cold = next(watch.shown[r] - t for r, t in first.items())
    idle: list[float] = []
    for n in range(args.idle):
        sent = await asyncio.to_thread(produce, settings, range(n, n + 1))
        ok = await asyncio.to_thread(watch.wait_for, set(sent), 30)
        assert ok, "idle delivery timed out"
        idle += [watch.shown[r] - t for r, t in sent.items()]
        await asyncio.sleep(0.1)  # let the bucket refill: each idle call is alone
    base = 1_000_000
    t0 = time.monotonic()
    burst_sent = await asyncio.to_thread(produce, settings, range(base, base + args.burst))
    enqueue_s = time.monotonic() - t0
    ok = await asyncio.to_thread(watch.wait_for, set(burst_sent), args.burst / args.rate * 3 + 30)
    assert ok, "burst delivery timed out"
    burst = [watch.shown[r] - t for r, t in burst_sent.items()]
    span = max(watch.shown[r] for r in burst_sent) - t0
    stop.set()
    await worker
    return {"cold": cold, "idle": idle, "burst": burst, "enqueue_s": enqueue_s, "span_s": span}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=int, default=50, help="idle calls, one at a time")
    ap.add_argument("--burst", type=int, default=500, help="calls enqueued at once")
    ap.add_argument("--rate", type=float, default=20.0, help="VK limit (fake VK and client)")
    args = ap.parse_args()
    state = FakeVkState(rate=args.rate)
    watch = Watch(state)
    server = FakeVkServer(0, state).start()
    with tempfile.TemporaryDirectory() as tmp:
        token = Path(tmp) / "vk.token"
        token.write_text("benchmark-community-token")
        raw = {
            "notify": {
                "outbox": str(Path(tmp) / "outbox.sqlite3"),
                "poll_interval": 0.5,
                "concurrency": 8,
                "vk": {
                    "enabled": True,
                    "token_file": str(token),
                    "recipients": ["1001"],
                    "api_base": server.base_url,
                    "rate_limit": args.rate,
                },
            }
        }
        settings = Settings(raw, environ={})
        try:
            res = asyncio.run(measure(args, settings, watch))
        finally:
            service.close_outboxes()
            server.stop()
    idle, burst = res["idle"], res["burst"]
    print(f"cold  first call after the worker starts: {res['cold'] * 1e3:.1f} ms")
    print(
        f"idle  n={len(idle):4d}  p50={statistics.median(idle) * 1e3:8.1f} ms"
        f"  p99={pct(idle, 99) * 1e3:8.1f} ms"
    )
    print(
        f"burst n={len(burst):4d}  p50={statistics.median(burst):8.2f} s "
        f"  p99={pct(burst, 99):8.2f} s   (enqueue {res['enqueue_s']:.2f} s,"
        f" last shown after {res['span_s']:.2f} s = {len(burst) / res['span_s']:.1f} msg/s)"
    )
    print(f"fake VK: {server.stats()}")
    assert server.state.rate_errors == 0, "the limiter let VK error 6 happen"
    assert len(server.state.shown) == 1 + len(idle) + len(burst)


if __name__ == "__main__":
    main()
