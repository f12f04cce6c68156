"""`pbxgate cdr ...` end to end: golden outputs, one-line errors, exit codes, no leaked secrets."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from pbxgate.cdr.store import Store
from pbxgate.cli.main import main
from tests.cdr.fixture_calls import LEGS
from tests.conftest import free_port, require_dsn

GOLDENS = Path(__file__).parent / "goldens"
DAY = ["--from", "2016-03-18", "--to", "2016-03-18"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    db = tmp_path / "fixture.sqlite3"
    Store.open_sqlite(db).insert(LEGS)
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f'[cdr]\ntimezone = "Europe/Moscow"\ndefault_source = "fx"\n'
        f'monitor_dir = "{tmp_path}/mon"\n'
        f'[cdr.sources.fx]\nurl = "sqlite:///{db}"\n',
        encoding="utf-8",
    )
    return cfg


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "ndjson"])
def test_calls_goldens(
    config: Path, fmt: str, capsys: pytest.CaptureFixture[str], golden: object
) -> None:
    code, out, err = run(config, "cdr", "calls", *DAY, "--format", fmt, capsys=capsys)
    assert (code, err) == (0, "")
    golden(GOLDENS / f"calls.{fmt}", out)  # type: ignore[operator]


def test_the_articles_query_is_one_command(
    config: Path, capsys: pytest.CaptureFixture[str], golden: object
) -> None:
    code, out, _ = run(
        config, "cdr", "calls", "--from", "2016-03-18 12:00", "--to", "2016-03-18 12:10",
        "--inbound", "--legs", "--columns", "dst,src,duration,calldate,recordingfile",
        capsys=capsys,
    )  # fmt: skip
    assert code == 0
    golden(GOLDENS / "article_query.table", out)  # type: ignore[operator]
    assert out.splitlines()[2].split()[:3] == ["113", "84991111111", "140"]


def test_stats_and_missed_goldens(
    config: Path, capsys: pytest.CaptureFixture[str], golden: object
) -> None:
    code, stats_out, _ = run(config, "cdr", "stats", *DAY, capsys=capsys)
    assert code == 0
    golden(GOLDENS / "stats.table", stats_out)  # type: ignore[operator]
    _, by_did, _ = run(
        config, "cdr", "stats", *DAY, "--by", "did", "--format", "csv", capsys=capsys
    )
    golden(GOLDENS / "stats_by_did.csv", by_did)  # type: ignore[operator]
    code, missed_out, _ = run(config, "cdr", "missed", *DAY, capsys=capsys)
    assert code == 0
    golden(GOLDENS / "missed.table", missed_out)  # type: ignore[operator]


def test_stats_json_totals(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(config, "cdr", "stats", *DAY, "--format", "json", capsys=capsys)
    data = json.loads(out)
    assert data["totals"]["calls"] == 10 and data["totals"]["asr"] == 60.0


def test_recording_resolved_under_monitor_dir(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mon" / "2016" / "03" / "18"
    folder.mkdir(parents=True)
    (folder / LEGS[0].recordingfile).write_bytes(b"RIFF" + b"\0" * 100)
    _, out, _ = run(config, "cdr", "calls", *DAY, "--recordings", "--format", "json",
                       capsys=capsys)  # fmt: skip
    rows = json.loads(out)
    assert rows[0]["recording_exists"] == "yes"
    assert rows[0]["recording_path"] == str(folder / LEGS[0].recordingfile)
    assert rows[1]["recording_path"] is None  # B was not recorded


def test_bad_input_is_one_line(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(config, "cdr", "calls", "--from", "18.13.2016", capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "cannot read '18.13.2016'" in err
    # as Russian admins write a day: read (it used to be refused)
    code, out, _ = run(config, "cdr", "calls", "--from", "18.03.2016", "--to", "18.03.2016",
                       "--format", "json", capsys=capsys)  # fmt: skip
    assert code == 0 and len(json.loads(out)) == 10
    code, _, err = run(config, "cdr", "calls", "--source", "nope", capsys=capsys)
    assert code == 2 and "unknown CDR source 'nope'" in err and err.count("\n") == 1
    assert "define [cdr.sources.nope]" in err
    # a path that is not there is said to be one (it was "define [cdr.sources./var/...]")
    missing = str(config.parent / "master.db")
    code, _, err = run(config, "cdr", "calls", "--source", missing, capsys=capsys)
    assert (
        code == 3
        and err
        == f"error: the SQLite file {missing} does not exist (--source "
        "takes a [cdr.sources] name, a URL or the path of an SQLite file)\n"
    )
    code, _, err = run(config, "cdr", "calls", "--source", str(config.parent), capsys=capsys)
    assert code == 3 and err.startswith(f"error: {config.parent} is not a file (--source")
    code, _, err = run(config, "cdr", "calls", "--today", "--from", "2016-01-01", capsys=capsys)
    assert code == 2 and "cannot be combined" in err


def test_unreachable_server_names_host_port_user_not_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[cdr.sources.pbx]\nurl = "mysql+pymysql://cdr_ro@127.0.0.1:{port}/asteriskcdrdb"\n'
        'password_env = "CDR_PASS"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CDR_PASS", "Sup3r-Secret")
    code, out, err = run(cfg, "cdr", "calls", "--source", "pbx", capsys=capsys)
    assert code == 3 and err.count("\n") == 1
    assert f"MySQL/MariaDB at 127.0.0.1:{port} as cdr_ro" in err
    assert "Can't connect" in err or "Connection refused" in err
    assert "Sup3r-Secret" not in out + err


def test_wrong_password_on_mariadb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dsn = require_dsn("PBXGATE_TEST_MARIADB_DSN")
    host = dsn.split("@", 1)[1].split("/", 1)[0]
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[cdr.sources.pbx]\nurl = "mysql+pymysql://nosuchuser@{host}/test"\n'
        'password = "Wr0ng-Pa55"\n',
        encoding="utf-8",
    )
    code, out, err = run(cfg, "cdr", "stats", "--source", "pbx", capsys=capsys)
    assert code == 3 and "(1045) Access denied for user 'nosuchuser'" in err
    assert "Wr0ng-Pa55" not in out + err


def test_doctor_recommends_missing_indexes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE cdr (calldate TEXT, clid TEXT, src TEXT, dst TEXT, dcontext TEXT, "
        "duration INT, billsec INT, disposition TEXT, uniqueid TEXT)"
    )
    con.execute("CREATE INDEX calldate ON cdr (calldate)")
    con.commit()
    con.close()
    cfg = tmp_path / "c.toml"
    cfg.write_text("", encoding="utf-8")
    code, out, _ = run(cfg, "cdr", "doctor", "--source", str(db), capsys=capsys)
    assert code == 0
    assert "OK   index (calldate)" in out
    assert "add: CREATE INDEX ix_cdr_src_calldate ON cdr (src, calldate);" in out
    assert "WARN calls: no linkedid: legs are grouped by uniqueid" in out


def test_import_exit_code_says_rows_were_rejected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pbxgate.cdr.csvexport import master_csv_line

    csv_file = tmp_path / "Master.csv"
    csv_file.write_text(master_csv_line(LEGS[0]) + '\n"broken"\n', encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/data/s.sqlite3"\n', encoding="utf-8")
    rejects = tmp_path / "data" / "rejects" / "Master.csv.rejects"
    for again in ([], ["--full"]):  # a second run (reading it all again) tells about itself only
        code, out, err = run(cfg, "cdr", "import", *again, str(csv_file), capsys=capsys)
        assert code == 6
        assert "rows read: " in out and "1 rejected" in out
        assert "line 2: 1 fields and no start time" in err
        assert rejects.read_text(encoding="utf-8") == '"broken"\n'
    assert not (tmp_path / "Master.csv.rejects").exists()
    # without --full, the same file again is read from where it ended: nothing new
    code, out, err = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert (code, out) == (0, "0 rows read: 0 imported, 0 already present, 0 rejected\n")
    assert "read from line 3 on (the lines before were imported earlier;" in err
    copy = tmp_path / "Master.csv.1"  # as logrotate leaves it: the same bytes, another name
    copy.write_bytes(csv_file.read_bytes())
    code, out, err = run(cfg, "cdr", "import", str(copy), capsys=capsys)
    assert (code, out) == (0, "0 rows read: 0 imported, 0 already present, 0 rejected\n")
    assert f"imported earlier, from {csv_file.resolve()}, which they are the start of;" in err


def test_a_torn_row_appended_to_an_imported_file_is_a_reject_not_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by trying the docs: a resumed import read only the appended row, rejected it, and
    refused the file as not a Master.csv (status 2, "bad input") for one broken row. The file
    is judged whole: its start was imported, so the torn row is a reject (status 6)."""
    import sqlite3
    from contextlib import closing

    from pbxgate.cdr.csvexport import master_csv_line

    good = "".join(master_csv_line(leg) + "\n" for leg in LEGS)
    csv_file, other = tmp_path / "Master.csv", tmp_path / "other.csv"
    csv_file.write_text(good, encoding="utf-8")
    other.write_text(good, encoding="utf-8")
    cfg = tmp_path / "c.toml"
    db = tmp_path / "data" / "s.sqlite3"
    cfg.write_text(f'[cdr]\nstore = "{db}"\n', encoding="utf-8")
    rejects = tmp_path / "data" / "rejects" / "Master.csv.rejects"

    def stored() -> list[tuple[object, ...]]:
        with closing(sqlite3.connect(db)) as con:
            return sorted(con.execute("SELECT * FROM cdr").fetchall())

    assert run(cfg, "cdr", "import", str(csv_file), str(other), capsys=capsys)[0] == 0
    before = stored()
    torn = '"","101","102","from-internal"'  # a row cut short by a crash
    with csv_file.open("a", encoding="utf-8") as fh:
        fh.write(torn + "\n")
    line = len(LEGS) + 1  # its line in the file, not in what was appended
    code, out, err = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert code == 6, err
    assert out == "1 rows read: 0 imported, 0 already present, 1 rejected\n"
    assert f"read from line {line} on" in err and "does not look like" not in err
    assert f"line {line}: 4 fields and no start time" in err
    assert rejects.read_text(encoding="utf-8") == torn + "\n"
    assert stored() == before
    # read past, as a rejected row between good ones is: the next run has nothing new
    code, out, _ = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert (code, out) == (0, "0 rows read: 0 imported, 0 already present, 0 rejected\n")
    assert not rejects.exists()
    # several files at once, each judged whole: a new file with no CDR in it is still refused
    junk = tmp_path / "junk.csv"
    junk.write_text(torn + "\n", encoding="utf-8")
    with other.open("a", encoding="utf-8") as fh:
        fh.write(torn + "\n")
    code, out, err = run(cfg, "cdr", "import", str(other), str(junk), capsys=capsys)
    assert code == 2
    assert f"{other}: 1 rows read: 0 imported, 0 already present, 1 rejected" in out
    assert f"line {line}: 4 fields" in err
    assert f"error: {junk} does not look like Asterisk's Master.csv: line 1: 4 fields" in err
    # the row completed in place: the file is no longer what was imported, so it is read whole
    completed = torn + (
        ',"""Anna"" <101>","SIP/101-1","SIP/102-2","Dial","SIP/102","2016-03-18 12:30:00",'
        '"2016-03-18 12:30:02","2016-03-18 12:30:10",10,8,"ANSWERED","DOCUMENTATION",'
        '"1458293400.99",""'
    )
    csv_file.write_text(good + completed + "\n", encoding="utf-8")
    code, out, err = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert (code, out, err) == (
        0, f"{line} rows read: 1 imported, {line - 1} already present, 0 rejected\n", ""
    )  # fmt: skip
    assert len(stored()) == len(before) + 1
    # rotated: a new file in its place, of broken rows only, is read whole and refused
    csv_file.write_text(torn + "\n", encoding="utf-8")
    code, _, err = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert "does not look like Asterisk's Master.csv: line 1" in err


def test_a_row_asterisk_is_still_writing_waits_for_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cron import that reads on from an earlier one while Asterisk writes a row: the half
    row (no newline yet) is neither a reject (status 6, a false alarm) nor a refusal; it is
    imported whole by the next run."""
    from pbxgate.cdr.csvexport import master_csv_line

    lines = [master_csv_line(leg) + "\n" for leg in LEGS]
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text("".join(lines[:-1]), encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    assert run(cfg, "cdr", "import", str(csv_file), capsys=capsys)[0] == 0
    half = len(lines[-1]) // 2
    with csv_file.open("a", encoding="utf-8") as fh:
        fh.write(lines[-1][:half])
    code, out, err = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert (code, out) == (0, "0 rows read: 0 imported, 0 already present, 0 rejected\n"), err
    with csv_file.open("a", encoding="utf-8") as fh:
        fh.write(lines[-1][half:])
    code, out, _ = run(cfg, "cdr", "import", str(csv_file), capsys=capsys)
    assert (code, out) == (0, "1 rows read: 1 imported, 0 already present, 0 rejected\n")


def test_import_takes_rotated_and_compressed_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pbxgate cdr import Master.csv*`: the current file and logrotate's compressed ones; a
    row in two of them is stored once, a damaged archive stops with one line."""
    import gzip

    from pbxgate.cdr.csvexport import master_csv_line

    lines = [master_csv_line(leg) + "\n" for leg in LEGS]
    current, rotated = tmp_path / "Master.csv", tmp_path / "Master.csv.1.gz"
    current.write_text("".join(lines[4:]), encoding="utf-8")
    rotated.write_bytes(gzip.compress("".join(lines[:5]).encode()))  # line 5 is in both
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    code, out, err = run(cfg, "cdr", "import", str(rotated), str(current), capsys=capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{rotated}: 5 rows read: 5 imported, 0 already present, 0 rejected",
        f"{current}: {len(LEGS) - 4} rows read: {len(LEGS) - 5} imported, 1 already present, "
        "0 rejected",
    ]
    assert Store.open_sqlite(tmp_path / "s.sqlite3").count() == len(LEGS)
    damaged = tmp_path / "Master.csv.2.gz"
    damaged.write_bytes(gzip.compress("".join(lines).encode())[:-30])
    code, _, err = run(cfg, "cdr", "import", str(damaged), capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"error: cannot read {damaged} after line " in err
    code, _, err = run(cfg, "cdr", "import", "--follow", str(rotated), capsys=capsys)
    assert (code, err) == (2, f"error: {rotated} is compressed: it can be imported, not followed\n")
    code, _, err = run(cfg, "cdr", "import", "--follow", str(rotated), str(current), capsys=capsys)
    assert code == 2 and "--follow follows one file" in err


def test_import_refuses_a_file_that_is_not_master_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "hostname"
    other.write_text("pbx.example.lan\n", encoding="utf-8")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    code, _, err = run(cfg, "cdr", "import", str(other), capsys=capsys)
    assert code == 2 and err.count("\n") == 1
    assert "does not look like Asterisk's Master.csv: line 1" in err


def test_dispositions_as_typed_or_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(config, "cdr", "calls", "--from", "2016-03-18", "--to", "2016-03-19",
                       "--disposition", "no_answer", "--format", "json", capsys=capsys)  # fmt: skip
    calls = json.loads(out)
    assert code == 0 and calls and {c["outcome"] for c in calls} == {"NO ANSWER"}
    code, _, err = run(config, "cdr", "calls", "--disposition", "NOANSWER", capsys=capsys)
    assert code == 2 and err == (
        "error: unknown disposition 'NOANSWER': Asterisk writes one of ANSWERED, NO ANSWER, "
        "BUSY, FAILED, CONGESTION, CANCEL\n"
    )


def test_conflicting_flags_are_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(config, "cdr", "calls", "--today", "--yesterday", capsys=capsys)
    assert (code, err) == (2, "error: --today and --yesterday cannot be combined\n")
    code, _, err = run(config, "cdr", "stats", "--inbound", "--internal", capsys=capsys)
    assert (code, err) == (2, "error: --inbound and --internal cannot be combined\n")


def test_generate_then_today(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    code, out, _ = run(cfg, "cdr", "generate", "--from", "2026-01-05", "--to", "2026-01-06",
                       capsys=capsys)  # fmt: skip
    assert code == 0 and "CDR rows written" in out
    code, out, _ = run(cfg, "cdr", "stats", "--from", "2026-01-05", "--to", "2026-01-06",
                       "--format", "json", capsys=capsys)  # fmt: skip
    totals = json.loads(out)["totals"]
    assert totals["calls"] > 200 and 0 < totals["answered"] < totals["calls"]


def test_the_last_days_of_generated_calls_and_an_empty_today(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's quick start: a week of demo calls, then `cdr stats --days 7`: calls
    whatever the hour and the day of the week (today's may be none yet: a Sunday, before
    nine), and a day without calls says so rather than only showing zeros."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    assert run(cfg, "cdr", "generate", "--days", "7", capsys=capsys)[0] == 0
    code, out, _ = run(cfg, "cdr", "stats", "--days", "7", "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)["totals"]["calls"] > 300
    days = [date.today()]
    code, out, _ = run(cfg, "cdr", "stats", "--days", "7", capsys=capsys)
    days.append(date.today())  # the same day, unless midnight came meanwhile
    first = out.splitlines()[0]
    heads = [f"Calls {d - timedelta(days=6):%Y-%m-%d} .. {d:%Y-%m-%d} "
             for d in days]  # fmt: skip
    assert any(first.startswith(head) for head in heads)
    code, out, err = run(cfg, "cdr", "stats", "--from", "2020-01-01", "--to", "2020-01-01",
                         capsys=capsys)  # fmt: skip
    assert code == 0 and "Calls                      0" in out
    assert err == "no calls in 2020-01-01 (--days 7: the last seven days)\n"
    code, out, err = run(cfg, "cdr", "stats", "--from", "2020-01-01", "--to", "2020-01-07",
                         capsys=capsys)  # fmt: skip
    assert err == "no calls in 2020-01-01 .. 2020-01-07\n"  # as --to said it
    code, _, err = run(cfg, "cdr", "stats", "--days", "7", "--today", capsys=capsys)
    assert (code, err) == (2, "error: --days cannot be combined with --today\n")
    code, _, err = run(cfg, "cdr", "calls", "--days", "2", "--from", "2026-01-01", capsys=capsys)
    assert (code, err) == (2, "error: --days cannot be combined with --from/--to\n")
    code, _, err = run(cfg, "cdr", "missed", "--days", "0", capsys=capsys)
    assert code == 2 and "--days" in err and err.count("\n") == 1


def test_generate_into_keeps_passwords_off_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("", encoding="utf-8")
    code, out, err = run(cfg, "cdr", "generate", "--into", "mysql+pymysql://u:S3cretPw@h/db",
                         capsys=capsys)  # fmt: skip
    assert code == 2 and "would show in `ps`" in err and "S3cretPw" not in out + err
    port = free_port()
    code, out, err = run(cfg, "cdr", "generate", "--days", "1", "--into",
                         f"mysql+pymysql://u@127.0.0.1:{port}/db", capsys=capsys)  # fmt: skip
    assert code == 3 and err.count("\n") == 1
    assert err.startswith(f"error: cannot reach mysql+pymysql://u@127.0.0.1:{port}/db: ")


def test_an_empty_csv_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "Master.csv"
    empty.write_bytes(b"")
    assert main(["cdr", "import", str(empty)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"error: no CDR rows in {empty}: the file is empty"
