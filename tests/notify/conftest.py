"""The outbox's places: the same contract runs on a SQLite file, MariaDB and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pbxgate.notify.outbox import Outbox
from tests.conftest import require_dsn

SERVERS = {"mariadb": "PBXGATE_TEST_MARIADB_DSN", "postgresql": "PBXGATE_TEST_POSTGRESQL_DSN"}
TABLES = ("pbxgate_messages", "pbxgate_deliveries", "pbxgate_events", "pbxgate_meta")


@dataclass
class Place:
    """Where a test's outbox lives; :meth:`open` gives another connection to the same one
    (another process, or another node of a shared outbox)."""

    kind: str
    target: str
    opened: list[Outbox] = field(default_factory=list)

    def open(self, node: str = "node-a", *, synchronous: str = "FULL") -> Outbox:
        if self.kind == "sqlite":
            box = Outbox.open(Path(self.target), synchronous=synchronous)
        else:
            box = Outbox.connect(self.target, node=node)
        self.opened.append(box)
        return box

    def empty(self) -> None:
        """Start again from an empty outbox (the tables stay)."""
        if self.kind == "sqlite":
            Path(self.target).unlink(missing_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(self.target + suffix).unlink(missing_ok=True)
            return
        from sqlalchemy import inspect

        engine = _engine(self.target)
        try:
            present = set(inspect(engine).get_table_names())
        finally:
            engine.dispose()
        _run(self.target, [f"DELETE FROM {t}" for t in TABLES[:3] if t in present])

    def close(self) -> None:
        for box in self.opened:
            box.close()
        self.opened.clear()


def _engine(dsn: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(dsn)


def _run(dsn: str, statements: list[str]) -> None:
    from sqlalchemy import text

    engine = _engine(dsn)
    try:
        with engine.begin() as conn:
            for sql in statements:
                conn.execute(text(sql))
    finally:
        engine.dispose()


def make_place(kind: str, tmp_path: Path) -> Place:
    if kind == "sqlite":
        return Place(kind, str(tmp_path / "outbox.sqlite3"))
    dsn = require_dsn(SERVERS[kind])
    _run(dsn, [f"DROP TABLE IF EXISTS {t}" for t in TABLES])
    return Place(kind, dsn)


@pytest.fixture(params=["sqlite", "mariadb", "postgresql"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    where = make_place(request.param, tmp_path)
    yield where
    where.close()
