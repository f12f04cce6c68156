"""Build the 10,000,000-row benchmark tables (FreePBX layout) in MariaDB, PostgreSQL and SQLite.

One realistic month is generated (``pbxgate.cdr.generate``: ring groups, queues, transfers...)
and laid end to end, month after month, with fresh uniqueids, until the table holds ``--rows``
rows. The tables carry FreePBX's own indexes (calldate, dst, accountcode, uniqueid, did,
recordingfile, linkedid), as a FreePBX 17 install has them.

    python benchmarks/cdr_dataset.py --rows 10000000 \
        --mariadb mysql+pymysql://root@127.0.0.1/pbxgate_bench \
        --postgresql postgresql+psycopg://postgres@127.0.0.1/pbxgate_bench \
        --sqlite benchmarks/.data/cdr10m.sqlite3
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from pbxgate.cdr.generate import generate
from pbxgate.cdr.schema import LEG_COLUMNS

DATA = Path(__file__).parent / ".data"
FIRST_DAY = date(2023, 1, 2)
MONTH_DAYS = 28  # four whole weeks, so weekdays line up when months are laid end to end
INDEXES = ("calldate", "dst", "accountcode", "uniqueid", "did", "linkedid")
INT_COLS = {"duration", "billsec", "amaflags", "sequence"}


def month_rows(calls_per_day: int) -> list[list[str]]:
    rows = []
    last = FIRST_DAY + timedelta(days=MONTH_DAYS - 1)
    for leg in generate(FIRST_DAY, last, seed=7, calls_per_day=calls_per_day):
        row = []
        for col in LEG_COLUMNS:
            if col == "calldate":
                row.append(leg.start.strftime("%Y-%m-%d %H:%M:%S"))
            elif col == "amaflags":
                row.append("3")
            else:
                row.append(str(getattr(leg, col, "")))
        rows.append(row)
    return rows


def write_tsv(path: Path, total: int, calls_per_day: int) -> int:
    month = month_rows(calls_per_day)
    written, k = 0, 0
    with path.open("w", encoding="utf-8") as fh:
        while written < total:
            shift = timedelta(days=MONTH_DAYS * k)
            for row in month:
                if written >= total:
                    break
                out = list(row)
                out[0] = (_parse(row[0]) + shift).strftime("%Y-%m-%d %H:%M:%S")
                for col in ("uniqueid", "linkedid"):
                    i = LEG_COLUMNS.index(col)
                    out[i] = f"{row[i]}.{k}"
                fh.write("\t".join(out) + "\n")
                written += 1
            k += 1
            print(f"\r{written:,} rows", end="", file=sys.stderr)
    print(file=sys.stderr)
    return written


def _parse(text: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(text)


def ddl(dialect: str) -> list[str]:
    cols = []
    for col in LEG_COLUMNS:
        if col == "calldate":
            kind = "TIMESTAMP" if dialect == "postgresql" else "DATETIME"
            cols.append(f"calldate {kind} NOT NULL")
        elif col in INT_COLS:
            cols.append(f"{col} INTEGER NOT NULL DEFAULT 0")
        else:
            cols.append(f"{col} VARCHAR(255) NOT NULL DEFAULT ''")
    tail = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    stmts = ["DROP TABLE IF EXISTS cdr", f"CREATE TABLE cdr ({', '.join(cols)}){tail}"]
    return stmts


def indexes() -> list[str]:
    return [f"CREATE INDEX cdr_{c} ON cdr ({c})" for c in INDEXES]


def load_mariadb(url: str, tsv: Path) -> None:
    import pymysql

    u = make_url(url)
    conn = pymysql.connect(
        host=u.host,
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        local_infile=True,
        charset="utf8mb4",
    )
    cur = conn.cursor()
    cur.execute(f"CREATE DATABASE IF NOT EXISTS {u.database} CHARACTER SET utf8mb4")
    cur.execute(f"USE {u.database}")
    for stmt in ddl("mysql"):
        cur.execute(stmt)
    cur.execute(
        f"LOAD DATA LOCAL INFILE '{tsv}' INTO TABLE cdr CHARACTER SET utf8mb4 "
        f"FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({', '.join(LEG_COLUMNS)})"
    )
    conn.commit()
    for stmt in indexes():
        cur.execute(stmt)
    cur.execute("ANALYZE TABLE cdr")
    conn.close()


def load_postgresql(url: str, tsv: Path) -> None:
    import psycopg

    u = make_url(url)
    admin = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname="postgres",
                            autocommit=True)  # fmt: skip
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone()
    if not exists:
        admin.execute(f"CREATE DATABASE {u.database}")
    admin.close()
    with psycopg.connect(
        host=u.host, port=u.port or 5432, user=u.username, dbname=u.database
    ) as conn:
        for stmt in ddl("postgresql"):
            conn.execute(stmt)
        with (
            conn.cursor().copy(f"COPY cdr ({', '.join(LEG_COLUMNS)}) FROM STDIN") as copy,
            tsv.open("rb") as fh,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        for stmt in indexes():
            conn.execute(stmt)
        conn.execute("ANALYZE cdr")


def load_sqlite(path: Path, tsv: Path) -> None:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    for stmt in ddl("sqlite"):
        con.execute(stmt)
    marks = ", ".join("?" * len(LEG_COLUMNS))
    with tsv.open(encoding="utf-8") as fh:
        con.executemany(
            f"INSERT INTO cdr VALUES ({marks})", (line.rstrip("\n").split("\t") for line in fh)
        )
    con.commit()
    for stmt in indexes():
        con.execute(stmt)
    con.execute("ANALYZE")
    con.commit()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--calls-per-day", type=int, default=6200)
    parser.add_argument("--mariadb")
    parser.add_argument("--postgresql")
    parser.add_argument("--sqlite", type=Path)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    tsv = DATA / f"cdr_{args.rows}.tsv"
    if not tsv.exists():
        t = time.perf_counter()
        write_tsv(tsv, args.rows, args.calls_per_day)
        print(f"tsv: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    for name, target, loader in (
        ("mariadb", args.mariadb, load_mariadb),
        ("postgresql", args.postgresql, load_postgresql),
        ("sqlite", args.sqlite, load_sqlite),
    ):
        if target:
            t = time.perf_counter()
            loader(target, tsv)  # type: ignore[operator]
            print(f"{name}: loaded in {time.perf_counter() - t:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
