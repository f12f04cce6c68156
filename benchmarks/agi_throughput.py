"""FastAGI sessions per second at 200 concurrent connections: pbxgate against panoramisk.

Each session is what Asterisk does for ``AGI(agi://127.0.0.1/notify)``: connect, send a
512-byte environment block shaped like the one captured from Asterisk 22.10.1, answer every
command with ``200 result=1``, until the server closes. The load generator and each server run
in separate processes on 127.0.0.1.

Servers measured:

* ``pbxgate-echo``: pbxgate's FastAgiServer with a handler that sends one ``VERBOSE`` command
  and closes (the same work as the panoramisk handler: a like-for-like comparison);
* ``panoramisk``: panoramisk 1.4's ``fast_agi.Application`` with the same handler, run from a
  separate venv (``python3 -m venv /tmp/bench-venv && /tmp/bench-venv/bin/pip install
  panoramisk``); it is never a pbxgate dependency;
* ``pbxgate-notify``: ``pbxgate serve --no-worker``, the real handler (GET VARIABLE, durable
  outbox commit with fsync by the service's outbox writer process, SET VARIABLE).

A server's CPU counts its child processes' too.

Run:  .venv/bin/python benchmarks/agi_throughput.py [--seconds 5] [--concurrency 200]
      [--linkedid-in-url]   # the dialplan docs/agi.md advises: no GET VARIABLE
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
BENCH_VENV = Path(os.environ.get("PBXGATE_BENCH_VENV", "/tmp/bench-venv"))

ENV_BLOCK = (
    b"agi_network: yes\nagi_network_script: notify\n"
    b"agi_request: agi://127.0.0.1:4573/notify\n"
    b"agi_channel: Local/100@from-trunk-00000004;2\nagi_language: en\nagi_type: Local\n"
    b"agi_uniqueid: %d.%d\nagi_version: 22.10.1\nagi_callerid: 84991111111\n"
    b"agi_calleridname: Oleg Ivanov\nagi_callingpres: 0\nagi_callingani2: 0\n"
    b"agi_callington: 0\nagi_callingtns: 0\nagi_dnid: unknown\nagi_rdnis: unknown\n"
    b"agi_context: from-trunk\nagi_extension: 100\nagi_priority: 7\nagi_enhanced: 0.0\n"
    b"agi_accountcode: \nagi_threadid: 140301540607680\n\n"
)


# -- servers (each runs in its own process) ----------------------------------------------------


def serve_pbxgate_echo(use_uvloop: bool = False) -> None:
    from pbxgate.agi.fastagi import AgiConnection, FastAgiServer
    from pbxgate.agi.settings import AgiSettings

    async def echo(conn: AgiConnection) -> None:
        await conn.command("VERBOSE", "hi", 1)

    async def main() -> None:
        server = FastAgiServer(AgiSettings(), {"notify": echo})
        await server.start("127.0.0.1", 0)
        print(f"READY {server.address[1]}", flush=True)
        await asyncio.Event().wait()

    if use_uvloop:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_panoramisk() -> None:
    from panoramisk.fast_agi import Application  # only in the benchmark venv

    async def echo(request):  # type: ignore[no-untyped-def]
        await request.send_command('VERBOSE "hi" 1')

    async def main() -> None:
        app = Application(loop=asyncio.get_running_loop())
        app.add_route("notify", echo)
        server = await asyncio.start_server(app.handler, "127.0.0.1", 0, backlog=1024)
        print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# -- load generator ------------------------------------------------------------------------------


class FakeAsterisk(asyncio.Protocol):
    """One simulated AGI() call: send the block, answer each command line, wait for EOF.

    A bare Protocol rather than streams, so the load generator costs as little CPU as it can
    (the servers share this machine's two cores with it).
    """

    def __init__(self, env: bytes, done: asyncio.Future[bool]) -> None:
        self.env = env
        self.done = done
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        replies = [b"200 result=1\n" for line in lines if line != b"HANGUP"]
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(exc is None)


# The dialplan docs/agi.md advises passes the linkedid in the URL (no GET VARIABLE):
# ``--linkedid-in-url``.
QUERY_BLOCK = ENV_BLOCK.replace(b"notify\n", b"notify?linkedid=%d.%d\n")


async def one_session(port: int, seq: int, base: int, query: bool = False) -> bool:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bool] = loop.create_future()
    env = QUERY_BLOCK % ((base, seq) * 3) if query else ENV_BLOCK % (base, seq)
    try:
        await loop.create_connection(lambda: FakeAsterisk(env, done), "127.0.0.1", port)
    except OSError:
        return False
    return await done


async def load(
    port: int, seconds: float, concurrency: int, query: bool = False
) -> tuple[int, int, float]:
    """Sessions completed and failed in ``seconds`` with ``concurrency`` callers in a loop."""
    done = failed = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))
    base = int(time.time() * 1000)

    async def caller() -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            if await one_session(port, next(counter), base, query):
                done += 1
            else:
                failed += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done, failed, time.perf_counter() - start


# -- orchestration ------------------------------------------------------------------------------


def start(
    argv: list[str], env: dict[str, str] | None, ready_on: str
) -> tuple[subprocess.Popen[str], int]:
    """Start a server and read its port from its ready line (on stdout or stderr)."""
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout and proc.stderr
    line = (proc.stdout if ready_on == "stdout" else proc.stderr).readline()
    match = re.search(r"(?:READY |FastAGI on 127\.0\.0\.1:)(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r} {proc.stderr.read()[:500]}")
    return proc, int(match.group(1))


def measure(
    name: str,
    argv: list[str],
    args: argparse.Namespace,
    env: dict[str, str] | None = None,
    ready_on: str = "stdout",
) -> None:
    proc, port = start(argv, env, ready_on)
    try:
        query = args.linkedid_in_url
        run_client(load(port, 0.5, args.concurrency, query))  # warm-up
        cpu_before = cpu_seconds(proc.pid)
        done, failed, elapsed = run_client(load(port, args.seconds, args.concurrency, query))
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait()
    rate = done / elapsed
    per_session = 1e6 * cpu / max(done, 1)
    print(
        f"{name:20} {done:8d} sessions {failed:5d} failed {elapsed:6.2f} s {rate:9.0f} /s"
        f" {per_session:7.0f} us server CPU/session (with its child processes)"
    )


def run_client(coro: Coroutine[Any, Any, T]) -> T:
    """Run the load generator on uvloop when installed: less of the shared CPU for the harness,
    the same harness for every server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (``pbxgate serve``'s outbox writer
    and worker) from Linux /proc, to compare servers on a busy host."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument(
        "--linkedid-in-url",
        action="store_true",
        help="the dialplan passes the linkedid (notify?linkedid=...): no GET VARIABLE",
    )
    parser.add_argument(
        "--only", choices=["pbxgate-echo", "pbxgate-echo-uvloop", "panoramisk", "pbxgate-notify"]
    )
    parser.add_argument(
        "--serve",
        choices=["pbxgate-echo", "pbxgate-echo-uvloop", "panoramisk"],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.serve == "pbxgate-echo":
        return serve_pbxgate_echo()
    if args.serve == "pbxgate-echo-uvloop":
        return serve_pbxgate_echo(use_uvloop=True)
    if args.serve == "panoramisk":
        return serve_panoramisk()
    print(
        f"{args.concurrency} concurrent connections, {args.seconds:.0f} s per server,"
        f" {os.cpu_count()} CPUs, load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    me = [sys.executable, str(HERE)]
    if args.only in (None, "pbxgate-echo"):
        measure("pbxgate-echo", [*me, "--serve", "pbxgate-echo"], args)
    if args.only in (None, "pbxgate-echo-uvloop"):
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("pbxgate-echo-uvloop skipped: uvloop is not installed")
        else:
            measure("pbxgate-echo-uvloop", [*me, "--serve", "pbxgate-echo-uvloop"], args)
    if args.only in (None, "panoramisk"):
        python = BENCH_VENV / "bin" / "python"
        if python.exists():
            measure("panoramisk", [str(python), str(HERE), "--serve", "panoramisk"], args)
        else:
            print(f"panoramisk        skipped: {python} missing (see the module docstring)")
    if args.only in (None, "pbxgate-notify"):
        with tempfile.TemporaryDirectory(dir=_data_dir()) as tmp:
            env = {**os.environ, "XDG_DATA_HOME": tmp, "XDG_CONFIG_HOME": tmp}
            env.pop("PBXGATE_CONFIG", None)
            pbxgate = str(Path(sys.executable).with_name("pbxgate"))
            argv = [pbxgate, "serve", "--listen", "127.0.0.1:0", "--no-worker"]
            measure("pbxgate-notify", argv, args, env, ready_on="stderr")
    return None


def _data_dir() -> Path:
    path = ROOT / "benchmarks" / ".data"
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    main()
