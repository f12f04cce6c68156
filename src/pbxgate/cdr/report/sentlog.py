"""Which scheduled reports were sent: a small SQLite table keyed by schedule and period.

The scheduler asks before it sends and records right after the server accepted the message,
so a restart, a retry or a second fire of the same period never mails the same report twice.
The one gap left (the server accepted, the process died before the record) is narrowed by a
``Message-ID`` derived from schedule and period: clients that dedupe by it show one copy.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from pbxgate.private import private_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sent_reports (
    schedule TEXT NOT NULL,
    period_start TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    recipients TEXT NOT NULL,
    PRIMARY KEY (schedule, period_start)
)
"""


class SentLog:
    def __init__(self, path: Path) -> None:
        private_file(path, companions=True)  # recipients' addresses
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def was_sent(self, schedule: str, period_start: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM sent_reports WHERE schedule = ? AND period_start = ?",
            (schedule, period_start),
        ).fetchone()
        return row is not None

    def mark_sent(
        self, schedule: str, period_start: str, at: datetime, recipients: list[str]
    ) -> None:
        # Durable before we go on (synchronous=FULL is SQLite's default in WAL mode too).
        self._db.execute(
            "INSERT OR IGNORE INTO sent_reports VALUES (?, ?, ?, ?)",
            (schedule, period_start, at.isoformat(), ",".join(recipients)),
        )

    def sent(self) -> list[tuple[str, str, str]]:
        query = "SELECT schedule, period_start, sent_at FROM sent_reports ORDER BY sent_at"
        return list(self._db.execute(query))

    def close(self) -> None:
        self._db.close()


__all__ = ["SentLog"]
