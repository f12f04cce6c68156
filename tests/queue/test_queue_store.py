"""queue_log imported into pbxgate's store (incremental, rotation-aware, idempotent), read back
by window, and read from Asterisk's realtime queue_log table on SQLite, MariaDB and
PostgreSQL: every way in gives the numbers the file gives."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import stat
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from pbxgate.cli.main import main
from pbxgate.queue.log import QueueLogLine
from pbxgate.queue.store import QueueStore
from tests.conftest import require_dsn

GOLDEN = Path(__file__).parent / "goldens" / "asterisk22.queue_log"
LINES = GOLDEN.read_text(encoding="utf-8").splitlines()
MOSCOW = ZoneInfo("Europe/Moscow")


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "pbxgate.toml"
    path.write_text(f'[cdr]\ntimezone = "Europe/Moscow"\n{extra}', encoding="utf-8")
    return path


def _json(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _store(tmp_path: Path) -> Path:
    return tmp_path / "data" / "pbxgate" / "cdr.sqlite3"


def test_import_is_incremental_idempotent_and_follows_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "queue_log"
    log.write_text("\n".join(LINES[:5]) + "\n" + LINES[5][:12], encoding="utf-8")  # 6th: half
    assert main(["queue", "import", str(log)]) == 0
    assert "5 lines read: 5 imported" in capsys.readouterr().out
    log.write_text("\n".join(LINES[:9]) + "\n", encoding="utf-8")  # the 6th is whole now
    assert main(["queue", "import", str(log)]) == 0
    out = capsys.readouterr()
    assert "4 lines read: 4 imported, 0 already present" in out.out
    assert "read from line 6 on" in out.err
    # logrotate: queue_log -> queue_log.1, Asterisk starts a new queue_log; then one more line
    # reaches queue_log.1 before the rename is noticed (copytruncate-free rotation).
    rotated = tmp_path / "queue_log.1"
    log.rename(rotated)
    rotated.write_text("\n".join(LINES[:10]) + "\n", encoding="utf-8")
    log.write_text("\n".join(LINES[10:]) + "\n", encoding="utf-8")
    assert main(["queue", "import", str(rotated), str(log)]) == 0
    out = capsys.readouterr()
    assert "queue_log.1: 1 lines read: 1 imported" in out.out
    assert f"from {log.resolve()}, which it starts with" in out.err
    assert "queue_log: 4 lines read: 4 imported" in out.out
    # a compressed copy of everything is read whole and adds nothing
    packed = tmp_path / "queue_log.2.gz"
    packed.write_bytes(gzip.compress(GOLDEN.read_bytes()))
    assert main(["queue", "import", str(packed)]) == 0
    assert "14 lines read: 0 imported, 14 already present" in capsys.readouterr().out
    assert main(["queue", "import", "--full", str(log)]) == 0
    assert "4 lines read: 0 imported, 4 already present" in capsys.readouterr().out
    store = QueueStore(_store(tmp_path))
    try:
        assert store.count() == len(LINES)
        stored = [ln.event for ln in store.lines()]
    finally:
        store.close()
    assert stored == [line.split("|")[4] for line in LINES]
    assert stat.S_IMODE(os.stat(_store(tmp_path)).st_mode) == 0o600


def test_bad_lines_go_to_the_reject_file_and_unknown_events_are_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "queue_log"
    log.write_text(
        "\n".join([LINES[0], "garbage", LINES[1], "17964454x|1.2|700|NONE|ENTERQUEUE||8|1",
                   "1796445479|1.2|700|NONE|SOMETHINGNEW|a|b", ""]),
        encoding="utf-8",
    )  # fmt: skip
    assert main(["queue", "import", str(log)]) == 6
    out = capsys.readouterr()
    assert "5 lines read: 3 imported, 0 already present, 2 rejected" in out.out
    assert "events pbxgate does not know, kept: SOMETHINGNEW (1)" in out.out
    assert "line 2: not a queue_log line" in out.err
    assert "line 4: the time '17964454x' is not Unix seconds" in out.err
    rejects = tmp_path / "data" / "pbxgate" / "rejects" / "queue_log.rejects"
    assert rejects.read_text(encoding="utf-8").splitlines() == [
        "garbage", "17964454x|1.2|700|NONE|ENTERQUEUE||8|1"
    ]  # fmt: skip
    assert stat.S_IMODE(os.stat(rejects).st_mode) == 0o600
    other = tmp_path / "Master.csv"
    other.write_text('"","101","102","from-internal"\n' * 3, encoding="utf-8")
    assert main(["queue", "import", str(other)]) == 2
    err = capsys.readouterr().err
    assert "does not look like Asterisk's queue_log: line 1" in err and err.count("\n") == 1
    assert main(["queue", "stats", "--source", "local", "--from", "2026-12-01"]) == 0


def test_a_torn_line_appended_to_an_imported_file_is_a_reject_not_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by trying the docs: a resumed import read only the appended line, rejected it,
    and refused the file as not a queue_log (status 2) for one broken line. The file is judged
    whole: its start was imported, so the torn line is a reject (status 6)."""
    log = tmp_path / "queue_log"
    log.write_text("\n".join(LINES[:10]) + "\n", encoding="utf-8")
    assert main(["queue", "import", str(log)]) == 0
    capsys.readouterr()

    def stored() -> list[QueueLogLine]:
        store = QueueStore(_store(tmp_path))
        try:
            return list(store.lines())
        finally:
            store.close()

    before = stored()
    torn = LINES[10][:14]  # a line cut short by a crash
    with log.open("a", encoding="utf-8") as fh:
        fh.write(torn + "\n")
    assert main(["queue", "import", str(log)]) == 6
    out = capsys.readouterr()
    assert out.out == f"{log}: 1 lines read: 0 imported, 0 already present, 1 rejected\n"
    assert "read from line 11 on" in out.err and "does not look like" not in out.err
    assert "line 11: not a queue_log line" in out.err  # its line in the file, not in the tail
    rejects = tmp_path / "data" / "pbxgate" / "rejects" / "queue_log.rejects"
    assert rejects.read_text(encoding="utf-8") == torn + "\n"
    assert stored() == before
    # read past, as a rejected line between good ones is: the next run has nothing new
    assert main(["queue", "import", str(log)]) == 0
    assert "0 lines read: 0 imported" in capsys.readouterr().out
    assert not rejects.exists()
    # the line completed in place, and Asterisk wrote on: not what was imported, read whole
    log.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    assert main(["queue", "import", str(log)]) == 0
    out = capsys.readouterr()
    assert out.out == f"{log}: 14 lines read: 4 imported, 10 already present, 0 rejected\n"
    assert "read from line" not in out.err
    # rotated: a new file in its place, of broken lines only, is read whole and refused
    log.write_text(torn + "\n", encoding="utf-8")
    assert main(["queue", "import", str(log)]) == 2
    err = capsys.readouterr().err
    assert "does not look like Asterisk's queue_log: line 1" in err and err.count("\n") == 1


def test_no_store_yet_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "stats"]) == 3  # a source error
    err = capsys.readouterr().err
    assert "does not exist yet" in err and "pbxgate queue import" in err


def test_the_store_by_window_gives_the_file_s_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path))
    assert main(["--config", config, "queue", "import", str(GOLDEN)]) == 0
    capsys.readouterr()
    assert main(["--config", config, "queue", "stats", str(GOLDEN), "--json"]) == 0
    from_file = _json(capsys)
    day = ["--from", "2026-12-05", "--to", "2026-12-05"]
    assert main(["--config", config, "queue", "stats", *day, "--json"]) == 0
    assert _json(capsys) == from_file
    # the answered call entered at 07:37:58 Moscow time: a window ending a second later holds
    # it alone, with its talk, which ended after the window
    narrow = ["--from", "2026-12-05 07:37", "--to", "2026-12-05 07:37:59"]
    assert main(["--config", config, "queue", "calls", *narrow, "--json"]) == 0
    (call,) = _json(capsys)
    assert (call["outcome"], call["talk"], call["completed"]) == ("answered", 2, True)
    assert main(["--config", config, "queue", "calls", "--from", "2026-12-04", "--to", "2026-12-04",
                 "--json"]) == 0  # fmt: skip
    assert _json(capsys) == []
    # filters
    assert main(["--config", config, "queue", "calls", *day, "--caller", "*07", "--json"]) == 0
    assert [c["outcome"] for c in _json(capsys)] == ["timeout"]
    assert main(["--config", config, "queue", "calls", *day, "--queue", "701", "--json"]) == 0
    assert _json(capsys) == []
    assert main(["--config", config, "queue", "stats", *day, "--by", "agent", "--json"]) == 0
    assert {r["key"] for r in _json(capsys)} == {"Anna Smirnova", "(not answered)"}


def test_a_queue_s_own_service_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the answered call waited 2 s: inside a 2 s target, outside a 1 s one
    for target, level in ((2, 0.5), (1, 0.0)):
        config = _config(tmp_path, f"[queue]\nservice_level = 30\n[queue.service_levels]\n"
                                   f"700 = {target}\n")  # fmt: skip
        assert main(["--config", str(config), "queue", "stats", str(GOLDEN), "--json"]) == 0
        assert _json(capsys)[0]["service_level"] == level
    assert main(["--config", str(config), "queue", "stats", str(GOLDEN), "--service-level",
                 "2", "--json"]) == 0  # fmt: skip
    assert _json(capsys)[0]["service_level"] == 0.5


def test_agents_in_a_window_count_only_the_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def at(hhmm: str, day: int = 5) -> int:
        return int(datetime(2026, 11, day, *map(int, hhmm.split(":")), tzinfo=MOSCOW).timestamp())

    log = tmp_path / "queue_log"
    log.write_text("\n".join([
        f"{at('22:00', 4)}|MANAGER|sales|Vera|ADDMEMBER|",  # logged in the evening before
        f"{at('23:30', 4)}|MANAGER|sales|Vera|PAUSE|night",
        f"{at('08:00')}|MANAGER|sales|Vera|UNPAUSE|",
        f"{at('09:00')}|NONE|NONE|Vera|PAUSEALL|lunch",
        f"{at('09:30')}|NONE|NONE|Vera|UNPAUSEALL|",
        f"{at('10:00')}|MANAGER|sales|Vera|REMOVEMEMBER|",
    ]) + "\n", encoding="utf-8")  # fmt: skip
    config = str(_config(tmp_path))
    assert main(["--config", config, "queue", "import", str(log)]) == 0
    capsys.readouterr()
    assert main(["--config", config, "queue", "agents", "--from", "2026-11-05", "--to",
                 "2026-11-05", "--json"]) == 0  # fmt: skip
    (vera,) = _json(capsys)
    assert vera["logged_in"] == 10 * 3600  # 00:00 to 10:00 of the day, not from 22:00
    assert vera["paused"] == {"night": 8 * 3600, "lunch": 1800}
    assert main(["--config", config, "queue", "agents", "--from", "2026-11-05", "--to",
                 "2026-11-05", "--queue", "support", "--json"]) == 0  # fmt: skip
    assert _json(capsys) == []  # not in that queue; her PAUSEALL names none
    assert main(["--config", config, "queue", "agents", "--from", "2026-11-05", "--to",
                 "2026-11-05", "--queue", "sales", "--json"]) == 0  # fmt: skip
    assert _json(capsys)[0]["paused"] == {"night": 8 * 3600, "lunch": 1800}
    assert main(["--config", config, "queue", "agents", "--from", "2026-11-06", "--to",
                 "2026-11-06", "--json"]) == 0  # fmt: skip
    assert _json(capsys) == []


# Asterisk's realtime queue_log table, as its alembic script makes it (data1..data5), and the
# older one-column layout; times are the PBX's local time with microseconds (logger.c).
ALEMBIC = """CREATE TABLE {t} (id {serial}, time {dt}, callid VARCHAR(80),
  queuename VARCHAR(256), agent VARCHAR(80), event VARCHAR(32), data1 VARCHAR(100),
  data2 VARCHAR(100), data3 VARCHAR(100), data4 VARCHAR(100), data5 VARCHAR(100))"""
OLDER = """CREATE TABLE {t} (id {serial}, time {dt}, callid VARCHAR(80),
  queuename VARCHAR(256), agent VARCHAR(80), event VARCHAR(32), data VARCHAR(256))"""
SERIAL = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "mysql": "BIGINT PRIMARY KEY AUTO_INCREMENT",
    "mariadb": "BIGINT PRIMARY KEY AUTO_INCREMENT",
    "postgresql": "BIGSERIAL PRIMARY KEY",
}
DATETIME = {"sqlite": "TEXT", "mysql": "DATETIME(6)", "mariadb": "DATETIME(6)",
            "postgresql": "TIMESTAMP"}  # fmt: skip


def _realtime_rows(adaptive: bool, gmt: bool) -> list[dict[str, str | None]]:
    rows = []
    for line in LINES:
        when, callid, queue, agent, event, *data = line.split("|")
        zone = ZoneInfo("UTC") if gmt else MOSCOW
        moment = datetime.fromtimestamp(int(when), zone).replace(microsecond=123456)
        row: dict[str, str | None] = {
            "time": moment.strftime("%Y-%m-%d %H:%M:%S.%f"), "callid": callid, "queuename": queue,
            "agent": agent, "event": event,
        }  # fmt: skip
        if adaptive:  # AST_NONSTANDARD_APP_ARGS(data[5]): the fifth takes the rest
            parts = "|".join(data).split("|", 4)
            parts += [""] * (5 - len(parts))
            row.update({f"data{i + 1}": p for i, p in enumerate(parts)})
        else:
            row["data"] = "|".join(data)
        rows.append(row)
    return rows


@pytest.mark.parametrize("backend", ["sqlite", "mysql", "mariadb", "postgresql"])
@pytest.mark.parametrize("adaptive", [True, False], ids=["data1-5", "data"])
def test_asterisk_s_realtime_table_gives_the_file_s_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, adaptive: bool
) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'realtime.db'}"
    else:
        var = (
            "PBXGATE_TEST_POSTGRESQL_DSN" if backend == "postgresql" else "PBXGATE_TEST_MARIADB_DSN"
        )
        url = require_dsn(var)
        if backend == "mariadb":  # SQLAlchemy's mariadb:// dialect, as FreePBX users write it
            url = url.replace("mysql+", "mariadb+", 1)
    table = f"queue_log_{secrets.token_hex(4)}"
    engine = create_engine(url)
    gmt = not adaptive  # one layout with local times, the other with UTC
    with engine.begin() as conn:
        conn.execute(text((ALEMBIC if adaptive else OLDER).format(
            t=table, serial=SERIAL[backend], dt=DATETIME[backend])))  # fmt: skip
        rows = _realtime_rows(adaptive, gmt)
        cols = list(rows[0])
        conn.execute(
            text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                 f"({', '.join(':' + c for c in cols)})"),
            rows,
        )  # fmt: skip
    try:
        config = _config(tmp_path, f'[queue]\nsource = "{url}"\ntable = "{table}"\n'
                                   f"realtime_use_gmt = {str(gmt).lower()}\n")  # fmt: skip
        for command in ("calls", "stats", "agents"):
            assert main(["--config", str(config), "queue", command, str(GOLDEN), "--json"]) == 0
            from_file = _json(capsys)
            assert main(["--config", str(config), "queue", command, "--from", "2026-12-05",
                         "--to", "2026-12-05", "--json"]) == 0, capsys.readouterr().err  # fmt: skip
            got = _json(capsys)
            if command == "agents":  # static members: logged in till the window's end
                for row in got + from_file:
                    row.pop("logged_in"), row.pop("occupancy")
            assert got == from_file, command
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
        engine.dispose()


def test_a_table_that_is_not_queue_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "other.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE queue_log (time TEXT, callid TEXT)"))
    engine.dispose()
    assert main(["queue", "stats", "--source", str(db)]) == 3
    err = capsys.readouterr().err
    assert "is not a queue_log table: no column 'queuename'" in err and err.count("\n") == 1
    assert main(["queue", "stats", "--source", str(tmp_path / "none.db")]) != 0


def test_a_bare_import_reads_the_rotated_file_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Asterisk wrote between the last import and logrotate's rename is only in .1."""
    log = tmp_path / "queue_log"
    config = str(_config(tmp_path, f'[queue]\nlog = "{log}"\n'))
    log.write_text("\n".join(LINES[:3]) + "\n", encoding="utf-8")
    assert main(["--config", config, "queue", "import"]) == 0
    log.write_text("\n".join(LINES[:5]) + "\n", encoding="utf-8")  # two more, then rotated
    log.rename(tmp_path / "queue_log.1")
    log.write_text("\n".join(LINES[5:]) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--config", config, "queue", "import"]) == 0
    out = capsys.readouterr().out
    assert "queue_log.1: 2 lines read: 2 imported" in out
    assert f"{log}: {len(LINES) - 5} lines read: {len(LINES) - 5} imported" in out
    store = QueueStore(_store(tmp_path))
    try:
        assert store.count() == len(LINES)
    finally:
        store.close()


def test_identical_lines_in_one_second_are_each_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PAUSE, UNPAUSE, PAUSE within a second (a button pressed twice) writes two identical
    PAUSE lines: both are lines, also when an import ended between them."""
    lines = [
        "1000|MANAGER|sales|Vera|ADDMEMBER|",
        "1100|NONE|sales|Vera|PAUSE|",
        "1100|NONE|sales|Vera|UNPAUSE|",
        "1100|NONE|sales|Vera|PAUSE|",
        "5000|NONE|sales|Vera|UNPAUSE|",
        "6000|MANAGER|sales|Vera|REMOVEMEMBER|",
    ]
    log = tmp_path / "queue_log"
    log.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")  # the import ends mid-second
    assert main(["queue", "import", str(log)]) == 0
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["queue", "import", str(log)]) == 0
    assert main(["queue", "import", "--full", str(log)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].endswith("4 lines read: 4 imported, 0 already present, 0 rejected")
    assert out[2].endswith("6 lines read: 0 imported, 6 already present, 0 rejected")
    store = QueueStore(_store(tmp_path))
    try:
        stored = [f"{ln.time}|{ln.event}" for ln in store.lines()]
    finally:
        store.close()
    assert stored == [f"{ln.split('|')[0]}|{ln.split('|')[4]}" for ln in lines]
    assert main(["queue", "agents", "--source", "local", "--from", "1970-01-01", "--to",
                 "1970-01-02", "--json"]) == 0  # fmt: skip
    assert _json(capsys)[0]["paused"] == {"(no reason)": 3900}


def test_a_damaged_compressed_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    packed = tmp_path / "queue_log.2.gz"
    whole = gzip.compress(GOLDEN.read_bytes() * 50)
    packed.write_bytes(whole[: len(whole) // 2])
    for argv in (["queue", "import", str(packed)], ["queue", "stats", str(packed)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "a damaged compressed file" in err and err.count("\n") == 1


def test_calls_are_shown_in_the_pbx_s_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(_config(tmp_path)), "queue", "calls", str(GOLDEN)]) == 0
    # 1796445478 is 04:37:58 UTC, 07:37:58 in Moscow
    assert capsys.readouterr().out.startswith("2026-12-05 07:37:58  700  84991000005")
