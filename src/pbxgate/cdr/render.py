"""Output as an aligned table, CSV, JSON or NDJSON: pure functions from rows to text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

FORMATS = ("table", "csv", "json", "ndjson")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value


def render(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> Iterator[str]:
    """Yield the output line by line (each without its newline)."""
    if fmt == "table":
        yield from _table(list(rows), columns)
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])
        yield from buf.getvalue().splitlines()
    elif fmt == "json":
        data = [{c: _plain(row.get(c)) for c in columns} for row in rows]
        yield from json.dumps(data, ensure_ascii=False, indent=2).splitlines()
    elif fmt == "ndjson":
        for row in rows:
            yield json.dumps({c: _plain(row.get(c)) for c in columns}, ensure_ascii=False)
    else:
        raise ValueError(f"unknown format {fmt!r}")


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows)
        and all(isinstance(row.get(c), int | float) or row.get(c) is None for row in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    yield line(list(columns))
    yield "  ".join("-" * w for w in widths)
    for r in cells:
        yield line(r)


def render_text(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    return "".join(line + "\n" for line in render(rows, columns, fmt))


__all__ = ["FORMATS", "cell", "render", "render_text"]
