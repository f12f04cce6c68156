import sqlite3
from pathlib import Path

import pytest

from pbxgate.notify.names import NameResolver, cdr_cnam, load_phonebook, number_key


@pytest.mark.parametrize(
    ("raw", "key"),
    [("+7 916 123-45-67", "9161234567"), ("89161234567", "9161234567"), ("201", "201")],
)
def test_number_key(raw: str, key: str) -> None:
    assert number_key(raw) == key


def make_store(path: Path, rows: list[tuple[str, str, str]]) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE cdr (calldate TEXT, src TEXT, cnam TEXT, dst TEXT)")
    conn.executemany("INSERT INTO cdr VALUES (?, ?, ?, '100')", rows)
    conn.commit()
    conn.close()


def test_cdr_store_gives_the_latest_nonempty_cnam(tmp_path: Path) -> None:
    store = tmp_path / "cdr.sqlite3"
    make_store(
        store,
        [
            ("2024-01-01 10:00:00", "89161234567", "Old Name"),
            ("2024-03-01 10:00:00", "+79161234567", "New Name"),
            ("2024-04-01 10:00:00", "+79161234567", ""),
            ("2024-05-01 10:00:00", "74950000000", "Other"),
        ],
    )
    assert cdr_cnam(store, "+79161234567") == "New Name"
    assert cdr_cnam(store, "9161234567") == "New Name"
    assert cdr_cnam(store, "+70000000000") == ""


def test_cdr_store_missing_file_or_table_gives_nothing(tmp_path: Path) -> None:
    assert cdr_cnam(tmp_path / "absent.sqlite3", "123456") == ""
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    assert cdr_cnam(empty, "123456") == ""
    assert not (tmp_path / "absent.sqlite3").exists()  # read-only: nothing was created


def test_resolution_order(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    book.write_text("+79161234567,Из книги\n", encoding="utf-8")
    store = tmp_path / "cdr.sqlite3"
    make_store(store, [("2024-01-01", "+79161234567", "Из CDR"), ("2024-01-01", "555000", "X")])
    r = NameResolver(book, store)
    assert r.resolve("+79161234567", "CallerID") == ("CallerID", "callerid")
    assert r.resolve("+79161234567", "") == ("Из книги", "phonebook")
    assert r.resolve("555000", "") == ("X", "cdr")
    assert r.resolve("", "") == ("", "")
    assert r.resolve("999", "") == ("", "")


def test_phonebook_reloads_when_changed_and_tolerates_absence(tmp_path: Path) -> None:
    book = tmp_path / "book.csv"
    r = NameResolver(book, None)
    assert r.resolve("+79161234567", "") == ("", "")
    book.write_text("+79161234567,Анна\n", encoding="utf-8")
    assert r.resolve("+79161234567", "") == ("Анна", "phonebook")
    assert load_phonebook(tmp_path / "nope.csv") == {}
