"""Files holding phone numbers, names or secrets: 0600 in 0700 folders, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.notify.events import CallEvent
from pbxgate.notify.outbox import Outbox
from pbxgate.private import parse_mode, private_file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual one, which gave 0644 files in 0755 folders
    yield
    os.umask(old)


def test_the_cdr_store_and_its_wal_are_private(tmp_path: Path) -> None:
    assert main(["cdr", "generate", "--days", "1"]) == 0
    data = tmp_path / "data" / "pbxgate"
    files = sorted(data.glob("cdr.sqlite3*"))
    assert files and all(mode(f) == 0o600 for f in files), [(f.name, oct(mode(f))) for f in files]
    assert mode(data) == 0o700


def test_the_outbox_its_companions_and_lock_are_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "outbox.sqlite3"
    box = Outbox.open(path)
    box.enqueue(
        CallEvent(kind="incoming", uniqueid="1.1", linkedid="1.1", caller_number="84991111111",
                  caller_name="", did="", channel="", context="", extension="",
                  occurred_at=0.0)
    )  # fmt: skip
    box.acquire_worker_lock()
    files = sorted(path.parent.iterdir())
    assert {f.name for f in files} >= {"outbox.sqlite3", "outbox.sqlite3-wal",
                                       "outbox.sqlite3.worker.lock"}  # fmt: skip
    assert all(mode(f) == 0o600 for f in files), [(f.name, oct(mode(f))) for f in files]
    assert mode(path.parent) == 0o700
    box.close()


def test_a_shared_outbox_takes_the_group_mode(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "outbox.sqlite3"
    Outbox.open(path, mode=0o660).close()
    assert mode(path) == 0o660 and stat.S_IMODE(path.parent.stat().st_mode) == 0o2770


def test_files_an_older_version_left_open_are_narrowed(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    db.write_bytes(b"")
    wal = tmp_path / "old.sqlite3-wal"
    wal.write_bytes(b"")
    os.chmod(db, 0o644)
    os.chmod(wal, 0o644)
    private_file(db, companions=True)
    assert (mode(db), mode(wal)) == (0o600, 0o600)


def test_import_rejects_are_private(tmp_path: Path) -> None:
    csv_file = tmp_path / "Master.csv"
    csv_file.write_text('"only","three","fields"\n' * 2 + _good(), encoding="utf-8")
    assert main(["cdr", "import", str(csv_file)]) == 6
    (rejects,) = (tmp_path / "data" / "pbxgate").rglob("*.rejects")
    assert mode(rejects) == 0o600 and mode(rejects.parent) == 0o700


def test_a_report_file_and_a_generated_master_csv_are_private(tmp_path: Path) -> None:
    """What a user asks pbxgate to write holds numbers and names: 0600, even over a file
    that was there with a wider mode (they followed the umask: 0644)."""
    master = tmp_path / "Master.csv"
    assert main(["cdr", "generate", "--days", "1", "--calls-per-day", "5",
                 "--csv", str(master)]) == 0  # fmt: skip
    assert mode(master) == 0o600
    assert main(["cdr", "generate", "--days", "1", "--calls-per-day", "5"]) == 0
    report = tmp_path / "report.csv"
    report.write_text("old\n")
    os.chmod(report, 0o644)
    assert main(["cdr", "report", "--today", "--format", "csv", "--output", str(report)]) == 0
    assert mode(report) == 0o600 and report.read_text().startswith("# period")


def _good() -> str:
    return ('"","84991111111","104","from-trunk","""Oleg"" <84991111111>","SIP/t-1","SIP/104-2",'
            '"Dial","SIP/104,30","2016-03-18 09:01:33",,"2016-03-18 09:01:50",17,0,"NO ANSWER",'
            '"DOCUMENTATION","1458291693.1",""\n')  # fmt: skip


def test_vk_token_saved_over_an_open_file_becomes_private(tmp_path: Path) -> None:
    target = tmp_path / "vk.token"
    target.write_text("old\n")
    os.chmod(target, 0o644)
    done = subprocess.run(
        [sys.executable, "-m", "pbxgate.cli.main", "notify", "vk-token", "--community",
         "--save", str(target)],
        input="vk1.a.secret-token\n", capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert mode(target) == 0o600
    assert target.read_text() == "vk1.a.secret-token\n"


@pytest.mark.parametrize("text", ["0644", "0666", "0400", "600x", "0700"])
def test_only_owner_or_group_modes_are_taken(text: str) -> None:
    with pytest.raises(ValueError, match="file mode"):
        parse_mode(text)
