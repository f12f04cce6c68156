"""Two or more ``pbxgate serve`` nodes on one shared outbox, as processes, and a simulated
Asterisk that reaches them the way ``hagi://`` and a check of ``${PBXGATE_EVENT}`` do: for
the kill -9 test and its benchmark (benchmarks/two_nodes.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pbxgate.notify.fakevk import FakeVkServer, FakeVkState, Shown
from tests.agi.fakes import default_responder, environment

PEER = 1001


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    def __init__(self, name: str, root: Path, dsn: str, vk: str, *, lease: float = 4.0) -> None:
        self.name = name
        self.port = free_port()
        self.log = root / f"{name}.log"
        token = root / "vk.token"
        token.write_text("two-nodes-token\n")
        self.config = root / f"{name}.toml"
        self.config.write_text(
            "\n".join([
                "[notify]",
                'follow = "on"',
                "edit_delay = 0.3",
                "poll_interval = 0.1",
                f"lease_seconds = {lease:g}",
                "backoff_initial = 0.2",
                "[notify.database]",
                f'url = "{dsn}"',
                f'node = "{name}"',
                "[notify.vk]",
                "enabled = true",
                f'token_file = "{token}"',
                f'recipients = ["{PEER}"]',
                f'api_base = "{vk}"',
                "rate_limit = 500",
                "[agi]",
                f"listen_port = {self.port}",
            ]) + "\n",
            encoding="utf-8",
        )  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pbxgate.cli.main", "serve"],
                env={**os.environ, "PBXGATE_CONFIG": str(self.config)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.02)
        raise AssertionError(f"{self.name} is not listening: {self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def session(port: int, env: bytes, respond: object) -> bool:
    """One AGI() call; True when the node said the event is queued (PBXGATE_EVENT set)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(env)
    told = False
    try:
        while line := await reader.readline():
            # queued, or skipped: already stored (by a node killed before it could answer)
            told = told or line in (b'SET VARIABLE "PBXGATE_EVENT" "queued"\n',
                                    b'SET VARIABLE "PBXGATE_EVENT" "skipped"\n')  # fmt: skip
            writer.write(respond(line))  # type: ignore[operator]
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return told


async def call_through(nodes: list[Node], first: int, env: bytes, respond: object) -> float:
    """As the dialplan does with hagi:// and a check of ${PBXGATE_EVENT}: the next node when
    one refuses or drops the session before queueing; returns the seconds it took."""
    started = time.perf_counter()
    for attempt in range(40):
        node = nodes[(first + attempt) % len(nodes)]
        try:
            if await session(node.port, env, respond):
                return time.perf_counter() - started
        except OSError:
            pass
        await asyncio.sleep(0.01 if attempt % 2 == 0 else 0.05)  # both tried: a moment
    raise AssertionError("no node queued the event")


@dataclass
class ChaosRun:
    shown: list[Shown]  # what VK shows at the end
    holds: list[float]  # seconds each AGI step took, failovers included
    kills: int
    settled: float  # seconds from the last call's end until every message was final
    duplicates: int  # sends VK recognised as repeats (random_id) and did not show again


def chaos(
    dsn: str,
    root: Path,
    *,
    calls: int,
    spacing: float,
    kill_every: float,
    concurrency: int = 6,
    lease: float = 4.0,
    kills: int = 0,
) -> ChaosRun:
    """Two nodes on the shared outbox at ``dsn``; ``calls`` calls (an incoming step, then a
    missed step 0.2 s later) arrive every ``spacing`` seconds through either node, while one
    node after the other is killed with SIGKILL every ``kill_every`` seconds and started again.
    The calls are spread over at least ``kills`` kills, however long a node takes to start on
    a loaded machine: call n waits for the (n+1)·kills/calls-th. Returns once every call's
    message is final in VK (or after 60 s)."""
    state = FakeVkState(rate=10_000)
    vk = FakeVkServer(state=state).start()
    nodes = [Node(n, root, dsn, vk.base_url, lease=lease) for n in ("node-a", "node-b")]
    done = threading.Event()

    def killer() -> None:
        turn = 0
        while not done.wait(kill_every):
            node = nodes[turn % 2]
            node.kill()
            node.start()
            turn += 1

    async def traffic() -> list[float]:
        gate = asyncio.Semaphore(concurrency)

        async def one(n: int) -> list[float]:
            uid = f"1733.{n}"
            caller = f"8499{n:07d}"
            await asyncio.sleep(n * spacing)  # calls arrive over time
            deadline = time.monotonic() + 60  # (a killer that failed leaves kills short)
            while sum(node.kills for node in nodes) < (n + 1) * kills // calls:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.02)
            async with gate:
                incoming = environment("notify?x=1", uniqueid=uid, callerid=caller)
                held = [await call_through(nodes, n, incoming, default_responder())]
            await asyncio.sleep(0.2)
            async with gate:
                missed = environment("missed?dialstatus=NOANSWER", uniqueid=uid, callerid=caller)
                held.append(await call_through(nodes, n + 1, missed, default_responder()))
            return held

        results = await asyncio.gather(*(one(n) for n in range(calls)))
        return [h for pair in results for h in pair]

    try:
        for node in nodes:
            node.start()
        chaos_thread = threading.Thread(target=killer)
        chaos_thread.start()
        try:
            holds = asyncio.run(traffic())
        finally:
            done.set()
            chaos_thread.join()
        ended = time.monotonic()
        settled = float("nan")
        while time.monotonic() < ended + 60:
            with state.lock:
                final = sum(s.message.startswith("Пропущенный звонок") for s in state.shown)
            if final >= calls:
                settled = time.monotonic() - ended
                break
            time.sleep(0.05)
        time.sleep(1.0)  # anything still on its way would show now
    finally:
        for node in nodes:
            node.stop()
        vk.stop()
    with state.lock:
        return ChaosRun(list(state.shown), holds, sum(n.kills for n in nodes), settled,
                        state.duplicates)  # fmt: skip


__all__ = ["PEER", "ChaosRun", "Node", "call_through", "chaos", "free_port", "session"]
