"""kill -9 the worker mid-delivery, restart it: every event reaches VK, none is shown twice.

The fake VK keeps exactly what a VK user would see: it deduplicates only by ``random_id`` per
sender, as VK does. The worker runs as a real subprocess against it on 127.0.0.1.
"""

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from pbxgate.notify.fakevk import FakeVkServer, FakeVkState
from pbxgate.notify.outbox import NUMBERS, Outbox

from .helpers import make_event

EVENTS = 30
KILL_AT = 7  # the request during which the worker dies (VK has already shown that message)


def write_config(tmp_path: Path, base_url: str) -> Path:
    token = tmp_path / "vk.token"
    token.write_text("community-token-for-tests\n")
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[notify]
outbox = "{tmp_path / "outbox.sqlite3"}"
poll_interval = 0.05
concurrency = 4
[notify.vk]
enabled = true
token_file = "{token}"
recipients = ["1001"]
api_base = "{base_url}"
rate_limit = 1000
"""
    )
    return config


def worker_cmd(config: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pbxgate.cli.main",
        "--config",
        str(config),
        "notify",
        "worker",
        *extra,
    ]


def test_kill_9_mid_delivery_loses_nothing_and_shows_nothing_twice(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path / "outbox.sqlite3")
    events = [make_event(n) for n in range(1, EVENTS + 1)]
    for event in events:
        assert box.enqueue(event)

    killed = threading.Event()
    holder: dict[str, subprocess.Popen[bytes]] = {}
    state = FakeVkState(rate=1000)

    answered = [0]
    count_lock = threading.Lock()

    def before_reply(form: dict[str, str], body: dict[str, Any]) -> None:
        with count_lock:
            answered[0] += 1
            fire = answered[0] == KILL_AT
        if fire:
            proc = holder["proc"]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed.set()

    state.before_reply = before_reply
    server = FakeVkServer(0, state).start()
    try:
        config = write_config(tmp_path, server.base_url)
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        holder["proc"] = subprocess.Popen(worker_cmd(config), env=env, stderr=subprocess.PIPE)
        assert killed.wait(60), "the worker never reached the fake VK"
        assert holder["proc"].returncode == -signal.SIGKILL
        holder["proc"].stderr.close()  # type: ignore[union-attr]

        (mid,) = box.status()
        assert mid.in_flight >= 1, "the kill landed mid-delivery"
        assert mid.sent < EVENTS

        again = subprocess.run(
            worker_cmd(config, "--until-idle"),
            check=False,
            env=env,
            capture_output=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr.decode()
        assert b"resending" in again.stderr  # the orphans were picked up
    finally:
        server.stop()

    shown = [s.random_id for s in state.shown]
    # every delivery's own number (VK's random_id), as the outbox gave it, in both processes
    numbered = Outbox.open(tmp_path / "outbox.sqlite3")
    ids = [row[0] for row in numbered._query("SELECT id FROM deliveries")]
    expected = {(numbered.number_base + i) % NUMBERS + 1 for i in ids}
    numbered.close()
    assert len(ids) == len(events)
    assert len(shown) == EVENTS  # none lost, none twice
    assert set(shown) == expected
    assert state.duplicates >= 1  # a resend happened, and VK's dedup absorbed it
    # A request cut off mid-body by the kill reaches VK incomplete and is refused; never more.
    assert EVENTS + state.duplicates <= state.requests <= EVENTS + state.duplicates + 4
    assert state.rate_errors == 0
    (final,) = box.status()
    assert (final.sent, final.pending, final.in_flight, final.dead) == (EVENTS, 0, 0, 0)
    box.close()


def test_sigterm_stops_the_worker_cleanly(tmp_path: Path) -> None:
    box = Outbox.open(tmp_path / "outbox.sqlite3")
    box.enqueue(make_event(1))
    delivered = threading.Event()
    state = FakeVkState(rate=1000)
    state.before_reply = lambda form, body: delivered.set()
    server = FakeVkServer(0, state).start()
    try:
        config = write_config(tmp_path, server.base_url)
        proc = subprocess.Popen(worker_cmd(config), stderr=subprocess.PIPE)
        assert delivered.wait(60), "the worker never reached the fake VK"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
    finally:
        server.stop()
    # The lock went with the worker: a new one may start at once.
    box.acquire_worker_lock()
    box.close()
