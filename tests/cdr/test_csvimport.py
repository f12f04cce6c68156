"""Master.csv import: the rows a real Asterisk 22 wrote, every column variant, broken rows."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest

from pbxgate.cdr.csvexport import master_csv_line
from pbxgate.cdr.csvimport import follow_csv, import_csv, layout_for, parse_row
from pbxgate.cdr.generate import generate
from pbxgate.cdr.query import NumberFilter
from pbxgate.cdr.store import STORE_COLUMNS, Store
from pbxgate.cdr.window import Zones, zone
from pbxgate.errors import InputError, SourceError

LOCAL = Zones(source=zone("Europe/Moscow"), display=zone("Europe/Moscow"))


def captured(fixtures: Path, section: str) -> list[str]:
    """The data lines of one ``## section`` of cdr_samples.txt."""
    lines, inside = [], False
    for line in (fixtures / "cdr_samples.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("## cdr_"):
            inside = line.startswith(f"## {section} ")
            continue
        if inside and line.startswith('"'):
            lines.append(line)
    return lines


def store(tmp_path: Path) -> Store:
    return Store.open_sqlite(tmp_path / "store.sqlite3")


def test_rows_written_by_asterisk_22(asterisk_fixtures: Path, tmp_path: Path) -> None:
    lines = captured(asterisk_fixtures, "cdr_csv")
    assert len(lines) == 2
    answered, missed = (parse_row(next(iter([_fields(line)])), LOCAL) for line in lines)
    assert (answered.src, answered.dst, answered.disposition) == ("84991111111", "100", "ANSWERED")
    assert answered.clid == '"Oleg Ivanov" <84991111111>' and answered.cnam == "Oleg Ivanov"
    assert (answered.duration, answered.billsec, answered.uniqueid) == (3, 2, "1795696949.1")
    assert answered.answer == datetime(2026, 11, 26, 12, 42, 29)
    assert missed.answer is None and missed.disposition == "NO ANSWER"
    assert missed.end == datetime(2026, 11, 26, 12, 42, 41)


def test_cdr_custom_mapping_is_recognised(asterisk_fixtures: Path) -> None:
    (line,) = captured(asterisk_fixtures, "cdr_custom")
    leg = parse_row(_fields(line), LOCAL)
    assert (leg.src, leg.dst, leg.uniqueid, leg.sequence) == (
        "84991111111",
        "100",
        "1795696949.1",
        1,
    )
    assert leg.start == datetime(2026, 11, 26, 12, 42, 29)


def _fields(line: str) -> list[str]:
    import csv
    import io

    return next(csv.reader(io.StringIO(line)))


BASE = ('"","84991111111","104","from-trunk","""Oleg Ivanov"" <84991111111>","SIP/t-1","SIP/104-2",'
        '"Dial","SIP/104,30,tT","2016-03-18 09:01:33",,"2016-03-18 09:01:50",17,0,"NO ANSWER",'
        '"DOCUMENTATION"')  # fmt: skip


@pytest.mark.parametrize(
    ("tail", "expect"),
    [
        ("", {}),
        (',"1458291693.157169"', {"uniqueid": "1458291693.157169"}),
        (',"vip"', {"userfield": "vip"}),
        (',"pbx1-1458291693.157169"', {"uniqueid": "pbx1-1458291693.157169"}),
        (',"1458291693.157169","vip"', {"uniqueid": "1458291693.157169", "userfield": "vip"}),
        (',"","1458291693.157169",3', {"linkedid": "1458291693.157169", "sequence": 3}),
        (',"1458291693.1","vip","acct","1458291693.0",7',
         {"uniqueid": "1458291693.1", "userfield": "vip", "linkedid": "1458291693.0",
          "sequence": 7}),
    ],
    ids=["16-plain", "17-uniqueid", "17-userfield", "17-systemname", "18-sample-conf",
         "19-newcdrcolumns", "21-all"],
)  # fmt: skip
def test_every_column_variant(tail: str, expect: dict[str, object]) -> None:
    leg = parse_row(_fields(BASE + tail), LOCAL)
    assert leg.answer is None and leg.duration == 17
    for key, value in expect.items():
        assert getattr(leg, key) == value


def test_import_is_idempotent_and_rejects_broken_rows(tmp_path: Path) -> None:
    good = [
        master_csv_line(leg)
        for leg in generate(datetime(2026, 1, 5).date(), datetime(2026, 1, 5).date(), seed=3)
    ]
    broken = [
        '"","1","2","ctx","x","c","d","Dial","","not a date",,"2016-03-18 09:01:50",17,0,'
        '"NO ANSWER","DOC"',
        BASE.replace(",17,0,", ",5,9,"),  # billsec > duration
        '"only","three","fields"',
        BASE.replace('"84991111111","104"', '"84991111111,"104"'),  # unbalanced quote
    ]
    lines = good[:10] + broken[:2] + good[10:] + broken[2:]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "Master.csv.rejects"
    target = store(tmp_path)
    first = import_csv(csv_file, target, LOCAL, reject_file=rejects)
    assert (first.inserted, first.duplicates, first.rejected) == (len(good), 0, 4)
    assert [r.line for r in first.rejects][:2] == [11, 12]
    reasons = " | ".join(r.reason for r in first.rejects)
    assert "start 'not a date' is not a date and time" in reasons
    assert "billsec 9 exceeds duration 5" in reasons
    assert "3 fields" in reasons
    assert rejects.read_text(encoding="utf-8").splitlines()[:2] == broken[:2]
    again = import_csv(csv_file, target, LOCAL)
    assert (again.inserted, again.duplicates) == (0, len(good))
    assert target.count() == len(good)


def test_cyrillic_and_invalid_utf8(tmp_path: Path) -> None:
    row = BASE.replace("Oleg Ivanov", "Олег Иванов")
    csv_file = tmp_path / "Master.csv"
    after = row.replace("104", "105")  # the next row is read as UTF-8 again
    csv_file.write_bytes(
        (row + "\n").encode() + row.encode("cp1251") + b"\n" + (after + "\n").encode()
    )
    result = import_csv(csv_file, store(tmp_path), LOCAL, reject_file=tmp_path / "r")
    assert (result.inserted, result.rejected) == (2, 1)
    assert result.rejects[0].line == 2 and "UTF-8" in result.rejects[0].reason
    assert (tmp_path / "r").read_bytes().startswith(b'"","84991111111"')


def test_gmt_timestamps_are_converted_to_pbx_time(tmp_path: Path) -> None:
    gmt = Zones(source=zone("UTC"), display=zone("Europe/Moscow"))
    leg = parse_row(_fields(BASE), gmt)
    assert leg.start == datetime(2016, 3, 18, 12, 1, 33)  # UTC+3


def test_quoted_newline_stays_one_record(tmp_path: Path) -> None:
    row = BASE.replace('"SIP/104,30,tT"', '"SIP/104,30,\nnext"') + ',"1.1"'
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(row + "\n" + BASE + ',"1.2"\n', encoding="utf-8")
    result = import_csv(csv_file, store(tmp_path), LOCAL)
    assert (result.rows, result.inserted, result.rejected) == (2, 2, 0)


def test_layout_detection_names_the_problem() -> None:
    with pytest.raises(ValueError, match="no start time"):
        layout_for(["x"] * 18)


def test_follow_picks_up_appended_rows_and_rotation(tmp_path: Path) -> None:
    day = datetime(2026, 1, 5).date()
    lines = [master_csv_line(leg) + "\n" for leg in generate(day, day, seed=5)][:30]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(lines[:10]), encoding="utf-8")
    target = store(tmp_path)
    first = import_csv(csv_file, target, LOCAL, complete_only=True)
    assert first.inserted == 10

    def append(text: str) -> None:
        with csv_file.open("a", encoding="utf-8") as fh:
            fh.write(text)

    steps = [
        lambda: append("".join(lines[10:15]) + lines[15][:40]),  # and half a row
        lambda: append(lines[15][40:]),  # Asterisk finishes the row
        lambda: csv_file.write_text("".join(lines[20:30])),  # rotated: a new, shorter file
    ]
    batches: list[int] = []

    def wait() -> bool:
        if not steps:
            return False
        steps.pop(0)()
        return True

    follow_csv(csv_file, target, LOCAL, offset=first.bytes_read, wait=wait,
               on_batch=lambda r: batches.append(r.inserted))  # fmt: skip
    assert batches == [5, 1, 10]
    assert target.count() == 26


def test_bulk_import_rebuilds_indexes_and_still_dedupes(tmp_path: Path) -> None:
    day = datetime(2026, 1, 5).date()
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in generate(day, day)))
    target = store(tmp_path)
    first = import_csv(csv_file, target, LOCAL, bulk=True, batch=100)
    again = import_csv(csv_file, target, LOCAL, bulk=True, batch=100)
    assert first.inserted > 100 and (again.inserted, again.duplicates) == (0, first.inserted)
    with target.engine.connect() as conn:
        names = {
            row[0]
            for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        }
    assert {"ix_cdr_calldate", "ix_cdr_linkedid", "ix_cdr_src_calldate"} <= names


@pytest.mark.parametrize("bulk", [False, True])
def test_a_failing_write_stops_the_import_without_hanging(tmp_path: Path, bulk: bool) -> None:
    day = datetime(2026, 1, 5).date()
    legs = list(generate(day, day))
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in legs[:100]))
    target = store(tmp_path)
    assert import_csv(csv_file, target, LOCAL).inserted == 100
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in legs[100:]))
    with target.engine.begin() as conn:  # the disk fills up after a few more rows
        conn.exec_driver_sql(
            "CREATE TRIGGER full BEFORE INSERT ON cdr WHEN (SELECT COUNT(*) FROM cdr) >= 120"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
        )
    with pytest.raises(SourceError, match="cannot write CDR rows: database or disk is full"):
        import_csv(csv_file, target, LOCAL, batch=10, bulk=bulk)
    # Row by row, the batches before the failure stay; a bulk load lands whole or not at all.
    assert target.count() == (100 if bulk else 120)
    assert _indexes(target) >= {"ux_cdr_rowkey", "ix_cdr_calldate", "ix_cdr_src_calldate"}


def test_bulk_load_into_an_empty_store_drops_a_row_the_file_holds_twice(tmp_path: Path) -> None:
    day = datetime(2026, 1, 5).date()
    lines = [master_csv_line(leg) + "\n" for leg in generate(day, day)]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(lines + lines[5:7]))
    target = store(tmp_path)
    result = import_csv(csv_file, target, LOCAL, bulk=True, batch=50)
    assert (result.rows, result.inserted, result.duplicates) == (len(lines) + 2, len(lines), 2)
    assert target.count() == len(lines)
    assert "ux_cdr_rowkey" in _indexes(target)


@pytest.mark.parametrize("bulk", [False, True])
def test_imported_rows_equal_the_rows_of_the_parsed_legs(tmp_path: Path, bulk: bool) -> None:
    """The import's fast path (fields straight into SQLite, through a second process for a
    bulk load) stores what the leg path stores, with the same row keys, so the two can never
    hold one CDR twice."""
    day = datetime(2026, 1, 5).date()
    legs = list(generate(day, day, seed=11))[:400]
    legs[100].userfield = "between\x1fthe\x1eprocesses"  # how batches travel between them
    lines = [master_csv_line(leg) for leg in legs]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    fast, slow = store(tmp_path), Store.open_sqlite(tmp_path / "legs.sqlite3")
    assert import_csv(csv_file, fast, LOCAL, bulk=bulk, batch=150).inserted == len(lines)
    slow.insert(parse_row(_fields(line), LOCAL) for line in lines)

    def rows(target: Store) -> list[tuple[object, ...]]:
        cols = ", ".join(f'"{c}", typeof("{c}")' for c in STORE_COLUMNS)
        with target.engine.connect() as conn:
            return sorted(conn.exec_driver_sql(f"SELECT {cols} FROM cdr").all())

    assert rows(fast) == rows(slow)
    cnam, userfield = (2 * STORE_COLUMNS.index(c) for c in ("cnam", "userfield"))
    assert any(row[cnam] for row in rows(fast))  # rows with a caller name are among them
    assert sum("\x1e" in row[userfield] for row in rows(fast)) == 1


def _indexes(target: Store) -> set[str]:
    with target.engine.connect() as conn:
        found = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
        return {row[0] for row in found}


def test_without_uniqueid_the_legs_of_a_call_share_start_and_channel(tmp_path: Path) -> None:
    """cdr.conf's code defaults write 16 columns: no uniqueid, no linkedid. A ring group's two
    legs still share their start and the caller's channel, and stay one call on both paths."""
    from pbxgate.cdr import api
    from pbxgate.cdr.query import Filters
    from pbxgate.cdr.settings import CdrSettings, SourceSettings
    from pbxgate.cdr.source import open_source
    from pbxgate.cdr.window import Window

    answered = BASE.replace(",17,0,", ",17,9,").replace('"NO ANSWER"', '"ANSWERED"')
    answered = answered.replace(
        ',,"2016-03-18 09:01:50"', ',"2016-03-18 09:01:41","2016-03-18 09:01:50"'
    )
    other = BASE.replace('"SIP/104-2"', '"SIP/105-3"').replace('"104"', '"105"')
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(answered + "\n" + other + "\n", encoding="utf-8")
    target = store(tmp_path)
    assert import_csv(csv_file, target, LOCAL).inserted == 2
    settings = CdrSettings(
        sources={"s": SourceSettings(url=f"sqlite:///{tmp_path / 'store.sqlite3'}")}
    )
    src = open_source(settings, "s")
    day = Window(datetime(2016, 3, 18), datetime(2016, 3, 19))
    for filters in (Filters(), Filters(numbers=(NumberFilter("src", "8499*"),))):
        kpis = api.stats(src, day, filters).kpis
        assert (kpis.calls, kpis.answered, kpis.missed) == (1, 1, 0)
    (call,) = api.list_calls(src, day, Filters())
    assert (len(call.legs), call.answered_by) == (2, "104")
    src.close()


@pytest.mark.parametrize("bulk", [False, True])
def test_records_across_read_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    """The file is read a block at a time; a record, a quoted newline, a broken record or a
    line that is not UTF-8 may sit across two blocks and must come out the same."""
    from pbxgate.cdr import csvimport

    monkeypatch.setattr(csvimport, "BLOCK", 100)  # a record is about 230 bytes
    rows = [BASE + f',"1.{n}"' for n in range(12)]
    rows[3] = rows[3].replace('"SIP/104,30,tT"', '"SIP/104,\n30,\ntT"')  # three lines
    rows[6] = rows[6].replace('"84991111111","104"', '"84991111111,"104"')  # unbalanced quote
    rows[9] = rows[9].replace("Oleg Ivanov", "Олег Иванов")
    data = "\n".join(rows).encode() + b"\n"
    bad = rows[10].replace("Oleg Ivanov", "Олег Иванов")
    data = data.replace(rows[10].encode(), bad.encode("cp1251"))
    csv_file = tmp_path / "Master.csv"
    csv_file.write_bytes(data)
    rejects = tmp_path / "rejects"
    result = import_csv(csv_file, store(tmp_path), LOCAL, reject_file=rejects, bulk=bulk)
    assert (result.rows, result.inserted, result.rejected) == (12, 10, 2)
    assert result.bytes_read == len(data)
    # rows 0-2 are lines 1-3, row 3 lines 4-6, so row 6 is line 9 and row 10 line 13
    assert [(r.line, r.reason.split(":")[0]) for r in result.rejects] == [
        (9, "malformed CSV"),
        (13, "not valid UTF-8 (convert the file with iconv -f cp1251)"),
    ]
    assert rejects.read_bytes() == rows[6].encode() + b"\n" + bad.encode("cp1251") + b"\n"


@pytest.mark.parametrize("bulk", [False, True])
def test_a_line_cut_short_in_a_quoted_field_takes_no_good_record_with_it(
    tmp_path: Path, bulk: bool
) -> None:
    """A crash or a full disk cuts a line inside a quoted field: the csv reader reads on into
    the next line, and rejected both as one record. The cut line is the reject; the next is
    read again on its own and imported."""
    rows = [BASE + f',"2.{n}"' for n in range(5)]
    rows[1] = rows[1][:60]  # inside the caller ID's quotes
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects"
    result = import_csv(csv_file, store(tmp_path), LOCAL, reject_file=rejects, bulk=bulk)
    assert (result.rows, result.inserted, result.rejected) == (5, 4, 1)
    assert [(r.line, r.reason.split(":")[0]) for r in result.rejects] == [(2, "malformed CSV")]
    assert rejects.read_text(encoding="utf-8") == rows[1] + "\n"


def test_bulk_load_rebuilds_indexes_only_when_that_is_cheaper(tmp_path: Path) -> None:
    first, second = datetime(2026, 1, 5).date(), datetime(2026, 1, 6).date()
    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    big.write_text("".join(master_csv_line(leg) + "\n" for leg in generate(first, first)))
    lines = [master_csv_line(leg) + "\n" for leg in generate(second, second)]
    small.write_text("".join(lines[:16]))
    target = store(tmp_path)
    built: list[str] = []
    assert import_csv(big, target, LOCAL, bulk=True, note=built.append).inserted > 100
    assert "indexing rowkey" in built and "indexing calldate" in built  # an empty store
    built.clear()
    added = import_csv(small, target, LOCAL, bulk=True, note=built.append).inserted
    assert added == 16 and built == []  # a few rows into a larger store: indexes kept
    # Many rows, none of them new: the indexes were dropped for the load, which added nothing
    # and was rolled back, bringing them back without building them again.
    repeated = tmp_path / "repeated.csv"
    repeated.write_text(small.read_text() * 40)
    again = import_csv(repeated, target, LOCAL, bulk=True, note=built.append)
    assert (again.inserted, again.duplicates) == (0, 40 * 16) and built == []
    assert _indexes(target) >= {"ux_cdr_rowkey", "ix_cdr_calldate", "ix_cdr_src_calldate"}


@pytest.mark.parametrize("bulk", [False, True])
def test_a_full_disk_is_reported_as_such(tmp_path: Path, bulk: bool) -> None:
    """SQLite rolls a transaction back by itself when the disk is full: the import says so,
    and the store keeps what it had."""
    from sqlalchemy import event

    day = datetime(2026, 1, 5).date()
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in generate(day, day)))
    target = store(tmp_path)
    with target.engine.connect() as conn:  # the schema's pages, and room for a few more
        room = conn.exec_driver_sql("PRAGMA page_count").scalar_one() + 2
    event.listen(
        target.engine, "connect", lambda con, _rec: con.execute(f"PRAGMA max_page_count = {room}")
    )
    target.engine.dispose()
    with pytest.raises(SourceError, match=r"^cannot write CDR rows: database or disk is full"):
        import_csv(csv_file, target, LOCAL, bulk=bulk, batch=50)
    kept = target.count()  # batch by batch, whole batches stay; a bulk load is all or nothing
    assert kept == 0 if bulk else (kept % 50 == 0 and kept < 200)
    assert "ux_cdr_rowkey" in _indexes(target)


def test_numbers_other_than_ascii_digits(tmp_path: Path) -> None:
    arabic = BASE.replace(",17,0,", ",١٧,0,")  # Arabic-Indic 17: a number, stored as 17
    superscript = BASE.replace(",17,0,", ",²,0,").replace("SIP/t-1", "SIP/t-2")
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(arabic + "\n" + superscript + "\n", encoding="utf-8")
    target = store(tmp_path)
    result = import_csv(csv_file, target, LOCAL)
    assert (result.inserted, [r.reason for r in result.rejects]) == (
        1,
        ["duration '²' is not a whole number"],
    )
    with target.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT duration, typeof(duration) FROM cdr").one()
    assert tuple(stored) == (17, "integer")


@pytest.mark.parametrize("bulk", [False, True])
def test_a_compressed_file_imports_as_the_plain_one(tmp_path: Path, bulk: bool) -> None:
    import gzip

    from pbxgate.cdr.csvimport import data_size

    day = datetime(2026, 1, 5).date()
    text = "".join(master_csv_line(leg) + "\n" for leg in generate(day, day))
    plain, packed = tmp_path / "Master.csv", tmp_path / "Master.csv.1.gz"
    plain.write_text(text, encoding="utf-8")
    packed.write_bytes(gzip.compress(text.encode()))
    assert data_size(packed) == data_size(plain) == len(text.encode())
    one = import_csv(packed, store(tmp_path), LOCAL, bulk=bulk, batch=40)
    other = import_csv(plain, Store.open_sqlite(tmp_path / "plain.sqlite3"), LOCAL, bulk=bulk)
    size = len(text.encode())
    assert (one.rows, one.inserted, one.bytes_read) == (other.rows, other.inserted, size)


def test_without_a_second_process_a_bulk_load_reads_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import multiprocessing

    def no_fork(self: object) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", no_fork)
    day = datetime(2026, 1, 5).date()
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in generate(day, day)))
    target = store(tmp_path)
    built: list[str] = []
    result = import_csv(csv_file, target, LOCAL, bulk=True, note=built.append)
    assert result.inserted == target.count() > 100 and "indexing rowkey" in built


@pytest.mark.parametrize("bulk", [False, True])
def test_numbers_out_of_range_are_rejected_with_their_line(tmp_path: Path, bulk: bool) -> None:
    """A 400-digit duration used to import as REAL inf and break every later query."""
    lines = [
        BASE.replace(",17,0,", f",{'9' * 400},0,"),
        BASE.replace(",17,0,", ",99999999999999999999,0,").replace("SIP/t-1", "SIP/t-2"),
        BASE.replace(",17,0,", ",-5,0,").replace("SIP/t-1", "SIP/t-3"),
        BASE.replace(",17,0,", ",2147483647,3,").replace("SIP/t-1", "SIP/t-4"),  # the largest
    ]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = store(tmp_path)
    result = import_csv(csv_file, target, LOCAL, bulk=bulk)
    assert result.inserted == 1
    assert [r.line for r in result.rejects] == [1, 2, 3]
    reasons = [r.reason for r in result.rejects]
    assert (
        reasons[0]
        == "duration 99999999999999999999... (400 characters) is out of range (0 to 2147483647)"
    )
    assert reasons[1] == "duration 99999999999999999999 is out of range (0 to 2147483647)"
    assert reasons[2] == "duration -5 is out of range (0 to 2147483647)"


def test_a_stored_impossible_number_never_stops_a_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Rows an older import stored (REAL inf, a huge integer) read as 0 seconds."""
    from pbxgate.cli.main import main

    target = store(tmp_path)
    legs = [parse_row(_fields(BASE), LOCAL)]
    target.insert(legs)
    with target.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE cdr SET duration = 9e999, billsec = 99999999999999999999")
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path / "store.sqlite3"}"\n', encoding="utf-8")
    day = ["--from", "2016-03-18", "--to", "2016-03-18"]
    for command in (["calls"], ["missed"], ["stats"], ["report", "--format", "json"]):
        assert main(["--config", str(cfg), "cdr", *command, *day]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("bulk", [False, True])
def test_an_overlong_record_is_rejected_and_the_next_line_imported(
    tmp_path: Path, bulk: bool
) -> None:
    good = BASE.replace("SIP/t-1", "SIP/t-9")
    long_line = '"x' + "y" * 3_000_000 + '"'  # 3 MB, no newline for three read blocks
    short_long = "z" * 100_000  # over the cap within one block
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join([BASE, long_line, short_long, good]) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects"
    result = import_csv(csv_file, store(tmp_path), LOCAL, reject_file=rejects, bulk=bulk)
    assert (result.inserted, result.rejected) == (2, 2)
    assert [r.line for r in result.rejects] == [2, 3]
    assert result.rejects[0].reason.startswith("a record of 3000003 bytes, over 65536")
    written = rejects.read_text(encoding="utf-8").splitlines()
    assert written[0].startswith('"xyyy') and len(written[0]) == 4096  # its head


def test_a_file_without_line_breaks_stops_with_one_line(tmp_path: Path) -> None:
    """A symlink to /dev/zero: endless, no newline. The import stops, memory bounded."""
    link = tmp_path / "Master.csv"
    link.symlink_to("/dev/zero")
    with pytest.raises(InputError, match=r"without a line break: is this a Master\.csv\?"):
        import_csv(link, store(tmp_path), LOCAL)


def test_a_long_run_of_rejects_stops_the_import(tmp_path: Path) -> None:
    lines = [BASE] + [f'"not","a","cdr","{n}"' for n in range(50)] + [BASE.replace("t-1", "t-2")]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects"
    with pytest.raises(InputError, match="20 records in a row rejected, up to line 21"):
        import_csv(csv_file, store(tmp_path), LOCAL, reject_file=rejects,
                   max_consecutive_rejects=20)  # fmt: skip
    assert len(rejects.read_text().splitlines()) == 20
    again = import_csv(csv_file, store(tmp_path), LOCAL, max_consecutive_rejects=0)
    assert (again.rejected, len(again.rejects)) == (50, 50)


def test_memory_stays_bounded_for_megabytes_of_random_bytes(tmp_path: Path) -> None:
    """30 MB of random bytes: every rejected record used to stay in memory to the end. The
    import runs in a child process whose peak RSS is measured."""
    import os
    import subprocess
    import sys

    junk = tmp_path / "Master.csv"
    with junk.open("wb") as fh:
        for _ in range(30):
            fh.write(os.urandom(1 << 20))
    code = (
        "from pathlib import Path\n"
        "from pbxgate.cdr.csvimport import import_csv\n"
        "from pbxgate.cdr.store import Store\n"
        "from pbxgate.cdr.window import Zones\n"
        f"r = import_csv(Path({str(junk)!r}), Store.open_sqlite(Path({str(tmp_path / 's.db')!r})),"
        " Zones(None, None), reject_file=Path(" + repr(str(tmp_path / "rej")) + "),"
        " max_consecutive_rejects=0, bulk=False)\n"
        # VmHWM: this process's own peak. ru_maxrss would also count the parent's resident
        # size at the fork (Linux carries it across exec), i.e. the whole test session's.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(r.rejected, len(r.rejects), hwm)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rejected, kept, rss_kib = map(int, done.stdout.split())
    assert rejected > 1000 and kept == 100
    assert rss_kib < 200 * 1024, f"peak RSS {rss_kib // 1024} MiB"


def test_a_grown_file_is_read_from_where_its_last_import_ended(tmp_path: Path) -> None:
    rows = [BASE.replace("SIP/t-1", f"SIP/t-{n}") for n in range(10)]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(rows[:6]) + "\n", encoding="utf-8")
    target = store(tmp_path)
    first = import_csv(csv_file, target, LOCAL, resume=True)
    assert (first.rows, first.inserted, first.resumed_after) == (6, 6, 0)
    again = import_csv(csv_file, target, LOCAL, resume=True)  # nothing new: nothing read
    assert (again.rows, again.resumed_after) == (0, 6)
    with csv_file.open("a", encoding="utf-8") as fh:
        fh.write("\n".join([*rows[6:], '"broken","row"']) + "\n")
    grown = import_csv(csv_file, target, LOCAL, resume=True)
    assert (grown.rows, grown.inserted, grown.resumed_after) == (5, 4, 6)
    assert [r.line for r in grown.rejects] == [11]  # numbered in the whole file
    assert target.count() == 10


@pytest.mark.parametrize("bulk", [False, True])
def test_a_grown_file_whose_new_rows_are_all_broken_is_still_a_master_csv(
    tmp_path: Path, bulk: bool
) -> None:
    """Found by trying the docs: one torn row appended to an imported file was read alone and
    the file taken for something else (``refused``). Judged whole, it is a reject; the import
    is remembered past it, as past a rejected row between good ones."""
    rows = [BASE.replace("SIP/t-1", f"SIP/t-{n}") for n in range(6)]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    target = store(tmp_path)
    assert not import_csv(csv_file, target, LOCAL, resume=True, bulk=bulk).refused
    with csv_file.open("a", encoding="utf-8") as fh:
        fh.write('"","101","102","from-internal"\n')
    reject_file = tmp_path / "rejects"
    torn = import_csv(csv_file, target, LOCAL, resume=True, bulk=bulk, reject_file=reject_file)
    assert (torn.rows, torn.rejected, torn.resumed_after, torn.refused) == (1, 1, 6, False)
    assert [r.line for r in torn.rejects] == [7]  # numbered in the whole file
    assert reject_file.read_text(encoding="utf-8") == '"","101","102","from-internal"\n'
    assert target.count() == 6
    again = import_csv(csv_file, target, LOCAL, resume=True, bulk=bulk)
    assert (again.rows, again.resumed_after) == (0, 7)
    # a file that starts with no CDR is refused, whether its start was read before or not
    junk = tmp_path / "junk.csv"
    junk.write_text('"a","b"\n', encoding="utf-8")
    assert import_csv(junk, target, LOCAL, resume=True, bulk=bulk).refused
    with junk.open("a", encoding="utf-8") as fh:
        fh.write('"c","d"\n')
    assert import_csv(junk, target, LOCAL, resume=True, bulk=bulk).refused


def test_a_copy_or_a_rotated_file_is_read_from_where_the_imported_one_ended(
    tmp_path: Path,
) -> None:
    rows = [BASE.replace("SIP/t-1", f"SIP/t-{n}") for n in range(12)]
    master = tmp_path / "Master.csv"
    master.write_text("\n".join(rows[:6]) + "\n", encoding="utf-8")
    target = store(tmp_path)
    assert import_csv(master, target, LOCAL, resume=True).inserted == 6
    copy = tmp_path / "elsewhere" / "Master-copy.csv"
    copy.parent.mkdir()
    copy.write_bytes(master.read_bytes())
    same = import_csv(copy, target, LOCAL, resume=True)
    assert (same.rows, same.resumed_after, same.resumed_from) == (0, 6, str(master.resolve()))
    # Asterisk appends two rows, then logrotate renames the file and Asterisk starts a new one
    with master.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(rows[6:8]) + "\n")
    rotated = tmp_path / "Master.csv.1"
    master.rename(rotated)
    master.write_text(rows[8] + "\n", encoding="utf-8")
    old = import_csv(rotated, target, LOCAL, resume=True)
    assert (old.rows, old.inserted, old.resumed_after) == (2, 2, 6)
    new = import_csv(master, target, LOCAL, resume=True)  # not the start of anything: whole
    assert (new.rows, new.inserted, new.resumed_after) == (1, 1, 0)
    # of two imported files that a third starts with, the longer one counts
    longer = tmp_path / "longer.csv"
    longer.write_text("\n".join([*rows[:8], *rows[9:]]) + "\n", encoding="utf-8")
    grown = import_csv(longer, target, LOCAL, resume=True)
    assert (grown.rows, grown.inserted, grown.resumed_after) == (3, 3, 8)
    assert grown.resumed_from == str(rotated.resolve())
    again = import_csv(copy, target, LOCAL)  # without resume (--full): read whole
    assert (again.rows, again.inserted, again.resumed_after) == (6, 0, 0)
    assert target.count() == 12


@pytest.mark.parametrize("change", ["rewritten head", "rotated (shorter)", "without resume"])
def test_anything_but_a_grown_file_is_read_whole(tmp_path: Path, change: str) -> None:
    rows = [BASE.replace("SIP/t-1", f"SIP/t-{n}") for n in range(8)]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(rows) + "\n", encoding="utf-8")
    target = store(tmp_path)
    import_csv(csv_file, target, LOCAL, resume=True)
    if change == "rewritten head":
        csv_file.write_text("\n".join([rows[1], rows[0], *rows[2:]]) + "\n", encoding="utf-8")
    elif change == "rotated (shorter)":
        csv_file.write_text(rows[7] + "\n", encoding="utf-8")
    result = import_csv(csv_file, target, LOCAL, resume=change != "without resume")
    assert result.resumed_after == 0
    assert result.rows == (1 if change == "rotated (shorter)" else 8)


def test_an_overlong_last_line_without_a_newline_is_rejected_not_lost(tmp_path: Path) -> None:
    """Found in review: it was dropped, neither imported nor rejected."""
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(BASE + "\n" + "z" * 100_000, encoding="utf-8")
    result = import_csv(csv_file, store(tmp_path), LOCAL)
    assert (result.inserted, result.rejected, [r.line for r in result.rejects]) == (1, 1, [2])


def test_an_overlong_line_inside_a_quoted_record_rejects_the_record(tmp_path: Path) -> None:
    # lastdata spans three lines, the middle one over the cap (it used to be dropped silently
    # and the record imported without it)
    line = BASE.replace('"SIP/104,30,tT"', '"SIP/104,30,tT\n' + "b" * 100_000 + '\nend"')
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(line + "\n" + BASE.replace("SIP/t-1", "SIP/t-2") + "\n", encoding="utf-8")
    result = import_csv(csv_file, store(tmp_path), LOCAL)
    assert result.inserted == 1 and result.rejected == 1
    assert "over 65536" in result.rejects[0].reason


def test_a_file_with_no_cdr_in_it_leaves_no_resume_mark(tmp_path: Path) -> None:
    """Found in review: the mark was kept, so a second import read nothing and said nothing."""
    junk = tmp_path / "notes.csv"
    junk.write_text('"a","b"\n"c","d"\n', encoding="utf-8")
    target = store(tmp_path)
    first = import_csv(junk, target, LOCAL, resume=True)
    assert first.rows == first.rejected == 2
    assert target.import_mark(junk) is None
    assert import_csv(junk, target, LOCAL, resume=True).rows == 2


def _stored(target: Store) -> list[tuple[object, ...]]:
    cols = ", ".join(c if c != "end" else '"end"' for c in STORE_COLUMNS)
    with target.engine.connect() as conn:
        return sorted(conn.exec_driver_sql(f"SELECT {cols} FROM cdr").all())


@pytest.mark.parametrize("bulk", [False, True])
def test_broken_records_anywhere_in_a_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    """Records are read and completed a chunk at a time: a broken record first, last or in the
    middle of a chunk, at a block's edge, beside blank lines, a quoted newline or another
    column layout, is rejected with its own line and text, and every other row lands exactly
    as when each record is its own chunk."""
    from copy import copy

    from pbxgate.cdr import csvimport

    days = datetime(2026, 1, 5).date(), datetime(2026, 1, 12).date()
    legs = list(generate(*days, seed=5))[:1300]
    assert len(legs) == 1300
    lines = [master_csv_line(leg) for leg in legs]

    def numbers(i: int, duration: str, billsec: str) -> str:
        leg = legs[i]
        return lines[i].replace(f",{leg.duration},{leg.billsec},", f",{duration},{billsec},", 1)

    def over(i: int) -> str:
        leg = copy(legs[i])
        leg.billsec = leg.duration + 5
        return master_csv_line(leg)

    start = legs[511].start.strftime("%Y-%m-%d %H:%M:%S")
    lines[0] = over(0)  # billsec over duration: the very first record, and amid a chunk
    lines[300] = over(300)
    lines[3] = lines[4] = ""  # blank lines
    lines[511] = lines[511].replace(start, start.replace("0", "O", 1), 1)
    lines[512] = '"only","three","fields"'
    lines[513] = lines[513].replace(',"DOCUMENTATION",', ',"DOCUMENTATION,', 1)  # a stray quote
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(next(csv.reader([lines[700]]))[:16])
    lines[700] = out.getvalue()  # 16 fields amid 18: another layout, and it lands
    context = f',"{legs[701].dcontext}",'
    lines[701] = lines[701].replace(context, context[:-2] + '\nmore\nlines",', 1)  # 3 lines
    lines[900] = "x" * (csvimport.MAX_RECORD + 10)
    lines[1023] = numbers(1023, f"+{legs[1023].duration}", str(legs[1023].billsec))  # lands
    lines[1024] = "\N{CYRILLIC CAPITAL LETTER ZHE}" * 10
    lines[1299] = numbers(1299, f"00{legs[1299].duration}", str(legs[1299].billsec))  # lands
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setattr(csvimport, "BLOCK", 8192)  # many block edges, inside chunks too
    stored = []
    for chunk in (csvimport.CHUNK, 1):
        monkeypatch.setattr(csvimport, "CHUNK", chunk)
        target = Store.open_sqlite(tmp_path / f"store{chunk}.sqlite3")
        rejects = tmp_path / f"rejects{chunk}"
        result = import_csv(csv_file, target, LOCAL, reject_file=rejects, bulk=bulk)
        # line numbers: the record at 701 takes three lines
        assert [(r.line, r.reason.split(" ")[0]) for r in result.rejects] == [
            (1, "billsec"),
            (301, "billsec"),
            (512, "start"),
            (513, "3"),
            (514, "malformed"),
            (903, "a"),
            (1027, "1"),
        ]
        kept = [lines[i] for i in (0, 300, 511, 512, 513)] + [lines[900][: csvimport.KEEP_RAW]]
        assert rejects.read_text(encoding="utf-8").splitlines() == [*kept, lines[1024]]
        assert (result.rows, result.inserted, result.rejected) == (1298, 1291, 7)
        stored.append(_stored(target))
        target.engine.dispose()
    assert stored[0] == stored[1]
    assert len(stored[0]) == 1291
    durations = {row[STORE_COLUMNS.index("duration")] for row in stored[0]}
    assert {legs[1023].duration, legs[1299].duration} <= durations


def test_a_new_store_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    from pbxgate.cdr.store import STORE_PAGE_SIZE

    day = datetime(2026, 1, 5).date()
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(master_csv_line(leg) + "\n" for leg in generate(day, day)))
    old = tmp_path / "old.sqlite3"
    con = sqlite3.connect(old)  # a store as pbxgate made them before: SQLite's 4 KiB pages
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("CREATE TABLE before (x)")
    con.close()
    sizes = []
    for path in (tmp_path / "new.sqlite3", old):
        target = Store.open_sqlite(path)
        result = import_csv(csv_file, target, LOCAL, bulk=True)
        assert result.inserted == target.count() > 200
        target.engine.dispose()
        con = sqlite3.connect(path)
        sizes.append(con.execute("PRAGMA page_size").fetchone()[0])
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
    assert sizes == [STORE_PAGE_SIZE, 4096]
