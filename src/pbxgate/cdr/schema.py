"""CDR table layouts: FreePBX's ``asteriskcdrdb.cdr``, Asterisk's own, cdr_sqlite3_custom, ours.

Asterisk writes call detail records in several shapes (reference: cdr.md §2-4):

* FreePBX ``cdr`` (``cdr_adaptive_odbc`` with ``alias start => calldate``): ``calldate`` holds the
  start, ``amaflags`` is an INT, extra columns ``did``, ``recordingfile``, ``cnum``, ``cnam``,
  ``linkedid``, ``peeraccount``, ``sequence`` exist only on newer installs.
* Asterisk's alembic schema: ``start``/``answer``/``end`` instead of ``calldate``,
  ``amaflags`` as text.
* cdr_sqlite3_custom: ``AcctId`` primary key and whatever columns its mapping names.

We read any of them by detecting the columns at run time (:func:`detect_layout`) and never
write to them. pbxgate's own embedded store (:func:`store_table`) keeps the FreePBX columns plus
``answer``/``end`` and a ``rowkey`` that makes imports idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
)

from pbxgate.errors import SourceError

# The columns a leg can carry, in FreePBX order (reference cdr.md §2).
LEG_COLUMNS: tuple[str, ...] = (
    "calldate",
    "clid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "lastdata",
    "duration",
    "billsec",
    "disposition",
    "amaflags",
    "accountcode",
    "uniqueid",
    "userfield",
    "did",
    "recordingfile",
    "cnum",
    "cnam",
    "outbound_cnum",
    "outbound_cnam",
    "dst_cnam",
    "linkedid",
    "peeraccount",
    "sequence",
)

# Without these a table is not a CDR table we can analyse.
REQUIRED = ("src", "dst", "duration", "billsec", "disposition")

# Asterisk's AMA flag numbers (include/asterisk/cdr.h) for FreePBX's INT column.
AMAFLAGS = {0: "", 1: "OMIT", 2: "BILLING", 3: "DOCUMENTATION"}

# Indexes that make pbxgate's queries range scans rather than table scans (cdr.md §7).
RECOMMENDED_INDEXES: tuple[tuple[str, ...], ...] = (
    ("calldate",),
    ("linkedid",),
    ("src", "calldate"),
    ("dst", "calldate"),
    ("did", "calldate"),
)


@dataclass(frozen=True)
class Layout:
    """What a CDR table looks like: its name, its start-time column, which columns exist."""

    table: str
    time_column: str
    columns: frozenset[str]
    amaflags_numeric: bool = False
    # Times as Unix seconds in an INTEGER column (cdr_sqlite3_custom's ``start(int64)``).
    epoch_times: bool = False
    # Zone-aware times (PostgreSQL's timestamp with time zone, as Asterisk's cdr_pgsql schema
    # has it): the driver hands them over in the session's zone, converted to the CDR's
    aware_times: bool = False

    def has(self, column: str) -> bool:
        return column in self.columns

    @property
    def kind(self) -> str:
        if self.time_column == "start":
            return "asterisk"
        return "freepbx" if self.has("recordingfile") or self.has("did") else "classic"

    @property
    def group_column(self) -> str:
        """How legs join into calls: ``linkedid``, or ``uniqueid`` on old installs."""
        return "linkedid" if self.has("linkedid") else "uniqueid"

    def missing(self) -> list[str]:
        wanted = [c for c in LEG_COLUMNS if c != "calldate"]
        return [c for c in wanted if c not in self.columns]


def detect_layout(table: str, columns: dict[str, str]) -> Layout:
    """Work out the layout from ``{column name: SQL type name}`` as the database reports it."""
    lowered = {name.lower(): kind.upper() for name, kind in columns.items()}
    if "calldate" in lowered:
        time_column = "calldate"
    elif "start" in lowered:
        time_column = "start"
    else:
        raise SourceError(
            f"table {table} has neither calldate nor start",
            hint="is it a CDR table? check the source's table setting",
        )
    absent = [c for c in REQUIRED if c not in lowered]
    if absent:
        raise SourceError(f"table {table} lacks CDR columns: {', '.join(absent)}")
    amaflags = lowered.get("amaflags", "")
    numeric = any(word in amaflags for word in ("INT", "NUMERIC", "DECIMAL"))
    epoch = "INT" in lowered[time_column]
    aware = "TIME ZONE" in lowered[time_column] or "TIMESTAMPTZ" in lowered[time_column]
    return Layout(
        table, time_column, frozenset(lowered), amaflags_numeric=numeric, epoch_times=epoch,
        aware_times=aware,
    )  # fmt: skip


def store_table(metadata: MetaData, name: str = "cdr") -> Table:
    """pbxgate's embedded store: FreePBX's columns, ``answer``/``end``, and an import key."""
    text = {c: String(255 if c in ("userfield", "recordingfile") else 80) for c in LEG_COLUMNS}
    columns: list[Column[object]] = [Column("id", Integer, primary_key=True)]
    for col in LEG_COLUMNS:
        if col == "calldate":
            columns.append(Column(col, DateTime, nullable=False))
        elif col in ("duration", "billsec", "sequence"):
            columns.append(Column(col, Integer, nullable=False, default=0))
        elif col == "amaflags":
            columns.append(Column(col, String(45), nullable=False, default=""))
        else:
            columns.append(Column(col, text[col], nullable=False, default=""))
    columns += [
        Column("answer", DateTime, nullable=True),
        Column("end", DateTime, nullable=True),
        # A 64-bit digest (see pbxgate.cdr.store.rowkey): small, so its unique index stays fast.
        Column("rowkey", BigInteger, nullable=False),
    ]
    table = Table(name, metadata, *columns)
    # A named index rather than a UNIQUE constraint, so that a bulk load can drop it and
    # build it once at the end (pbxgate.cdr.store.Loader).
    Index(f"ux_{name}_rowkey", table.c.rowkey, unique=True)
    for cols in RECOMMENDED_INDEXES:
        Index(f"ix_{name}_{'_'.join(cols)}", *(table.c[c] for c in cols))
    return table


__all__ = [
    "AMAFLAGS",
    "LEG_COLUMNS",
    "RECOMMENDED_INDEXES",
    "REQUIRED",
    "Layout",
    "detect_layout",
    "store_table",
]
