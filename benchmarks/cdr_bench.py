"""CDR benchmarks, each beside its hand-written baseline in the same run.

* import: a 1,000,000-row Master.csv into pbxgate's SQLite store (validation, dedupe keys,
  indexes) against plain ``sqlite3`` executemany of the same rows into the same indexed table,
  and against SQLite's own share: pbxgate's bulk load fed rows prepared beforehand.
* query: the article's query (inbound external calls, 10 minutes) over the 10,000,000-row
  MariaDB table, through pbxgate's library against the article's SQL run with PyMySQL.
* stats: one month of ``pbxgate cdr stats`` on MariaDB, PostgreSQL and SQLite against a
  hand-written call-level aggregate (calls, answered, talk time) in SQL.

Prepare the tables first with ``benchmarks/cdr_dataset.py`` (see docs/benchmarks.md), then:

    python benchmarks/cdr_bench.py import query stats
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pbxgate.cdr import api
from pbxgate.cdr.csvimport import complete_row, import_csv, plan_for_row
from pbxgate.cdr.query import Filters
from pbxgate.cdr.schema import LEG_COLUMNS
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import open_source
from pbxgate.cdr.store import STORE_PAGE_SIZE, Store
from pbxgate.cdr.window import Window, Zones

DATA = Path(__file__).parent / ".data"
TSV = DATA / "cdr_10000000.tsv"
MARIADB = "mysql+pymysql://root@127.0.0.1:3306/pbxgate_bench"
POSTGRESQL = "postgresql+psycopg://postgres@127.0.0.1:5432/pbxgate_bench"
SQLITE = DATA / "cdr10m.sqlite3"
ARTICLE_WINDOW = Window(datetime(2024, 3, 18, 12, 0), datetime(2024, 3, 18, 12, 10))
MONTH = Window(datetime(2024, 3, 1), datetime(2024, 4, 1))
ARTICLE_SQL = (
    "SELECT dst, src, duration, calldate, recordingfile FROM cdr "
    "WHERE calldate >= %s AND calldate < %s AND LENGTH(src) > 3"
)
BASELINE_STATS = (
    "SELECT COUNT(*), SUM(answered), SUM(talk) FROM ("
    " SELECT linkedid, MAX(CASE WHEN disposition = 'ANSWERED' THEN 1 ELSE 0 END) AS answered,"
    " SUM(CASE WHEN disposition = 'ANSWERED' THEN billsec ELSE 0 END) AS talk"
    " FROM cdr WHERE calldate >= {p} AND calldate < {p} GROUP BY linkedid) AS calls"
)


def paired(
    ours: Callable[[], Any], base: Callable[[], Any], runs: int
) -> tuple[float, float, Any, Any]:
    """Median times of ``ours`` and ``base`` run alternately (so that load from other processes
    falls on both alike), after one warm-up each, and their last results."""
    a, b = ours(), base()
    t_ours, t_base = [], []
    for _ in range(runs):
        t = time.perf_counter()
        a = ours()
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = base()
        t_base.append(time.perf_counter() - t)
    return statistics.median(t_ours), statistics.median(t_base), a, b


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """Median wall time of ``runs`` calls (after one warm-up) and the last result."""
    result = fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


# -- import --------------------------------------------------------------------------------
def master_csv(rows: int) -> Path:
    """The first ``rows`` rows of the dataset written as cdr_csv writes Master.csv."""
    path = DATA / f"Master_{rows}.csv"
    if path.exists():
        return path
    tsv = dataset_tsv(rows)
    idx = {c: i for i, c in enumerate(LEG_COLUMNS)}
    with tsv.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as out:
        for n, line in enumerate(src):
            if n >= rows:
                break
            f = line.rstrip("\n").split("\t")
            start = datetime.fromisoformat(f[idx["calldate"]])
            dur, bill = int(f[idx["duration"]]), int(f[idx["billsec"]])
            end = start + timedelta(seconds=dur)
            answer = end - timedelta(seconds=bill) if f[idx["disposition"]] == "ANSWERED" else None
            quoted = [
                '"' + f[idx[c]].replace('"', '""') + '"'
                for c in ("accountcode", "src", "dst", "dcontext", "clid", "channel",
                          "dstchannel", "lastapp", "lastdata")
            ]  # fmt: skip
            fmt = '"%Y-%m-%d %H:%M:%S"'
            times = [start.strftime(fmt), answer.strftime(fmt) if answer else "", end.strftime(fmt)]
            tail = [str(dur), str(bill), f'"{f[idx["disposition"]]}"', '"DOCUMENTATION"',
                    f'"{f[idx["uniqueid"]]}"', '""']  # fmt: skip
            out.write(",".join(quoted + times + tail) + "\n")
    return path


def dataset_tsv(rows: int) -> Path:
    """The smallest dataset file (benchmarks/cdr_dataset.py) with at least ``rows`` rows."""
    sizes = sorted(int(p.stem.split("_")[1]) for p in DATA.glob("cdr_*.tsv"))
    for size in sizes:
        if size >= rows:
            return DATA / f"cdr_{size}.tsv"
    sys.exit(f"no dataset of {rows} rows: run benchmarks/cdr_dataset.py --rows {rows} first")


def bench_import(rows: int, runs: int) -> dict[str, Any]:
    """pbxgate's import of a fresh store and the shell's ``.import``, alternated ``runs``
    times (load from elsewhere falls on both alike): medians, and each run's ratio."""
    path = master_csv(rows)
    ours_runs, shell_runs, phase_runs, shell_paged = [], [], [], []
    for _ in range(runs):
        ours, rows_phase = fresh_import(path, rows)
        ours_runs.append(ours)
        phase_runs.append(rows_phase)
        shell_runs.append(shell_import(path))
        shell_paged.append(shell_import(path, STORE_PAGE_SIZE))
    ours, shell = statistics.median(ours_runs), statistics.median(shell_runs)
    store = Store.open_sqlite(DATA / "import_bench.sqlite3")  # the last run's store
    t = time.perf_counter()
    again = import_csv(path, store, Zones(None, None))  # read whole: --full
    reimport = time.perf_counter() - t
    assert again.inserted == 0
    t = time.perf_counter()
    resumed = import_csv(path, store, Zones(None, None), resume=True)  # the same file again
    reimport_resumed = time.perf_counter() - t
    assert resumed.rows == 0
    copy = DATA / "Master_copy.csv"  # the file under another name (logrotate's Master.csv.1)
    shutil.copyfile(path, copy)
    t = time.perf_counter()
    copied = import_csv(copy, store, Zones(None, None), resume=True)
    reimport_copy = time.perf_counter() - t
    copy.unlink()
    assert copied.rows == 0
    floor = sqlite_floor(path)
    base = baseline_import(path)
    rows_phase = statistics.median(phase_runs)
    return {
        "rows": rows,
        "runs": runs,
        "pbxgate_s": ours,
        "pbxgate_rows_per_s": rows / ours,
        "pbxgate_rows_s": rows_phase,
        "pbxgate_index_and_commit_s": ours - rows_phase,
        "pbxgate_each_s": ours_runs,
        "reimport_s": reimport,
        "sqlite_floor_s": floor,
        "sqlite_floor_rows_per_s": rows / floor,
        "baseline_s": base,
        "baseline_rows_per_s": rows / base,
        "ratio": ours / base,
        "sqlite3_shell_import_s": shell,
        "sqlite3_shell_rows_per_s": rows / shell,
        "sqlite3_shell_each_s": shell_runs,
        "ratio_to_shell": ours / shell,
        "ratio_to_shell_each": [a / b for a, b in zip(ours_runs, shell_runs, strict=True)],
        # the shell given the store's page size too
        "sqlite3_shell_store_pages_s": statistics.median(shell_paged),
        "ratio_to_shell_store_pages": ours / statistics.median(shell_paged),
        "reimport_to_fresh": reimport / ours,
        "reimport_same_file_s": reimport_resumed,
        "reimport_copy_s": reimport_copy,
    }


def fresh_import(path: Path, rows: int) -> tuple[float, float]:
    """``cdr import`` of ``path`` into a new store: the time, and that of its rows phase (up to
    the first index being built)."""
    store_path = DATA / "import_bench.sqlite3"
    for p in DATA.glob("import_bench.sqlite3*"):
        p.unlink()
    store = Store.open_sqlite(store_path)
    phases: list[float] = []
    began = time.perf_counter()
    result = import_csv(
        path, store, Zones(None, None), resume=True,
        note=lambda _what: phases.append(time.perf_counter()),
    )  # fmt: skip
    done = time.perf_counter()
    assert result.inserted == rows and not result.rejects, result.rejected
    store.engine.dispose()
    return done - began, (phases[0] if phases else done) - began


def sqlite_floor(path: Path) -> float:
    """What SQLite alone needs for the file: the rows parsed, checked and keyed beforehand (not
    timed), then pbxgate's own bulk load, same statement, same store, same indexes, same single
    transaction. No importer that keeps these indexes can be faster on this machine."""
    store_path = DATA / "import_floor.sqlite3"
    for p in DATA.glob("import_floor.sqlite3*"):
        p.unlink()
    store = Store.open_sqlite(store_path)
    zones = Zones(None, None)
    with path.open(encoding="utf-8", newline="") as fh:
        ready = []
        for fields in csv.reader(fh):
            plan = plan_for_row(fields, store.table.name)
            ready.append(complete_row(fields, plan, zones))
    gc.disable()
    t = time.perf_counter()
    with store.loader(bulk=True, expected=len(ready)) as loader:
        for at in range(0, len(ready), 20000):
            loader.write(plan.statement, ready[at : at + 20000])
    elapsed = time.perf_counter() - t
    gc.enable()
    assert store.count() == len(ready)
    return elapsed


def shell_import(path: Path, page_size: int | None = None) -> float:
    """The best existing tool for the job: the sqlite3 shell's ``.import`` of the same file into
    a table of the store's 30 columns (the file's 18 first, in its order), then the store's six
    indexes built afterwards, in one transaction, WAL and synchronous=NORMAL as the store has.
    It checks nothing and keys nothing (the row key column stays NULL). ``page_size``: as the
    store's (SQLite's default, 4 KiB, when None: the shell as an admin would run it)."""
    db = DATA / "import_shell.sqlite3"
    for p in DATA.glob("import_shell.sqlite3*"):
        p.unlink()
    csv_cols = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel",
                "lastapp", "lastdata", "calldate", "answer", "end_", "duration", "billsec",
                "disposition", "amaflags", "uniqueid", "userfield"]  # fmt: skip
    rest = ["did", "recordingfile", "cnum", "cnam", "outbound_cnum", "outbound_cnam",
            "dst_cnam", "linkedid", "peeraccount", "sequence", "rowkey", "id"]  # fmt: skip
    ints = {"duration", "billsec", "sequence", "rowkey", "id"}
    cols = ", ".join(f"{c} {'INTEGER' if c in ints else 'TEXT'}" for c in csv_cols + rest)
    indexes = [
        "CREATE UNIQUE INDEX ux_rowkey ON cdr (rowkey)",
        "CREATE INDEX ix_calldate ON cdr (calldate)",
        "CREATE INDEX ix_src ON cdr (src, calldate)",
        "CREATE INDEX ix_dst ON cdr (dst, calldate)",
        "CREATE INDEX ix_did ON cdr (did, calldate)",
        "CREATE INDEX ix_linkedid ON cdr (linkedid)",
    ]
    script = "\n".join([
        f"PRAGMA page_size = {page_size or 4096};",
        "PRAGMA journal_mode = WAL;", "PRAGMA synchronous = NORMAL;",
        f"CREATE TABLE cdr ({cols});", ".mode csv", "BEGIN;", f".import {path} cdr",
        *(f"{ix};" for ix in indexes), "COMMIT;",
    ])  # fmt: skip
    t = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    elapsed = time.perf_counter() - t
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM cdr").fetchone()[0] == sum(1 for _ in path.open())
    con.close()
    return elapsed


def baseline_import(path: Path) -> float:
    """csv.reader + sqlite3 executemany into a table with the same indexes, no checks."""
    db = DATA / "import_baseline.sqlite3"
    for p in DATA.glob("import_baseline.sqlite3*"):
        p.unlink()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    cols = [f"c{i}" for i in range(18)]
    con.execute(f"CREATE TABLE cdr ({', '.join(cols)}, rowkey INTEGER UNIQUE)")
    for ix in ("c9", "c2, c9", "c1, c9", "c16"):
        con.execute(f"CREATE INDEX ix_{ix.replace(', ', '_')} ON cdr ({ix})")
    t = time.perf_counter()
    with path.open(encoding="utf-8", newline="") as fh:
        rows = ((*r, hash(tuple(r))) for r in csv.reader(fh))
        con.executemany(f"INSERT OR IGNORE INTO cdr VALUES ({', '.join('?' * 19)})", rows)
    con.commit()
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


# -- query ---------------------------------------------------------------------------------
def source_for(url: str) -> Any:
    settings = CdrSettings(sources={"b": SourceSettings(url=url)})
    return open_source(settings, "b")


def bench_query(runs: int) -> dict[str, Any]:
    import pymysql

    src = source_for(MARIADB)
    cols = ["dst", "src", "duration", "calldate", "recordingfile"]
    ours, legs = timed(
        lambda: api.list_legs(src, ARTICLE_WINDOW, Filters(direction="inbound"), cols), runs
    )
    conn = pymysql.connect(host="127.0.0.1", user="root", database="pbxgate_bench")

    def hand() -> list[Any]:
        with conn.cursor() as cur:
            cur.execute(ARTICLE_SQL, (ARTICLE_WINDOW.start, ARTICLE_WINDOW.end))
            return list(cur.fetchall())

    base, rows = timed(hand, runs)
    assert len(rows) == len(legs), (len(rows), len(legs))
    conn.close()
    src.close()
    return {
        "rows": len(legs),
        "pbxgate_ms": ours * 1000,
        "baseline_ms": base * 1000,
        "ratio": ours / base,
    }


# -- stats ---------------------------------------------------------------------------------
def bench_stats(runs: int) -> dict[str, Any]:
    out = {}
    targets = [("mariadb", MARIADB), ("postgresql", POSTGRESQL), ("sqlite", f"sqlite:///{SQLITE}")]
    if importlib.util.find_spec("MySQLdb"):  # the optional C driver: mysql:// picks it
        targets.insert(1, ("mariadb-mysqlclient", MARIADB.replace("mysql+pymysql", "mysql")))
    for name, url in targets:
        src = source_for(url)
        ours, base, result, row = paired(
            lambda src=src: api.stats(src, MONTH, Filters()),
            lambda src=src: _baseline_stats(src),
            runs,
        )
        legs = _count_legs(src)
        out[name] = {
            "month_rows": legs,
            "calls": result.kpis.calls,
            "baseline_calls": int(row[0]),
            "pbxgate_s": ours,
            "baseline_s": base,
            "ratio": ours / base,
        }
        src.close()
    return out


def _baseline_stats(src: Any) -> Any:
    p = "?" if src.dialect == "sqlite" else "%s"
    lo, hi = (MONTH.start, MONTH.end)
    if src.dialect == "sqlite":
        lo, hi = (f"{lo:%Y-%m-%d %H:%M:%S}", f"{hi:%Y-%m-%d %H:%M:%S}")
    with src.engine.connect() as conn:
        return conn.exec_driver_sql(BASELINE_STATS.format(p=p), (lo, hi)).one()


def _count_legs(src: Any) -> int:
    p = "?" if src.dialect == "sqlite" else "%s"
    lo, hi = (MONTH.start, MONTH.end)
    if src.dialect == "sqlite":
        lo, hi = (f"{lo:%Y-%m-%d %H:%M:%S}", f"{hi:%Y-%m-%d %H:%M:%S}")
    sql = f"SELECT COUNT(*) FROM cdr WHERE calldate >= {p} AND calldate < {p}"
    with src.engine.connect() as conn:
        return int(conn.exec_driver_sql(sql, (lo, hi)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="+", choices=["import", "query", "stats"])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the import run")
    parser.add_argument("--runs", type=int, help="runs of each (import: 3, others: 5)")
    args = parser.parse_args()
    for which in args.which:
        if which == "import":
            res = bench_import(args.rows, args.runs or 3)
        elif which == "query":
            res = bench_query(max(args.runs or 5, 20))
        else:
            res = bench_stats(args.runs or 5)
        print(which, res, flush=True)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
