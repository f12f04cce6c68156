"""How long an incoming call is held by the notification, with VK slow (2 s) or unreachable.

Hold time = from the first byte the simulated Asterisk sends to the end of the AGI session
(FastAGI: the server closes the connection; a process script: it exits, since Asterisk waits
for both). Measured in one run, against a local fake VK:

* ``fastagi``: ``pbxgate serve`` (FastAGI + the delivery worker, which keeps talking to the
  slow or unreachable VK meanwhile); each call commits the event to the outbox (fsync);
* ``script``: ``pbxgate-agi`` started per call (fork + exec + interpreter start-up + commit);
* ``sync-baseline``: ``agi_sync_baseline.py``, which POSTs to VK before exiting, as the
  article's PHP script does (timeout 10 s; PHP's default_socket_timeout is 60 s);
* ``echo-floor``: pbxgate's FastAGI server on uvloop with a handler that sends one VERBOSE and
  stores nothing (Python's floor);
* ``c-floor``: ``agi_floor.c``, a FastAGI server in C that sends the commands ``pbxgate serve``
  sends (``GET VARIABLE``, unless the linkedid is in the URL, then ``SET VARIABLE`` with the
  end of its side) and stores nothing, in as many processes as ``--processes``: the machine's
  floor, its kernel's TCP over loopback and the callers.

"slow" = the fake VK answers after 2 s; "unreachable" = a listener that never accepts, so
connections hang until the client's timeout.

Run:  .venv/bin/python benchmarks/agi_hold.py [--calls 1000] [--script-calls 30]
      .venv/bin/python benchmarks/agi_hold.py --modes echo-floor,fastagi --vk slow --repeat 8 \
          --vk-delay 1 --backlog 500 --calls 4000 --concurrency 50   # the worker busy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE.parent))

from agi_throughput import ENV_BLOCK  # noqa: E402 - benchmarks are plain scripts

LOCAL_ENV = (
    b"agi_request: /usr/local/bin/pbxgate-agi\nagi_channel: PJSIP/trunk-00000001\n"
    b"agi_language: ru\nagi_type: PJSIP\nagi_uniqueid: %d.%d\nagi_version: 22.10.1\n"
    b"agi_callerid: 84991111111\nagi_calleridname: Oleg Ivanov\nagi_dnid: 4996491913\n"
    b"agi_rdnis: unknown\nagi_context: from-trunk\nagi_extension: 4996491913\n"
    b"agi_priority: 2\nagi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 1\n"
    b"agi_arg_1: notify\n\n"
)
REPLIES = b"200 result=0\n200 result=1\n"  # GET VARIABLE (unset), SET VARIABLE


@contextlib.contextmanager
def vk_endpoint(kind: str, delay: float = 2.0) -> Iterator[str]:
    """The API base URL of a fake VK that is slow (answers after ``delay`` s) or unreachable."""
    if kind == "slow":  # in a process of its own: its threads must not slow the callers
        code = (
            "import sys, time\n"
            "from pbxgate.notify.fakevk import FakeVkServer, FakeVkState\n"
            f"server = FakeVkServer(0, FakeVkState(delay={delay}, rate=1000.0)).start()\n"
            "print(server.base_url, flush=True)\n"
            "sys.stdin.read()\n"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None and proc.stdin is not None
        try:
            yield proc.stdout.readline().strip()
        finally:
            proc.stdin.close()
            proc.wait(timeout=10)
        return
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(0)  # never accepted: once the backlog is full, connections hang
    try:
        yield f"http://127.0.0.1:{hole.getsockname()[1]}"
    finally:
        hole.close()


def queue_backlog(env: dict[str, str], count: int) -> None:
    """``count`` events already in the outbox when the server starts: the worker delivers them
    (to the slow VK) while the calls are measured."""
    if not count:
        return
    from pbxgate.notify.events import CallEvent
    from pbxgate.notify.outbox import Outbox

    path = Path(env["XDG_DATA_HOME"]) / "pbxgate" / "outbox.sqlite3"
    now = time.time()
    events = [
        CallEvent(kind="incoming", uniqueid=f"{now:.0f}.{n}", linkedid=f"{now:.0f}.{n}",
                  caller_number="84991111111", caller_name="", did="4996491913",
                  channel=f"PJSIP/trunk-{n:08x}", context="from-trunk", extension="100",
                  occurred_at=now)
        for n in range(count)
    ]  # fmt: skip
    box = Outbox.open(path)
    box.enqueue_many(events)
    box.close()


def settings_env(tmp: Path, api_base: str) -> dict[str, str]:
    config = tmp / "config.toml"
    config.write_text(
        '[notify.vk]\nenabled = true\ntoken = "bench-token"\nrecipients = ["1"]\n'
        f'api_base = "{api_base}"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "PBXGATE_CONFIG": str(config)}
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    return env


# -- FastAGI -------------------------------------------------------------------------------------


class TimedCall(asyncio.Protocol):
    """A simulated Asterisk that notes when it sent its first byte and when the session ended."""

    def __init__(self, env: bytes, done: asyncio.Future[float]) -> None:
        self.env, self.done, self.pending = env, done, b""
        self.started = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = transport  # type: ignore[assignment]
        self.started = time.perf_counter()
        transport.write(self.env)

    def data_received(self, data: bytes) -> None:
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        if lines and self.transport is not None:
            self.transport.write(b"200 result=1\n" * len(lines))

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result(time.perf_counter() - self.started)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(time.perf_counter() - self.started)


@dataclass
class Holds:
    seconds: list[float]  # each call's hold
    rate: float  # calls/s over the run (0 when they ran one after another)
    # CPU microseconds a call of each process of the server (the measured run only)
    cpu: dict[str, float] | None = None


def process_tree(pid: int) -> dict[int, str]:
    """``pid`` and its children: what each is (the child module it runs, or "service")."""
    found = {pid: "service"}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile
            continue
        if parent == pid:
            # python -P -m pbxgate.notify.child pbxgate.agi.apart FD ...: the last names it
            modules = [a.decode() for a in argv if a.startswith(b"pbxgate.")] or ["child"]
            found[int(entry.name)] = modules[-1].removeprefix("pbxgate.")
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_a_call(tree: dict[int, str], before: dict[int, float], calls: int) -> dict[str, float]:
    """CPU microseconds a call of each kind of process in ``tree`` since ``before``."""
    spent: dict[str, float] = {}
    for pid, what in tree.items():
        try:
            used = cpu_seconds(pid) - before[pid]
        except OSError:
            continue
        spent[what] = spent.get(what, 0.0) + used * 1e6 / calls
    return spent


def env_template(query: bool) -> bytes:
    """A call's environment with ``{ID}`` for the call's id (its uniqueid); with ``query``, the
    dialplan passes the linkedid in the URL (``notify?linkedid=${CHANNEL(linkedid)}``, as
    docs/agi.md advises): no GET VARIABLE."""
    block = ENV_BLOCK.replace(b"%d.%d", b"{ID}")
    if query:
        block = block.replace(b"/notify\n", b"/notify?linkedid={ID}\n")
        block = block.replace(b"script: notify\n", b"script: notify?linkedid={ID}\n")
    return block


def env_block(base: int, n: int, query: bool) -> bytes:
    """One call's environment (:func:`env_template` with its id)."""
    return env_template(query).replace(b"{ID}", b"%d.%d" % (base, n))


async def fastagi_holds(port: int, calls: int, concurrency: int, query: bool = False) -> Holds:
    loop = asyncio.get_running_loop()
    holds: list[float] = []
    seq = iter(range(calls))
    base = int(time.time() * 1000)

    async def call(env: bytes) -> float:
        done: asyncio.Future[float] = loop.create_future()
        await loop.create_connection(lambda: TimedCall(env, done), "127.0.0.1", port)
        return await done

    async def caller() -> None:
        for i in seq:
            holds.append(await call(env_block(base, i, query)))

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return Holds(holds, len(holds) / (time.perf_counter() - started))


def c_program(name: str) -> Path:
    """benchmarks/``name``.c built with the machine's C compiler (once; again when changed)."""
    source = HERE.with_name(f"{name}.c")
    binary = HERE.parent / ".data" / name
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cc", "-O2", "-Wall", "-o", str(binary), str(source)], check=True)
    return binary


def c_holds(port: int, calls: int, concurrency: int, query: bool = False) -> Holds:
    """:func:`fastagi_holds` by the C callers (``agi_caller``): the same calls, answers and
    hold, with a few microseconds of CPU a call where the asyncio callers take ~120."""
    with tempfile.NamedTemporaryFile(suffix=".agi") as template:
        template.write(env_template(query))
        template.flush()
        caller = str(c_program("agi_caller"))
        argv = [caller, str(port), str(calls), str(concurrency), template.name]
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(out.stderr.strip() or f"agi_caller exited with {out.returncode}")
    *lines, rate = out.stdout.split("\n")[:-1]
    return Holds([float(x) for x in lines], float(rate.split()[1]))


def run_fastagi(
    env: dict[str, str],
    calls: int,
    concurrency: int,
    worker: bool = True,
    echo: bool = False,
    worker_nice: int | None = None,
    client_loop: str = "asyncio",
    query: bool = False,
    processes: int | None = None,
    floor: bool = False,
) -> Holds:
    """Hold times against ``pbxgate serve``, or (``echo``) against the same FastAGI server
    with a handler that sends one VERBOSE and commits nothing: Python's floor, or (``floor``)
    against ``agi_floor.c``, the same commands as ``pbxgate serve`` from C: the machine's. With
    ``worker_nice``, the delivery worker runs as a process of its own (``pbxgate notify worker``)
    at that nice value beside ``pbxgate serve --no-worker``."""
    argv = [str(BIN / "pbxgate"), "serve", "--listen", "127.0.0.1:0"]
    if processes is not None:
        argv += ["--processes", str(processes)]
    if not worker or worker_nice is not None:
        argv.append("--no-worker")
    echo = echo or floor  # ready on standard output, no worker
    apart = None
    if worker_nice is not None and not echo:
        apart = subprocess.Popen(
            ["nice", "-n", str(worker_nice), str(BIN / "pbxgate"), "notify", "worker"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    if echo:
        argv = [sys.executable, str(HERE.with_name("agi_throughput.py")), "--serve"]
        argv.append("pbxgate-echo-uvloop")
    if floor:  # GET VARIABLE unless the linkedid is in the URL, then SET VARIABLE
        argv = [str(c_program("agi_floor")), "1" if query else "2", str(processes or 1)]
    proc = subprocess.Popen(
        argv,
        stderr=subprocess.STDOUT if echo else subprocess.PIPE,
        stdout=subprocess.PIPE if echo else subprocess.DEVNULL,
        text=True,
        env=env,
    )
    stream = proc.stdout if echo else proc.stderr
    assert stream is not None
    ready = stream.readline()
    match = re.search(r"(?:READY |FastAGI on 127\.0\.0\.1:)(\d+)", ready)
    if not match:
        proc.kill()
        raise SystemExit(f"pbxgate serve did not start: {ready!r}")
    try:
        if client_loop == "c":
            port = int(match.group(1))
            c_holds(port, 50, concurrency, query)  # warm-up
            tree = process_tree(proc.pid)
            before = {pid: cpu_seconds(pid) for pid in tree}
            holds = c_holds(port, calls, concurrency, query)
            holds.cpu = cpu_a_call(tree, before, calls)
            return holds
        run = asyncio.run
        if client_loop == "uvloop":
            import uvloop  # only for this option

            run = uvloop.run
        run(fastagi_holds(int(match.group(1)), 50, concurrency, query))  # warm-up
        return run(fastagi_holds(int(match.group(1)), calls, concurrency, query))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if apart is not None:
            apart.terminate()
            apart.wait(timeout=60)
        stream.close()


# -- process scripts -----------------------------------------------------------------------------


def run_process(argv: list[str], stdin: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, input=stdin, env=env, stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def run_scripts(env: dict[str, str], calls: int) -> Holds:
    base = int(time.time() * 1000)
    argv = [str(BIN / "pbxgate-agi"), "notify"]
    seconds = [run_process(argv, (LOCAL_ENV % (base, i)) + REPLIES, env) for i in range(calls)]
    return Holds(seconds, 0.0)


def run_baseline(env: dict[str, str], api_base: str, calls: int) -> Holds:
    argv = [sys.executable, str(HERE.with_name("agi_sync_baseline.py")), api_base, "10"]
    return Holds([run_process(argv, LOCAL_ENV % (0, i), env) for i in range(calls)], 0.0)


# -- report ----------------------------------------------------------------------------------------


def cpu_shares(holds: Holds) -> str:
    """The server's CPU a call, each kind of process, as a line of its own (C callers only)."""
    if not holds.cpu:
        return ""
    shares = ", ".join(f"{what} {us:.0f}" for what, us in sorted(holds.cpu.items()))
    return f"\n  CPU a call (us): {shares}"


def row(mode: str, vk: str, holds: Holds) -> str:
    rate = holds.rate
    ms = sorted(h * 1000 for h in holds.seconds)
    p99 = percentile(ms, 0.99)
    line = (
        f"{mode:14} {vk:12} {len(ms):6d} {statistics.median(ms):10.2f} {p99:10.2f} {ms[-1]:10.2f}"
    )
    return line + (f" {rate:10.0f}" if rate else "")


def run_modes(args: argparse.Namespace, env: dict[str, str], vk: str) -> float | None:
    """One run of each FastAGI mode asked for, a line each; the p99 of ``fastagi`` (ms)."""
    modes = args.modes.split(",")
    common = {"client_loop": args.client_loop, "query": args.linkedid_in_url}
    if "c-floor" in modes:
        holds = run_fastagi(
            env, args.calls, args.concurrency, floor=True, processes=args.processes, **common
        )
        print(row("c-floor", vk, holds), flush=True)
    if "echo-floor" in modes:
        holds = run_fastagi(env, args.calls, args.concurrency, echo=True, **common)
        print(row("echo-floor", vk, holds), flush=True)
    if "fastagi" not in modes:
        return None
    holds = run_fastagi(
        env, args.calls, args.concurrency, not args.no_worker,
        worker_nice=args.worker_nice, processes=args.processes, **common,
    )  # fmt: skip
    print(row("fastagi", vk, holds) + cpu_shares(holds), flush=True)
    return percentile(holds.seconds, 0.99) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="FastAGI calls per VK mode")
    parser.add_argument("--concurrency", type=int, default=1, help="FastAGI calls in flight")
    parser.add_argument("--script-calls", type=int, default=30)
    parser.add_argument("--baseline-calls", type=int, default=3)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=HERE.parent / ".data",
        help="where the outbox lives (its disk's fsync time is most of the hold)",
    )
    parser.add_argument("--no-worker", action="store_true", help="FastAGI without the worker")
    parser.add_argument(
        "--worker-nice",
        type=int,
        help="the worker as a process of its own (pbxgate notify worker) at this nice value",
    )
    parser.add_argument(
        "--client-loop",
        choices=("asyncio", "uvloop", "c"),
        default="asyncio",
        help="the simulated Asterisk's event loop (uvloop: less of the CPU the server shares; "
        "c: benchmarks/agi_caller.c, built with cc, the least)",
    )
    parser.add_argument(
        "--linkedid-in-url",
        action="store_true",
        help="the dialplan passes the linkedid (notify?linkedid=...): no GET VARIABLE",
    )
    parser.add_argument(
        "--processes",
        type=int,
        help="pbxgate serve --processes N: FastAGI processes (default: its [agi] processes)",
    )
    parser.add_argument("--vk-delay", type=float, default=2.0, help="the slow VK's answer time")
    parser.add_argument(
        "--backlog", type=int, default=0, help="events queued before the calls (worker busy)"
    )
    parser.add_argument("--vk", default="slow,unreachable", help="VK modes to run")
    parser.add_argument(
        "--modes",
        default="c-floor,echo-floor,fastagi,script,sync-baseline",
        help="comma-separated subset to run",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="FastAGI runs per VK mode (a summary of their p99)"
    )
    parser.add_argument("--goal", type=float, default=10.0, help="the p99 goal the summary counts")
    args = parser.parse_args()
    data = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} CPUs, load average {load}; outbox in {data}")
    head = ("p50 ms", "p99 ms", "max ms", "calls/s")
    print(f"{'mode':14} {'VK':12} {'calls':>6} " + " ".join(f"{h:>10}" for h in head))
    print(f"VK answers in {args.vk_delay} s; {args.backlog} deliveries queued beforehand")
    p99s: dict[str, list[float]] = {}
    for vk in args.vk.split(","):
        for _ in range(args.repeat):
            with (
                vk_endpoint(vk, args.vk_delay) as api_base,
                tempfile.TemporaryDirectory(dir=data) as tmp,
            ):
                env = settings_env(Path(tmp), api_base)
                queue_backlog(env, args.backlog)  # afresh for every run
                p99 = run_modes(args, env, vk)
                if p99 is not None:
                    p99s.setdefault(vk, []).append(p99)
        if "script" not in args.modes and "sync-baseline" not in args.modes:
            continue
        with (
            vk_endpoint(vk, args.vk_delay) as api_base,
            tempfile.TemporaryDirectory(dir=data) as tmp,
        ):
            env = settings_env(Path(tmp), api_base)
            queue_backlog(env, args.backlog)
            if "script" in args.modes:
                print(row("script", vk, run_scripts(env, args.script_calls)), flush=True)
            if "sync-baseline" in args.modes:
                baseline = run_baseline(env, api_base, args.baseline_calls)
                print(row("sync-baseline", vk, baseline), flush=True)

    for vk, values in p99s.items():
        if len(values) > 1:
            at_most = sum(v <= args.goal for v in values)
            print(
                f"fastagi {vk}: p99 over {len(values)} runs min {min(values):.2f}, median "
                f"{statistics.median(values):.2f}, max {max(values):.2f} ms; "
                f"{at_most} of {len(values)} at most {args.goal:g} ms"
            )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
