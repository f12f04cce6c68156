"""The caller's name: CALLERID(name), else a phonebook CSV, else the CDR store's last cnam.

Phonebook: a CSV file with the number in the first column and the name in the second (a header
row is fine: it matches no number). Numbers are compared by their digits, and Russian numbers
written as ``+7...``, ``8...`` or ``7...`` are the same number. The CDR store is read read-only;
a missing file, table or column simply gives no name.
"""

from __future__ import annotations

import csv
import logging
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)


def number_key(number: str) -> str:
    """Digits only; an 11-digit Russian number loses its 7/8 trunk prefix."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) == 11 and digits[0] in "78":
        return digits[1:]
    return digits


def number_variants(number: str) -> list[str]:
    """How the same number may be written in CDR ``src`` (exact first)."""
    key = number_key(number)
    variants = [number, key]
    if len(key) == 10:
        variants += ["7" + key, "8" + key, "+7" + key]
    return list(dict.fromkeys(v for v in variants if v))


def load_phonebook(path: Path) -> dict[str, str]:
    book: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.reader(fh):
                if len(row) >= 2 and number_key(row[0]) and row[1].strip():
                    book.setdefault(number_key(row[0]), row[1].strip())
    except OSError as exc:
        log.warning("cannot read phonebook %s: %s", path, exc.strerror)
    return book


def cdr_cnam(store: Path, number: str) -> str:
    """The most recent non-empty cnam for ``number`` in pbxgate's CDR store, or ""."""
    if not store.is_file():
        return ""
    variants = number_variants(number)
    marks = ",".join("?" * len(variants))
    try:
        conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=1.0)
        try:
            row = conn.execute(
                f"SELECT cnam FROM cdr WHERE src IN ({marks}) AND cnam IS NOT NULL"
                " AND cnam != '' ORDER BY calldate DESC LIMIT 1",
                variants,
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        log.debug("no cnam from %s: %s", store, exc)
        return ""
    return str(row[0]) if row else ""


class NameResolver:
    def __init__(self, phonebook: Path | None = None, cdr_store: Path | None = None) -> None:
        self.phonebook = phonebook
        self.cdr_store = cdr_store
        self._book: dict[str, str] | None = None
        self._book_mtime: float | None = None

    def _phonebook(self) -> dict[str, str]:
        if self.phonebook is None:
            return {}
        try:
            mtime = self.phonebook.stat().st_mtime
        except OSError:
            mtime = None
        if self._book is None or mtime != self._book_mtime:
            self._book = load_phonebook(self.phonebook) if mtime is not None else {}
            self._book_mtime = mtime
        return self._book

    def resolve(self, number: str, callerid_name: str) -> tuple[str, str]:
        """(name, where it came from: "callerid", "phonebook", "cdr" or "")."""
        if callerid_name.strip():
            return callerid_name.strip(), "callerid"
        if not number:
            return "", ""
        name = self._phonebook().get(number_key(number), "")
        if name:
            return name, "phonebook"
        if self.cdr_store is not None:
            name = cdr_cnam(self.cdr_store, number)
            if name:
                return name, "cdr"
        return "", ""


__all__ = ["NameResolver", "cdr_cnam", "load_phonebook", "number_key", "number_variants"]
