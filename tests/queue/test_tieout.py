"""The queue's view beside the CDR's, on what a real Asterisk 22 wrote for the test office's
queue calls: its queue_log (answered, abandoned, timed out, a paused agent, a linear queue, an
agent added and removed by the manager, a blind transfer by the agent) and its CDRs
(cdr_sqlite3_custom's master.db, dumped as SQL)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.queue.agents import agents
from pbxgate.queue.log import read_lines

GOLDENS = Path(__file__).parent / "goldens"
QUEUE_LOG = GOLDENS / "office.queue_log"


@pytest.fixture
def master_db(tmp_path: Path) -> Path:
    path = tmp_path / "master.db"
    con = sqlite3.connect(path)
    con.executescript((GOLDENS / "office.cdr.sql").read_text(encoding="utf-8"))
    con.close()
    return path


def _config(tmp_path: Path, extra: str = "") -> str:
    path = tmp_path / "pbxgate.toml"
    path.write_text(f'[cdr]\ntimezone = "UTC"\n{extra}', encoding="utf-8")  # the PBX's zone
    return str(path)


Rows = list[dict[str, object]]


def _tieout(
    tmp_path: Path, log: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, Rows]:
    capsys.readouterr()
    code = main(["--config", _config(tmp_path), "queue", "tieout", str(log), "--cdr-source",
                 str(db), "--json"])  # fmt: skip
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_every_queued_call_ties_out_with_its_cdr(
    tmp_path: Path, master_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = _tieout(tmp_path, QUEUE_LOG, master_db, capsys)
    assert code == 0
    assert len(rows) == 7 and all(r["agrees"] for r in rows)
    by_caller = {r["caller"]: r for r in rows}
    answered = {c: (r["queue_agent"], r["cdr_answered_by"], r["cdr_answered_via"])
                for c, r in by_caller.items() if r["queue_outcome"] == "answered"}  # fmt: skip
    assert answered == {
        "84991000005": ("Anna Smirnova", "101", "700"),
        "84991000018": ("Anna Smirnova", "101", "700"),
        "84991000019": ("Boris Petrov", "102", "701"),
        "84991000020": ("Вера Иванова", "103", "700"),
        # the agent transferred the caller to 103: the CDR's dst says 103, lastdata the queue
        "84991000021": ("Anna Smirnova", "101", "700"),
    }
    moved = by_caller["84991000021"]
    assert moved["transferred_to"] == "103" and moved["cdr_talk"] > moved["queue_talk"] + 2
    for caller in ("84991000006", "84991000007"):  # the queue answered them, nobody else
        assert (by_caller[caller]["cdr_answered_by"], by_caller[caller]["queue_outcome"]) in {
            ("", "abandoned"), ("", "timeout")
        }  # fmt: skip


def test_differences_are_found(
    tmp_path: Path, master_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = QUEUE_LOG.read_text(encoding="utf-8")
    # 84991000018 talked 3 s; say 30. And one call's CDR rows are gone.
    changed = text.replace("|1796452298.62|700|Anna Smirnova|COMPLETECALLER|2|3|1",
                           "|1796452298.62|700|Anna Smirnova|COMPLETECALLER|2|30|1")  # fmt: skip
    assert changed != text
    log = tmp_path / "queue_log"
    log.write_text(changed, encoding="utf-8")
    con = sqlite3.connect(master_db)
    con.execute("DELETE FROM cdr WHERE linkedid = '1796452286.49'")  # the timed-out call
    con.commit()
    con.close()
    code, rows = _tieout(tmp_path, log, master_db, capsys)
    assert code == 1
    wrong = {r["caller"]: r["differences"] for r in rows if not r["agrees"]}
    assert wrong == {
        "84991000018": ["talk 30 s in queue_log, 3 s in the CDR"],
        "84991000007": ["no CDR of this call"],
    }
    capsys.readouterr()
    assert main(["--config", _config(tmp_path), "queue", "tieout", str(log), "--cdr-source",
                 str(master_db)]) == 1  # fmt: skip
    out = capsys.readouterr()
    assert "84991000018  talk 30 s in queue_log, 3 s in the CDR" in out.out
    assert "5 of 7 queued calls tie out with the CDR" in out.out


def test_agents_under_two_names_are_joined(tmp_path: Path) -> None:
    """ADDMEMBER/REMOVEMEMBER name the interface (no log_membername_as_agent), the calls the
    member's name; an agent added paused is paused from then."""
    lines = list(read_lines(QUEUE_LOG.read_text(encoding="utf-8").splitlines()))
    vera = "Local/103@from-queue/n"
    apart = {r.agent: r for r in agents(lines)}
    assert (apart[vera].logged_in, apart[vera].taken) == (5, 0)
    joined = {r.agent: r for r in agents(lines, aliases={vera: "Вера Иванова"})}
    assert vera not in joined
    assert (joined["Вера Иванова"].logged_in, joined["Вера Иванова"].taken) == (5, 1)
    paused_at_login = [*lines[:23], *read_lines([
        "1796452313|MANAGER|700|Local/103@from-queue/n|ADDMEMBER|PAUSED",
        "1796452316|NONE|700|Local/103@from-queue/n|UNPAUSE|",
        "1796452318|MANAGER|700|Local/103@from-queue/n|REMOVEMEMBER|",
    ])]  # fmt: skip
    (row,) = [r for r in agents(paused_at_login) if r.agent == vera]
    assert (row.logged_in, row.paused) == (5, {"(no reason)": 3})


def test_queue_members_setting_reaches_pbxgate_queue_agents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, '[queue.members]\n"Local/103@from-queue/n" = "Вера Иванова"\n')
    assert main(["--config", config, "queue", "agents", str(QUEUE_LOG), "--json"]) == 0
    rows = {r["agent"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert "Local/103@from-queue/n" not in rows and rows["Вера Иванова"]["taken"] == 1


def test_cdr_stats_count_the_transferred_queue_call_for_its_queue(
    tmp_path: Path, master_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cdr stats --by group` reads call facts on its own fast path; a queue call its agent
    transferred still counts for the queue (the leg's dst became the transfer's target)."""
    capsys.readouterr()
    assert main(["--config", _config(tmp_path), "cdr", "stats", "--source", str(master_db),
                 "--from", "2026-12-05", "--to", "2026-12-05", "--by", "group",
                 "--format", "json"]) == 0  # fmt: skip
    groups = {g["key"]: g["answered"] for g in json.loads(capsys.readouterr().out)["groups"]}
    assert (groups["700"], groups["701"]) == (4, 1)


def test_a_call_through_two_queues_ties_out(
    tmp_path: Path, master_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """84991000005 first waits in queue 699 until it times out, then 700 answers it: the CDR
    tells how the call ended, which is how 700 ended it; 699's timeout is no difference."""
    lines = QUEUE_LOG.read_text(encoding="utf-8").splitlines()
    at = lines.index("1796452275|1796452274.35|700|NONE|ENTERQUEUE||84991000005|1")
    lines[at:at] = ["1796452274|1796452274.35|699|NONE|ENTERQUEUE||84991000005|1",
                    "1796452275|1796452274.35|699|NONE|EXITWITHTIMEOUT|1|1|1"]  # fmt: skip
    log = tmp_path / "queue_log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, rows = _tieout(tmp_path, log, master_db, capsys)
    assert code == 0 and len(rows) == 8 and all(r["agrees"] for r in rows)
    assert [r["queue"] for r in rows if r["caller"] == "84991000005"] == ["699", "700"]
