"""How long the web console's Today and Calls pages take over the 10,000,000-row CDR tables.

A real console (uvicorn, as ``pbxgate web`` serves it, in its own process) is started for each
backend with a config whose ``[cdr] default_source`` is that backend's 10 M-row table and a
fixed "now": Wednesday 2024-04-03 15:00, a working afternoon (the tables run on to 2026, so
the page reads that whole day: as much as at the end of a day). A client logs in through
/login like a browser (the CSRF token from the form), then times, as the browser sees it
(request sent to the last byte of the body):

* GET /today and /api/today (today against yesterday: the report's KPIs, hours, missed calls);
* GET /calls and /api/calls for March 2024 (``from=2024-03-01&to=2024-03-31``), inbound
  calls only, page 1 and page 500.

Cold: the first request of a console process just started (imports, the database connection,
statements compiled, while its keepers compute Today's report and fill the Calls page's call
index of last month and this one), a new process for every page and run, with no call index on
disk (a console's first start); the database servers' own caches are warm (they are shared and
not restarted). Restart: the same with the call index a console before it left on disk.
Ready: the first request of each page in a console process that has said on /health that its
start-up work is done (what the first visitor of a running console sees), a new process for
every run; and how long it took to be ready, on a first start and on a restart. Warm: the same
console once its start-up work is done, after one request of the same page. All are medians of
``--runs``. Today's report is kept up to date by the console itself, so once ready it is read,
not computed; a page of calls is shared by everyone asking for the same one within 5 s, which
the timed requests wait out (each is computed).

The floor is the SQL the page needs, timed in the database's own Python driver (PyMySQL,
psycopg, sqlite3) and, for the month, in its command-line client (mysql, psql, sqlite3, output
to /dev/null): the legs of yesterday and today (the report's columns) for Today; all of the
month's legs for Calls (a call's direction and outcome come from all its legs, and the page
counts the matching calls); and what a page cut in SQL would read (50 legs with
``ORDER BY calldate DESC LIMIT/OFFSET`` and a ``COUNT(*)`` of the month).

Prepare the tables as docs/benchmarks.md says ("The data"), then:

    .venv/bin/python benchmarks/web_pages.py --runs 3
    .venv/bin/python benchmarks/web_pages.py --backends sqlite --runs 1

``benchmarks/web_load.py`` starts its console with :func:`start_console` from here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy.engine import make_url

DATA = Path(__file__).parent / ".data"
BACKENDS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/pbxgate_bench",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/pbxgate_bench",
    "sqlite": f"sqlite:///{DATA / 'cdr10m.sqlite3'}",
}
NAMES = {"mariadb": "MariaDB", "postgresql": "PostgreSQL", "sqlite": "SQLite"}
# A Wednesday afternoon; the month before it, March 2024, holds 212,868 legs (147,159 calls).
NOW = datetime(2024, 4, 3, 15, 0)
TIMEZONE = "Europe/Moscow"  # the zone windows are read in; the stored times are the same zone
USER, PASSWORD = "viewer", "bench-viewer-password"
MONTH = {"from": "2024-03-01", "to": "2024-03-31", "direction": "inbound"}
LATER_PAGE = 500
REQUESTS: list[tuple[str, str]] = [
    ("GET /today", "/today"),
    ("GET /api/today", "/api/today"),
    ("GET /calls, March, inbound, page 1", "/calls?" + urlencode(MONTH)),
    (
        f"GET /calls, March, inbound, page {LATER_PAGE}",
        "/calls?" + urlencode({**MONTH, "page": LATER_PAGE}),
    ),
    ("GET /api/calls, March, inbound, page 1", "/api/calls?" + urlencode(MONTH)),
    (
        f"GET /api/calls, March, inbound, page {LATER_PAGE}",
        "/api/calls?" + urlencode({**MONTH, "page": LATER_PAGE}),
    ),
]
# The windows the pages read (calls may start an hour before and run an hour past a bound).
TODAY_LEGS = ("2024-04-01 23:00:00", "2024-04-04 01:00:00")
MONTH_LEGS = ("2024-02-29 23:00:00", "2024-04-01 01:00:00")
MONTH_CALLS = ("2024-03-01 00:00:00", "2024-04-01 00:00:00")


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# -- the console ---------------------------------------------------------------------------


def serve(config: Path, now: datetime, listen: str) -> None:
    """Serve the console as ``pbxgate web`` does (one uvicorn worker), with a fixed "now"."""
    import uvicorn

    from pbxgate.config import Settings
    from pbxgate.web.app import create_app
    from pbxgate.web.settings import WebSettings

    settings = Settings.load(config)
    web = settings.get(WebSettings)
    app = create_app(settings, now=lambda: now, listen=listen)
    host, _, port = listen.rpartition(":")
    uvicorn.run(
        app,
        host=host,
        port=int(port),
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips=",".join(web.trusted_proxies),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(folder: Path, url: str) -> Path:
    """A config over ``url`` with the console's own files in ``folder``, and its one user."""
    from pbxgate.web.users import Role, UserStore

    config = folder / "config.toml"
    config.write_text(
        f'[cdr]\ntimezone = "{TIMEZONE}"\ndefault_source = "bench"\nstore = "{folder}/cdr.db"\n'
        f'monitor_dir = "{folder}/monitor"\n[cdr.sources.bench]\nurl = "{url}"\n'
        f'[report]\nstate = "{folder}/reports.sqlite3"\n'
        f'[web]\ndatabase = "{folder}/web.sqlite3"\n',
        encoding="utf-8",
    )
    users = UserStore(folder / "web.sqlite3")
    if users.get(USER) is None:
        users.add(USER, PASSWORD, Role.VIEWER)
    users.close()
    return config


@dataclass
class Console:
    process: subprocess.Popen[bytes]
    base: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def start_console(folder: Path, url: str, cpus: set[int] | None = None) -> Iterator[Console]:
    """A console process over ``url`` (pinned to ``cpus`` when given), up and answering."""
    config = write_config(folder, url)
    listen = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "XDG_DATA_HOME": str(folder / "xdg"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--serve", str(config), "--listen", listen]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    process = subprocess.Popen(cmd, env=env, preexec_fn=pin)  # noqa: PLW1509 (no threads yet)
    console = Console(process, f"http://{listen}")
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the console exited with {process.returncode}")
            try:
                if httpx.get(console.base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the console did not answer /health within 60 s")
            time.sleep(0.05)
        yield console
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time process ``pid`` has spent, all its threads, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(console: Console, started: float, limit: float = 600) -> float:
    """Wait until /health says the console's start-up work is done; seconds since ``started``
    (the moment the process was started, ``time.monotonic()``)."""
    while time.monotonic() - started < limit:
        if httpx.get(console.base + "/health", timeout=5).json().get("ready"):
            return time.monotonic() - started
        time.sleep(0.05)
    raise SystemExit(f"the console was not ready within {limit:.0f} s")


def settle(console: Console, limit: float = 300) -> float:
    """Wait until the console is idle (its start-up work, such as the Calls page's call index
    of last month and this one, is done): under 2% of a core for a second. Seconds waited."""
    start = time.monotonic()
    before = cpu_seconds(console.pid)
    while time.monotonic() - start < limit:
        time.sleep(1)
        now = cpu_seconds(console.pid)
        if now - before < 0.02:
            break
        before = now
    return time.monotonic() - start


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def log_in(http: httpx.Client) -> None:
    """Log in as a browser does: the form's CSRF token, then the POST."""
    form = http.get("/login")
    token = CSRF.search(form.text)
    if token is None:
        raise SystemExit("no CSRF token in /login")
    answer = http.post(
        "/login", data={"user": USER, "password": PASSWORD, "csrf": token[1], "next": "/today"}
    )
    if answer.status_code != 303:
        raise SystemExit(f"login failed: {answer.status_code} {answer.text[:200]}")


# A page of calls is shared by everyone asking for it within this many seconds (the console's
# CALLS_SECONDS): the timed requests wait that out, so that each is computed, not shared.
SHARED = 5.2


def fetch(http: httpx.Client, path: str, *, unshared: bool = False) -> tuple[float, int]:
    """Seconds from sending the request to the last byte of the body, and the body's size.
    ``unshared``: a page of calls is fetched only once the last one can no longer be shared
    with it."""
    if unshared and "calls" in path:
        time.sleep(SHARED)
    t = time.perf_counter()
    answer = http.get(path)
    seconds = time.perf_counter() - t
    if answer.status_code != 200:
        raise SystemExit(f"GET {path}: {answer.status_code} {answer.text[:300]}")
    return seconds, len(answer.content)


# -- the pages -----------------------------------------------------------------------------


def time_pages(
    name: str, url: str, runs: int, profile: Path | None = None
) -> dict[str, dict[str, float]]:
    """Cold and warm medians (seconds) of every request in :data:`REQUESTS`, and body sizes;
    with ``profile``, then each request ``runs`` times more under py-spy (not timed)."""
    out: dict[str, dict[str, float]] = {label: {} for label, _ in REQUESTS}
    with tempfile.TemporaryDirectory(prefix="pbxgate-web-bench-") as tmp:
        folder = Path(tmp)
        time_cold(name, url, runs, folder, out)
        time_ready(name, url, runs, folder, out)
        time_warm(name, url, runs, folder, out, profile)
    return out


def time_cold(
    name: str, url: str, runs: int, folder: Path, out: dict[str, dict[str, float]]
) -> None:
    """The first request of a new console: with no call index on disk, and on a restart."""
    store = folder / "callindex.sqlite3"  # the console's call index on disk
    for label, path in REQUESTS:
        for when in ("cold", "restart"):
            cold = []
            for _ in range(runs):
                if when == "cold":
                    store.unlink(missing_ok=True)
                with (
                    start_console(folder, url) as console,
                    httpx.Client(base_url=console.base, timeout=600) as http,
                ):
                    log_in(http)
                    cold.append(fetch(http, path)[0])
            out[label][when] = statistics.median(cold)
            log(f"{name}: {label}: {when} {out[label][when]:.3f} s")


def time_ready(
    name: str, url: str, runs: int, folder: Path, out: dict[str, dict[str, float]]
) -> None:
    """How long a console takes to be ready (first start, restart), and each page's first
    request once it is."""
    store = folder / "callindex.sqlite3"
    first: dict[str, list[float]] = {label: [] for label, _ in REQUESTS}
    took: dict[str, list[float]] = {"ready": [], "restart": []}
    for _ in range(runs):
        store.unlink(missing_ok=True)
        for when in ("ready", "restart"):
            started = time.monotonic()
            with (
                start_console(folder, url) as console,
                httpx.Client(base_url=console.base, timeout=600) as http,
            ):
                took[when].append(wait_ready(console, started))
                log(f"{name}: {when}: ready {took[when][-1]:.1f} s after the process started")
                if when == "ready":
                    log_in(http)
                    for label, path in REQUESTS:
                        first[label].append(fetch(http, path, unshared=True)[0])
    out["ready"] = {when: statistics.median(seconds) for when, seconds in took.items()}
    for label, _ in REQUESTS:
        out[label]["ready"] = statistics.median(first[label])
        log(f"{name}: {label}: first once ready {out[label]['ready']:.3f} s")


def time_warm(
    name: str,
    url: str,
    runs: int,
    folder: Path,
    out: dict[str, dict[str, float]],
    profile: Path | None,
) -> None:
    """Each page again and again in one ready console; with ``profile``, under py-spy."""
    with (
        start_console(folder, url) as console,
        httpx.Client(base_url=console.base, timeout=600) as http,
    ):
        wait_ready(console, time.monotonic())
        log(f"{name}: the console settled in {settle(console):.0f} s")
        log_in(http)
        for label, path in REQUESTS:
            fetch(http, path)
            warm = [fetch(http, path, unshared=True) for _ in range(runs)]
            out[label]["warm"] = statistics.median(s for s, _ in warm)
            out[label]["bytes"] = warm[-1][1]
            log(f"{name}: {label}: warm {out[label]['warm']:.3f} s, {warm[-1][1]:,} bytes")
        if profile is not None:
            for i, (label, path) in enumerate(REQUESTS):
                stacks = profile / f"{name}-{i}.txt"
                with spying(console.pid, stacks):
                    for _ in range(runs):
                        fetch(http, path)
                log(f"{name}: {label}: where the time goes ({stacks})")
                log(hot_spots(stacks))


@contextmanager
def spying(pid: int, stacks: Path) -> Iterator[None]:
    """py-spy samples process ``pid`` into ``stacks`` (collapsed stacks, one a line)."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH (pip install py-spy)")
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--rate",
        "200",
        "--nonblocking",
        "--output",
        str(stacks),
    ]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait()


def hot_spots(stacks: Path, top: int = 15) -> str:
    """The functions of pbxgate (and the templates) with the largest share of the samples of
    busy threads, counting each function once per stack."""
    share: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if "pbxgate/" not in stack and "jinja2" not in stack:
            continue  # an idle thread or the event loop waiting
        total += int(count)
        for frame in set(
            re.sub(r" \(/.*?/(src|site-packages)/", " (", f) for f in stack.split(";")
        ):
            if "pbxgate/" in frame or "template" in frame:
                share[frame] += int(count)
    return "\n".join(f"  {n / total:6.1%}  {frame}" for frame, n in share.most_common(top))


# -- the floor: the SQL the pages need -------------------------------------------------------


def floor_sql() -> dict[str, tuple[str, tuple[str, ...]]]:
    """label -> (SQL with %s markers, parameters)."""
    from pbxgate.cdr.report.build import REPORT_COLUMNS
    from pbxgate.cdr.schema import LEG_COLUMNS

    report, every = ", ".join(REPORT_COLUMNS), ", ".join(LEG_COLUMNS)
    where = "WHERE calldate >= %s AND calldate < %s"
    return {
        "today": (f"SELECT {report} FROM cdr {where}", TODAY_LEGS),
        "month": (f"SELECT {every} FROM cdr {where}", MONTH_LEGS),
        "page": (
            f"SELECT {every} FROM cdr {where} ORDER BY calldate DESC LIMIT 50 OFFSET "
            f"{50 * (LATER_PAGE - 1)}",
            MONTH_CALLS,
        ),
        "count": (f"SELECT COUNT(*) FROM cdr {where}", MONTH_CALLS),
    }


def driver(name: str, url: str) -> tuple[Any, str]:
    """A DB-API connection of the console's own driver, and its parameter marker."""
    u = make_url(url)
    if name == "mariadb":
        import pymysql

        conn = pymysql.connect(
            host=u.host,
            port=u.port or 3306,
            user=u.username,
            password=u.password or "",
            database=u.database,
            charset="utf8mb4",
        )
        return conn, "%s"
    if name == "postgresql":
        import psycopg

        return psycopg.connect(
            host=u.host, port=u.port or 5432, user=u.username, dbname=u.database, autocommit=True
        ), "%s"
    import sqlite3

    return sqlite3.connect(u.database or ""), "?"


def cli(name: str, url: str, sql: str) -> list[str]:
    """The database's own command-line client running ``sql``, rows to standard output."""
    u = make_url(url)
    if name == "mariadb":
        return [
            "mysql",
            "-h",
            u.host or "127.0.0.1",
            "-P",
            str(u.port or 3306),
            "-u",
            u.username or "root",
            "-B",
            "-N",
            u.database or "",
            "-e",
            sql,
        ]
    if name == "postgresql":
        return [
            "psql",
            "-h",
            u.host or "127.0.0.1",
            "-p",
            str(u.port or 5432),
            "-U",
            u.username or "postgres",
            "-d",
            u.database or "",
            "-A",
            "-t",
            "-q",
            "-c",
            sql,
        ]
    return ["sqlite3", u.database or "", sql]


def median_of(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median seconds of ``runs`` calls after one warm-up, and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def time_floor(name: str, url: str, runs: int) -> dict[str, float]:
    out: dict[str, float] = {}
    conn, mark = driver(name, url)
    try:
        for label, (sql, params) in floor_sql().items():
            cur = conn.cursor()
            text = sql.replace("%s", mark)

            def read(cur: Any = cur, text: str = text, params: tuple[str, ...] = params) -> int:
                cur.execute(text, params)
                return len(cur.fetchall())

            out[label], rows = median_of(read, runs)
            out[f"{label}_rows"] = rows
            log(f"{name}: floor {label}: {out[label]:.3f} s, {rows:,} rows")
    finally:
        conn.close()
    sql, (lo, hi) = floor_sql()["month"]
    literal = sql.replace("%s", "'{}'").format(lo, hi)
    command = cli(name, url, literal)
    out["month_cli"], _ = median_of(
        lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True), runs
    )
    log(f"{name}: floor month in {command[0]}: {out['month_cli']:.3f} s")
    return out


# -- the table -------------------------------------------------------------------------------


def table(
    pages: dict[str, dict[str, dict[str, float]]], floors: dict[str, dict[str, float]]
) -> str:
    names = list(pages or floors)
    whens = ("cold", "restart", "ready", "warm")
    head = "| request | " + " | ".join(f"{NAMES[n]} {when}" for n in names for when in whens)
    lines = [head + " | bytes |", "|---|" + "---:|" * len(whens) * len(names) + "---:|"]
    for label, _ in REQUESTS:
        if not pages:
            break
        cells = " | ".join(_s(pages[n][label][when]) for n in names for when in whens)
        lines.append(f"| {label} | {cells} | {int(pages[names[0]][label]['bytes']):,} |")
    if pages:
        cells = " | ".join(
            f"— | {pages[n]['ready']['restart']:.1f} s | {pages[n]['ready']['ready']:.1f} s | —"
            for n in names
        )
        lines.append(f"| start-up: process started until /health says ready | {cells} | |")
    if floors:
        f0 = floors[names[0]]
        rows = [
            (
                "floor, Today: yesterday's and today's legs, the report's columns, in the driver",
                "today",
                f"{int(f0['today_rows']):,} rows",
            ),
            (
                "floor, Calls: the month's legs, all columns, in the driver",
                "month",
                f"{int(f0['month_rows']):,} rows",
            ),
            ("floor, Calls: the same in the database's own client", "month_cli", ""),
            (f"floor, a page cut in SQL: 50 legs at OFFSET {50 * (LATER_PAGE - 1):,}", "page", ""),
            ("floor, a page cut in SQL: COUNT(*) of the month", "count", ""),
        ]
        for label, key, size in rows:
            cells = " | ".join(f"— | — | — | {_s(floors[n][key])}" for n in names)
            lines.append(f"| {label} | {cells} | {size} |")
    return "\n".join(lines)


def _s(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"**{seconds:.2f} s**"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--url",
        action="append",
        default=[],
        metavar="BACKEND=URL",
        help="another database for a backend: sqlite=sqlite:////tmp/x.db",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="then sample the console with py-spy: DIR/<backend>-<n>.txt",
    )
    parser.add_argument("--no-pages", action="store_true", help="time only the floor")
    parser.add_argument("--no-floor", action="store_true", help="time only the pages")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)  # the console process
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, NOW, args.listen)
        return
    pages, floors = {}, {}
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()
    urls = {**BACKENDS, **dict(u.split("=", 1) for u in args.url)}
    for name in args.backends:
        url = urls[name]
        if not args.no_pages:
            pages[name] = time_pages(name, url, args.runs, args.profile)
        if not args.no_floor:
            floors[name] = time_floor(name, url, args.runs)
    print(
        f"started {started}, load average {load[0]:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end; medians of {args.runs} runs\n"
    )
    print(table(pages, floors))


if __name__ == "__main__":
    main()
