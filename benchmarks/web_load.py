"""Hundreds of people watching the web console at once: one console process, many viewers.

One console process (uvicorn, one worker, as ``pbxgate web`` serves it) over a 10 M-row table,
with the fixed "now" of ``benchmarks/web_pages.py`` (Wednesday 2024-04-03 15:00), pinned to
the first core; the load comes from another process pinned to the second core (asyncio and
httpx), so that the two do not share a core. Each of ``--viewers`` people logs in through
/login first (not measured: a login spends an argon2 hash, so ``--logins`` sessions, ten by
default, are shared by the viewers round-robin), then, for ``--seconds``, loads /today,
thinks for a while (``--think`` seconds on average, uniformly 0.5-1.5 times that), loads
/api/calls (today's calls, the list the menu opens), thinks again, and so on; a person waits
for a page before thinking, as a browser does. With ``--load refresh``, each viewer has the
Today page open instead: its script fetches /today every 60 s, whether the last answer came or
not. The viewers start once the console's start-up work (the Calls page's call index) is done.

Reported per request kind: requests per second, latency p50/p95/p99, errors (any answer but
200, or no answer within 120 s); and the console's CPU (share of one core) and memory (RSS).

Baseline, in the same run: the same viewers at the same pace asking for /health (the
framework, the network and the session cookie, no data: the server's own ceiling at this
load); and, when ``wrk`` is installed (Debian's package), the most a console process answers
with many requests in flight and no thinking: /health, /api/today, /api/calls.

Prepare the tables as docs/benchmarks.md says ("The data"), then:

    .venv/bin/python benchmarks/web_load.py --backends sqlite --viewers 300 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from web_pages import BACKENDS, CSRF, NAMES, PASSWORD, USER, log, log_in, settle, start_console

TIMEOUT = 120.0
# name: (the paths a viewer asks for in turn, thinking between them; or, with a period, the
# one path asked for every so many seconds whether the last answer came or not, as the Today
# page's script refreshes it)
SCENARIOS: dict[str, tuple[tuple[str, ...], float]] = {
    "health": (("/health", "/health"), 0.0),
    "pages": (("/today", "/api/calls"), 0.0),
    "refresh": (("/today",), 60.0),
}
CEILING_PATHS = {"/health": 50, "/api/today": 4, "/api/calls": 4}  # path: requests in flight
TICK = os.sysconf("SC_CLK_TCK")


# -- the viewers (the load generator's process) ---------------------------------------------


async def _log_in(http: httpx.AsyncClient) -> None:
    form = await http.get("/login")
    token = CSRF.search(form.text)
    assert token is not None, "no CSRF token in /login"
    data = {"user": USER, "password": PASSWORD, "csrf": token[1], "next": "/today"}
    answer = await http.post("/login", data=data)
    assert answer.status_code == 303, f"login failed: {answer.status_code}"


async def _one(http: httpx.AsyncClient, path: str, out: list[Any]) -> None:
    t = time.monotonic()
    try:
        answer = await http.get(path)
        status: int | str = answer.status_code
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    out.append((path, t, time.monotonic() - t, status))


async def _ticker(
    http: httpx.AsyncClient, path: str, every: float, until: float, out: list[Any]
) -> None:
    """A page left open: ``path`` every ``every`` seconds from a random moment on."""
    await asyncio.sleep(random.uniform(0, every))
    asked = []
    while time.monotonic() < until:
        asked.append(asyncio.create_task(_one(http, path, out)))
        await asyncio.sleep(every)
    await asyncio.gather(*asked)


async def _viewer(
    http: httpx.AsyncClient, paths: tuple[str, ...], think: float, until: float, out: list[Any]
) -> None:
    await asyncio.sleep(random.uniform(0, think))  # people do not all click at once
    k = 0
    while time.monotonic() < until:
        path = paths[k % len(paths)]
        k += 1
        await _one(http, path, out)
        done = time.monotonic()
        await asyncio.sleep(min(random.uniform(0.5, 1.5) * think, max(0.0, until - done)))


async def generate(  # type: ignore[no-untyped-def]
    base: str,
    viewers: int,
    logins: int,
    seconds: float,
    think: float,
    paths: tuple[str, ...],
    every: float = 0.0,
):
    """``logins`` logins (one at a time, as people arrive), shared by ``viewers`` people
    round-robin (a session is a signed cookie: the console does the same work for a copy of
    one as for a new one), then the viewers for ``seconds``."""
    sessions = []
    for _ in range(logins):
        async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
            await _log_in(http)
            sessions.append(dict(http.cookies.items()))
    limits = httpx.Limits(max_connections=1 if not every else 8, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(
            base_url=base, timeout=TIMEOUT, limits=limits, cookies=sessions[i % logins]
        )
        for i in range(viewers)
    ]
    print("start", flush=True)
    out: list[Any] = []
    begin = time.monotonic()
    if every:
        views = [_ticker(h, paths[0], every, begin + seconds, out) for h in clients]
    else:
        views = [_viewer(h, paths, think, begin + seconds, out) for h in clients]
    await asyncio.gather(*views)
    # until the last answer: the viewers' last thinking is not part of the load
    wall = max((t + seconds_ for _, t, seconds_, _ in out), default=begin + seconds) - begin
    print("end", flush=True)
    for http in clients:
        await http.aclose()
    return {"wall": wall, "requests": out}


# -- the console's CPU and memory -------------------------------------------------------------


class Sampler(threading.Thread):
    """The console's CPU seconds and RSS, and the machine's busy share, twice a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.rss, self.running = pid, [0], True
        self.cpu0, self.machine0, self.t0 = self.cpu(), self.machine(), time.monotonic()

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, all threads

    @staticmethod
    def machine() -> tuple[int, int]:
        numbers = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = numbers[3] + numbers[4]
        return sum(numbers) - idle, sum(numbers)

    def run(self) -> None:
        while self.running:
            status = Path(f"/proc/{self.pid}/status").read_text()
            self.rss.append(int(re.search(r"VmRSS:\s+(\d+)", status)[1]) // 1024)  # type: ignore[index]
            time.sleep(0.5)

    def stop(self) -> dict[str, float]:
        self.running = False
        busy1, total1 = self.machine()
        busy0, total0 = self.machine0
        wall = time.monotonic() - self.t0
        status = Path(f"/proc/{self.pid}/status").read_text()
        return {
            "cpu": (self.cpu() - self.cpu0) / wall,
            "machine": (busy1 - busy0) / max(1, total1 - total0),
            "rss_max": max(self.rss),
            "rss_peak_ever": int(re.search(r"VmHWM:\s+(\d+)", status)[1]) // 1024,  # type: ignore[index]
        }


# -- one scenario -----------------------------------------------------------------------------


def scenario(name: str, url: str, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="pbxgate-web-load-") as tmp,
        start_console(Path(tmp), url, cpus={args.server_cpu}) as console,
    ):
        with httpx.Client(base_url=console.base, timeout=TIMEOUT) as http:  # warm the process
            log_in(http)
            paths, every = SCENARIOS[kind]
            for path in paths:
                http.get(path)
        log(f"{name}, {kind}: the console settled in {settle(console):.0f} s")
        cmd = [
            sys.executable,
            __file__,
            "--generate",
            console.base,
            "--viewers",
            str(args.viewers),
            "--logins",
            str(args.logins),
            "--seconds",
            str(args.seconds),
            "--think",
            str(args.think),
            "--every",
            str(every),
            "--paths",
            *paths,
        ]
        log(f"{name}, {kind}: {args.logins} logins for {args.viewers} viewers")
        pin = lambda: os.sched_setaffinity(0, {args.client_cpu})  # noqa: E731
        gen = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, preexec_fn=pin)  # noqa: PLW1509
        assert gen.stdout is not None
        assert gen.stdout.readline().strip() == "start"
        log(f"{name}, {kind}: load for {args.seconds} s")
        sampler = Sampler(console.pid)
        sampler.start()
        assert gen.stdout.readline().strip() == "end"
        usage = sampler.stop()
        result = json.loads(gen.stdout.read())
        gen.wait()
    summary = {**summarise(result), **usage}
    log(f"{name}, {kind}: {json.dumps(summary)}")
    return summary


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Per path: answers (200) per second, latency quantiles of every request (a request
    that got no answer counts with the time it waited), and the errors by kind."""
    by_path: dict[str, Any] = {}
    for path, _, seconds, status in result["requests"]:
        entry = by_path.setdefault(path, {"times": [], "errors": Counter()})
        entry["times"].append(seconds)
        if status != 200:
            entry["errors"][str(status)] += 1
    wall = result["wall"]
    out: dict[str, Any] = {"wall": wall, "paths": {}}
    for path, entry in by_path.items():
        times = sorted(entry["times"])
        cut = (
            statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
        )
        out["paths"][path] = {
            "count": len(times),
            "rate": (len(times) - entry["errors"].total()) / wall,
            "p50": cut[49],
            "p95": cut[94],
            "p99": cut[98],
            "errors": ", ".join(f"{n} {kind}" for kind, n in entry["errors"].most_common()) or "0",
        }
    return out


def ceilings(name: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    """With ``wrk``, a fresh console's requests per second and median latency for each path
    with requests always in flight (many for /health, a few for the pages)."""
    out = {}
    with (
        tempfile.TemporaryDirectory(prefix="pbxgate-web-load-") as tmp,
        start_console(Path(tmp), url, cpus={args.server_cpu}) as console,
    ):
        with httpx.Client(base_url=console.base, timeout=TIMEOUT) as http:
            log_in(http)
            cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
            for path in CEILING_PATHS:
                http.get(path)  # warm
        settle(console)
        for path, conns in CEILING_PATHS.items():
            cmd = [
                "taskset",
                "-c",
                str(args.client_cpu),
                "wrk",
                "-t1",
                f"-c{conns}",
                "-d15s",
                "--timeout",
                "60s",
                "--latency",
                "-H",
                f"Cookie: {cookie}",
                console.base + path,
            ]
            text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])  # type: ignore[index]
            p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", text)
            scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
            median = float(p50[1]) * scale[p50[2]] if p50 else 0.0
            out[path] = {"rate": rate, "p50": median, "conns": conns}
            log(f"{name}: wrk {path} with {conns} in flight: {rate:.1f} requests/s")
    return out


# -- the table --------------------------------------------------------------------------------


def table(
    results: dict[str, dict[str, dict[str, Any]]],
    tops: dict[str, dict[str, Any]],
    args: argparse.Namespace,
) -> str:
    lines = [
        f"{args.viewers} viewers on {args.logins} sessions, {args.think:g} s average thinking, "
        f"{args.seconds:g} s; "
        f"the console on core {args.server_cpu}, the viewers on core {args.client_cpu}",
        "",
        "| backend | load | request | sent | answered/s | p50 | p95 | p99 | errors | console CPU "
        "| machine busy | console RSS |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for name, kinds in results.items():
        for kind, r in kinds.items():
            first = True
            for path, p in r["paths"].items():
                usage = (
                    (f"{r['cpu']:.0%} of a core | {r['machine']:.0%} of 2 | {r['rss_max']} MB")
                    if first
                    else " | | "
                )
                lines.append(
                    f"| {NAMES[name]} | {kind} | GET {path} | {p['count']} | {p['rate']:.1f} "
                    f"| {_s(p['p50'])} "
                    f"| {_s(p['p95'])} | {_s(p['p99'])} | {p['errors']} | {usage} |"
                )
                first = False
    ceilings = [(n, p, w) for n, paths in tops.items() for p, w in paths.items()]
    if ceilings:
        lines += [
            "",
            "| backend | wrk, always in flight | requests/s | p50 |",
            "|---|---|---:|---:|",
        ]
        for name, path, w in ceilings:
            lines.append(
                f"| {NAMES[name]} | GET {path}, {w['conns']} connections "
                f"| {w['rate']:.1f} | {_s(w['p50'])} |"
            )
    return "\n".join(lines)


def _s(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="BACKEND=URL",
        help="another database for a backend: sqlite=sqlite:////tmp/x.db",
    )
    parser.add_argument("--viewers", type=int, default=300)
    parser.add_argument("--logins", type=int, default=10, help="sessions the viewers share")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=5.0)
    parser.add_argument(
        "--load",
        nargs="+",
        choices=list(SCENARIOS),
        default=["health", "pages"],
        help="health: the baseline; pages: /today and /api/calls in turn; "
        "refresh: /today every 60 s (the page left open)",
    )
    parser.add_argument("--no-wrk", dest="wrk", action="store_false")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--generate", help=argparse.SUPPRESS)  # the load generator's process
    parser.add_argument("--paths", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        result = asyncio.run(
            generate(
                args.generate,
                args.viewers,
                args.logins,
                args.seconds,
                args.think,
                tuple(args.paths),
                args.every,
            )
        )
        print(json.dumps(result), flush=True)
        return
    urls = {**BACKENDS, **dict(u.split("=", 1) for u in args.url)}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    tops: dict[str, dict[str, Any]] = {}
    for name in args.backends:
        results[name] = {kind: scenario(name, urls[name], kind, args) for kind in args.load}
        if args.wrk and shutil.which("wrk"):
            tops[name] = ceilings(name, urls[name], args)
    print(
        f"started {started}, load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end\n"
    )
    print(table(results, tops, args))


if __name__ == "__main__":
    main()
