"""``pbxgate cdr doctor``: is a source reachable, what does its table hold, which indexes help.

History queries on tables of tens of millions of rows are slow with FreePBX's single-column
indexes (reference cdr.md §7: 9 min 36 s for ``src`` + date range on 80 M rows). The doctor
names each index pbxgate's queries use and, where one is missing, prints the exact statement to
add it, to be run by the administrator (pbxgate itself never alters a source).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from pbxgate.cdr.schema import RECOMMENDED_INDEXES
from pbxgate.cdr.source import Source
from pbxgate.errors import PbxgateError

OK, WARN, FAIL = "ok", "warn", "fail"

_WHY = {
    ("calldate",): "every time window",
    ("linkedid",): "grouping legs into calls",
    ("src", "calldate"): "a caller's history (--src, missed-call follow-up)",
    ("dst", "calldate"): "an extension's history (--dst)",
    ("did", "calldate"): "a DID's history (--did)",
}


@dataclass(frozen=True)
class Check:
    status: str
    what: str
    detail: str = ""


def covered(cols: tuple[str, ...], indexes: list[tuple[str, tuple[str, ...]]]) -> bool:
    """Whether some index has ``cols`` as its leftmost columns (MySQL leftmost-prefix rule)."""
    want = tuple(c.lower() for c in cols)
    return any(tuple(c.lower() for c in ix[: len(want)]) == want for _, ix in indexes)


def create_index_sql(source: Source, cols: tuple[str, ...]) -> str:
    table = source.layout.table
    name = f"ix_{table}_{'_'.join(cols)}"
    return f"CREATE INDEX {name} ON {table} ({', '.join(cols)});"


def diagnose(source: Source) -> list[Check]:
    checks = [Check(OK, "source", source.where())]
    try:
        with source.errors("connect"), source.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except PbxgateError as exc:
        return [*checks, Check(FAIL, "reachable", str(exc))]
    checks.append(Check(OK, "reachable", f"{source.dialect} answers"))
    try:
        layout = source.layout
    except PbxgateError as exc:
        return [*checks, Check(FAIL, "table", str(exc))]
    checks.append(
        Check(
            OK,
            "table",
            f"{layout.table}: {layout.kind} layout, time in {layout.time_column}"
            + (" (Unix seconds)" if layout.epoch_times else ""),
        )
    )
    missing = layout.missing()
    if missing:
        note = ", ".join(missing)
        checks.append(Check(WARN, "columns", f"absent: {note}"))
    else:
        checks.append(Check(OK, "columns", "all known CDR columns present"))
    if layout.group_column != "linkedid":
        checks.append(Check(WARN, "calls", "no linkedid: legs are grouped by uniqueid"))
    checks += _index_checks(source)
    return checks


def _index_checks(source: Source) -> list[Check]:
    layout = source.layout
    indexes = source.indexes()
    out = []
    for cols in RECOMMENDED_INDEXES:
        wanted = tuple(layout.time_column if c == "calldate" else c for c in cols)
        if not all(layout.has(c) for c in wanted):
            continue
        label = "(" + ", ".join(wanted) + ")"
        if covered(wanted, indexes):
            out.append(Check(OK, f"index {label}", _WHY[cols]))
        else:
            out.append(
                Check(
                    WARN,
                    f"index {label}",
                    f"for {_WHY[cols]}; add: {create_index_sql(source, wanted)}",
                )
            )
    return out


__all__ = ["FAIL", "OK", "WARN", "Check", "covered", "create_index_sql", "diagnose"]
