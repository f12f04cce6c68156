"""A year of a call centre's queue_log: imported into pbxgate's store, then summarised month by
month, beside the sqlite3 shell loading the same file.

* generate: ``pbxgate.queue.generate`` writes a year for ``--agents`` agents (cached under
  benchmarks/.data by its parameters; not timed).
* import: ``pbxgate queue import`` of the whole file into a fresh store (each line parsed and
  checked, its key, three indexes), against the sqlite3 shell's ``.import`` of the same file
  into a one-column table: SQLite taking the lines in, with no parsing and no index, the floor
  for any loader of this file into SQLite. Then the same import again (nothing new: the store
  remembers where the file ended) and with ``--full`` (every line read, all already present).
* months: ``pbxgate queue stats`` and ``pbxgate queue agents`` for each month of the year, as
  a user runs them (a new process each, start-up included), from the store.

    python benchmarks/queue_bench.py --agents 100 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from pbxgate.queue.generate import generate_queue_log
from pbxgate.queue.store import QueueStore

DATA = Path(__file__).parent / ".data"
PBXGATE = [str(Path(sys.executable).parent / "pbxgate")]  # the console script users run


def dataset(year: int, agents: int, calls: int | None, seed: int) -> Path:
    path = DATA / f"queue_log_{year}_{agents}a_{calls or 'default'}c_{seed}"
    if path.is_file():
        return path
    DATA.mkdir(exist_ok=True)
    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        made = generate_queue_log(date(year, 1, 1), date(year, 12, 31), agents=agents,
                                  calls_per_day=calls, seed=seed, tz=ZoneInfo("UTC"))  # fmt: skip
        for line in made:
            out.write(line + "\n")
    tmp.rename(path)
    print(f"generated {path.name} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return path


def timed(func: object) -> float:
    started = time.perf_counter()
    func()  # type: ignore[operator]
    return time.perf_counter() - started


def import_once(log: Path, store_path: Path, **options: bool) -> tuple[float, int]:
    store = QueueStore(store_path)
    try:
        started = time.perf_counter()
        result = store.import_file(log, **options)
        elapsed = time.perf_counter() - started
    finally:
        store.close()
    assert result.rejected == 0, result.rejects[:3]
    return elapsed, result.inserted


def shell_import(log: Path, db: Path) -> float:
    db.unlink(missing_ok=True)
    # one column: a separator no line holds (a real \x01 character); rows end at newlines
    script = f'CREATE TABLE raw (line TEXT);\n.separator "\x01"\n.import {log} raw\n'
    started = time.perf_counter()
    subprocess.run(["sqlite3", str(db)], input=script, text=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2026)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--calls-per-day", type=int, help="default: 40 a weekday per agent")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    log = dataset(args.year, args.agents, args.calls_per_day, args.seed)
    size = log.stat().st_size
    with log.open("rb") as fh:
        lines = sum(1 for _ in fh)
    print(f"{log.name}: {lines:,} lines, {size / 1e6:.0f} MB")
    work = Path(tempfile.mkdtemp(prefix="pbxgate-queue-bench-"))
    try:
        ours, shell = [], []
        for _ in range(args.runs):  # alternated, so that both see the same machine
            store = work / "store.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{store}{suffix}").unlink(missing_ok=True)
            elapsed, inserted = import_once(log, store)
            assert inserted == lines, (inserted, lines)
            ours.append(elapsed)
            shell.append(shell_import(log, work / "shell.db"))
        again, _ = import_once(log, store)
        full, _ = import_once(log, store, resume=False)
        med, floor = statistics.median(ours), statistics.median(shell)
        print(f"import: pbxgate {med:.2f} s = {lines / med:,.0f} lines/s "
              f"(runs {', '.join(f'{t:.2f}' for t in ours)}); sqlite3 shell .import, one "
              f"column, no index: {floor:.2f} s = {lines / floor:,.0f} lines/s "
              f"(runs {', '.join(f'{t:.2f}' for t in shell)}); "
              f"ratio {med / floor:.2f}")  # fmt: skip
        print(f"import again: {again:.3f} s (nothing new); --full: {full:.2f} s")
        config = work / "pbxgate.toml"
        config.write_text(f'[cdr]\ntimezone = "UTC"\nstore = "{store}"\n', encoding="utf-8")
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        for command in ("stats", "agents"):
            times = []
            for month in range(1, 13):
                first = f"{args.year}-{month:02d}-01"
                last = f"{args.year + (month == 12)}-{month % 12 + 1:02d}-01"
                argv = [*PBXGATE, "--config", str(config), "queue", command, "--from", first,
                        "--to", last, "--json"]  # fmt: skip
                started = time.perf_counter()
                done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
                times.append(time.perf_counter() - started)
                assert done.stdout.strip(), done.stderr
            print(f"queue {command} per month: median {statistics.median(times):.2f} s, "
                  f"max {max(times):.2f} s, the year's 12 months {sum(times):.1f} s")  # fmt: skip
        print(f"store: {store.stat().st_size / 1e6:.0f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
