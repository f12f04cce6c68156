"""How long a month's call report takes over the 10,000,000-row CDR tables.

March 2024 (the data starts on 2023-01-02), the report the way ``pbxgate cdr report --month``
builds it: one query for February and March plus the call-back day after (``collect``), the
dict (``assemble``), then each renderer. Phases are timed separately so that the numbers say
where the time goes; each is the median of ``--runs`` runs after one warm-up.

Prepare the tables as for ``benchmarks/cdr_bench.py`` (docs/benchmarks.md), then:

    .venv/bin/python benchmarks/report_month.py --runs 3
    .venv/bin/python benchmarks/report_month.py --backends sqlite --runs 1
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from cdr_bench import timed  # the same median-of-runs timing (benchmarks/ is on the path)
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.report.build import ReportOptions, assemble, collect
from pbxgate.cdr.report.formats import render
from pbxgate.cdr.settings import CdrSettings, SourceSettings
from pbxgate.cdr.source import open_source
from pbxgate.cdr.window import Window

DATA = Path(__file__).parent / ".data"
BACKENDS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/pbxgate_bench",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/pbxgate_bench",
    "sqlite": f"sqlite:///{DATA / 'cdr10m.sqlite3'}",
}
MONTH = Window(datetime(2024, 3, 1), datetime(2024, 4, 1))
NOW = datetime(2024, 4, 2, 7, 0)
FORMATS = ("text", "html", "xlsx", "csv", "json")


def bench(name: str, url: str, runs: int) -> dict[str, Any]:
    source = open_source(CdrSettings(sources={"b": SourceSettings(url=url)}), "b")
    opts = ReportOptions(period="month", language="ru", source=name)
    rule = InternalRule()
    try:
        t_collect, calls = timed(lambda: collect(source, MONTH, rule, opts, NOW), runs)
    finally:
        source.close()
    t_assemble, report = timed(lambda: assemble(calls, MONTH, opts, NOW), runs)
    out: dict[str, Any] = {
        "calls_read": len(calls),
        "legs_read": sum(len(c.legs) for c in calls),
        "month_calls": report["kpis"][0]["value"],
        "collect_s": round(t_collect, 2),
        "assemble_s": round(t_assemble, 2),
    }
    for fmt in FORMATS:
        seconds, body = timed(lambda fmt=fmt: render(report, fmt), runs)
        out[f"{fmt}_s"] = round(seconds, 2)
        out[f"{fmt}_bytes"] = len(body)
    out["total_html_s"] = round(t_collect + t_assemble + out["html_s"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for name in args.backends:
        print(name, bench(name, BACKENDS[name], args.runs), flush=True)


if __name__ == "__main__":
    main()
