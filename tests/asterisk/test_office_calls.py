"""pbxgate against the CDRs a real Asterisk 22 wrote for the office's calls, on every backend.

The scenario list in :mod:`tests.asterisk.office` is the truth: for each backend, every call
pbxgate shows must be one of the scenarios' calls (found by its start time), every scenario must
show as exactly one call, and its direction, outcome, who answered and through which group or
queue, everyone the caller talked to, ring and talk seconds (within 1 s), recording and DID
must be the scenario's. Facts a backend does not carry (Master.csv has no DID or recording
column) must show as unknown, not as something else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pbxgate.cdr.store import Store
from pbxgate.cli.main import main
from tests.asterisk.conftest import OfficeRun
from tests.asterisk.office import Scenario, slot_of

pytestmark = [pytest.mark.asterisk, pytest.mark.mariadb, pytest.mark.postgresql]

COLUMNS = (
    "start,direction,src,did,dst,answered_by,answered_via,talked,outcome,ring,talk,recording,legs"
)


@dataclass(frozen=True)
class Backend:
    name: str
    has_did: bool
    has_recording: bool
    # answer and end times per leg: FreePBX's table and the sample cdr_sqlite3_custom mapping
    # keep only the start and whole-second durations (see talk_tolerance)
    has_end_times: bool


BACKENDS = [
    Backend("cdr_csv", has_did=False, has_recording=False, has_end_times=True),
    Backend("cdr_custom", has_did=False, has_recording=False, has_end_times=True),
    Backend("cdr_csv+cdr_custom", has_did=False, has_recording=False, has_end_times=True),
    Backend("cdr_sqlite3_custom", has_did=True, has_recording=False, has_end_times=False),
    Backend("mariadb_freepbx", has_did=True, has_recording=True, has_end_times=False),
    Backend("postgresql_alembic", has_did=False, has_recording=False, has_end_times=True),
]


# The world sees a call start and end a few milliseconds before or after the PBX does (the IAX2
# frames cross loopback, the PBX runs the AGI step first): the truth is off by that much.
OBSERVER = 0.05


def talk_tolerance(backend: Backend, legs: int) -> float:
    """1 s, as Asterisk truncates every time to the second. A table without answer and end
    times gives a leg's end as start + duration, each truncated (up to 2 s short), so the talk
    of a call of several legs (a transfer) can only be known to 2 s there (docs/cdr.md)."""
    return (1.0 if backend.has_end_times or legs == 1 else 2.0) + OBSERVER


def _config(tmp_path: Path, run: OfficeRun, backend: str) -> Path:
    logs = run.logs
    store = tmp_path / "store.sqlite3"
    urls = {
        "cdr_sqlite3_custom": f"sqlite:///{logs / 'master.db'}",
        "mariadb_freepbx": run.mariadb_dsn,
        "postgresql_alembic": run.postgresql_dsn,
    }
    tables = {"mariadb_freepbx": run.table, "postgresql_alembic": run.table}
    monitor = run.pbx / "spool" / "monitor"  # where MixMonitor wrote the recordings
    lines = ["[cdr]", f'store = "{store}"', f'monitor_dir = "{monitor}"']
    if backend in urls:
        lines += ['default_source = "pbx"', "[cdr.sources.pbx]", f'url = "{urls[backend]}"']
        if backend in tables:
            lines.append(f'table = "{tables[backend]}"')
    cfg = tmp_path / "config.toml"
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = {
        "cdr_csv": [logs / "cdr-csv" / "Master.csv"],
        "cdr_custom": [logs / "cdr-custom" / "Master.csv"],
        "cdr_csv+cdr_custom": [logs / "cdr-csv" / "Master.csv", logs / "cdr-custom" / "Master.csv"],
    }.get(backend, [])
    for path in files:
        assert main(["--config", str(cfg), "cdr", "import", str(path)]) == 0
    return cfg


def _window(plan: list[Scenario]) -> list[str]:
    """From the first scenario's second (the warm-up calls before it are not the office's)."""
    lo = datetime.fromtimestamp(int(plan[0].started))
    hi = datetime.fromtimestamp(plan[-1].finished) + timedelta(minutes=2)
    return ["--from", f"{lo:%Y-%m-%d %H:%M:%S}", "--to", f"{hi:%Y-%m-%d %H:%M}"]


def _json(cfg: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    code = main(["--config", str(cfg), *args, "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out) if out.strip() else []


def _by_scenario(
    plan: list[Scenario], rows: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {sc.name: [] for sc in plan}
    for row in rows:
        sc = slot_of(plan, datetime.fromisoformat(row["start"]))
        assert sc is not None, f"a call before the first scenario: {row}"
        found[sc.name].append(row)
    return found


def _differences(sc: Scenario, row: dict[str, Any], backend: Backend) -> list[str]:
    t = sc.truth
    want: dict[str, Any] = {
        "direction": t.direction,
        "outcome": t.outcome,
        "src": t.src,
        "answered_by": t.answered_by,
        "answered_via": t.answered_via,
        "talked": ",".join(t.talked),
        "did": t.did if backend.has_did else "",
    }
    out = [f"{k}: {row.get(k)!r}, truth {v!r}" for k, v in want.items() if row.get(k) != v]
    for key, value, within in (("ring", t.ring, 1.0 + OBSERVER),
                               ("talk", t.talk, talk_tolerance(backend, row["legs"]))):  # fmt: skip
        if abs(float(row[key]) - value) > within:
            out.append(f"{key}: {row[key]} s, truth {value} s (within {within} s)")
    recorded = bool(row.get("recording"))
    if recorded != (t.recorded and backend.has_recording):
        out.append(f"recording: {row.get('recording')!r}, truth {t.recorded}")
    return out


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_every_call_is_as_the_office_made_it(
    office_run: OfficeRun, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, office_run, backend.name)
    rows = _json(cfg, capsys, "cdr", "calls", *_window(office_run.plan), "--columns", COLUMNS)
    found = _by_scenario(office_run.plan, rows)
    wrong: list[str] = []
    right = 0
    for sc in office_run.plan:
        calls = found[sc.name]
        if len(calls) != 1:
            wrong.append(f"{sc.name}: {len(calls)} calls, truth 1: {calls}")
            continue
        diff = _differences(sc, calls[0], backend)
        if diff:
            wrong.append(f"{sc.name}: " + "; ".join(diff))
        else:
            right += 1
    print(f"{backend.name}: {right} of {len(office_run.plan)} calls fully right")
    assert not wrong, f"{backend.name}: {right}/{len(office_run.plan)} right\n" + "\n".join(wrong)


def test_a_cdr_in_both_csv_files_is_stored_once(
    office_run: OfficeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """cdr_csv and cdr_custom write every CDR (different columns, one has sequence): the two
    files together give the store the rows of one of them, and every call the same legs."""
    (tmp_path / "one").mkdir()
    (tmp_path / "both").mkdir()
    one = _config(tmp_path / "one", office_run, "cdr_csv")
    both = _config(tmp_path / "both", office_run, "cdr_csv+cdr_custom")
    lines = (office_run.logs / "cdr-csv" / "Master.csv").read_text().count("\n")
    assert Store.open_sqlite(tmp_path / "both" / "store.sqlite3").count() == lines
    args = ["cdr", "calls", *_window(office_run.plan), "--columns", "start,src,legs,talk"]
    assert _json(one, capsys, *args) == _json(both, capsys, *args)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_missed_calls_and_who_called_back(
    office_run: OfficeRun, backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _config(tmp_path, office_run, backend.name)
    rows = _json(cfg, capsys, "cdr", "missed", *_window(office_run.plan), "--within", "1")
    got = {(r["src"], r["resolution"], r["by"]) for r in rows}
    want = set()
    for sc in office_run.plan:
        t = sc.truth
        if t.direction != "inbound" or t.outcome == "ANSWERED":
            continue
        if t.no_number:
            want.add((t.src, "no number to call back", ""))
        elif sc.name == "missed, to be called back":
            want.add((t.src, "called back", "101"))
        else:
            want.add((t.src, "not yet", ""))
    assert got == want
    assert len(rows) == len(want)


@pytest.mark.parametrize("by", ["extension", "group", "disposition", "direction"])
def test_stats_fast_path_agrees_with_the_calls(
    office_run: OfficeRun, by: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cdr stats` reads call facts straight from the rows; the same numbers must come out of
    the truth: per extension the person who answered, per group the group or queue."""
    cfg = _config(tmp_path, office_run, "mariadb_freepbx")
    capsys.readouterr()
    assert main(["--config", str(cfg), "cdr", "stats", *_window(office_run.plan), "--by", by,
                 "--format", "json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    truths = [sc.truth for sc in office_run.plan]
    assert data["totals"]["calls"] == len(truths)
    assert data["totals"]["answered"] == sum(t.outcome == "ANSWERED" for t in truths)
    key = {  # the office side of a call: who answered an inbound call, who dialled the rest
        "extension": lambda t: t.answered_by if t.direction == "inbound" else t.src,
        "group": lambda t: t.answered_via or "-",
        "disposition": lambda t: t.outcome,
        "direction": lambda t: t.direction,
    }[by]
    want: dict[str, int] = {}
    for t in truths:
        if t.outcome == "ANSWERED":
            want[key(t)] = want.get(key(t), 0) + 1
    got = {g["key"]: g["answered"] for g in data["groups"] if g["answered"]}
    assert got == want


def test_recordings_of_the_freepbx_table_are_found_on_disk(
    office_run: OfficeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """MixMonitor wrote each recorded call under YYYY/MM/DD as FreePBX does; `--recordings`
    finds every one from the table's recordingfile. A call nobody answered leaves a bare
    44-byte WAV header (so does a picked-up call: the pickup ends the caller's MixMonitor),
    which FreePBX, and pbxgate, count as no recording."""
    cfg = _config(tmp_path, office_run, "mariadb_freepbx")
    rows = _json(cfg, capsys, "cdr", "calls", *_window(office_run.plan), "--recordings",
                 "--columns", "start,recording,recording_path,recording_exists")  # fmt: skip
    found = _by_scenario(office_run.plan, rows)
    recorded = [sc for sc in office_run.plan if sc.truth.recorded]
    assert recorded
    with_audio = 0
    for sc in recorded:
        (row,) = found[sc.name]
        path = Path(row["recording_path"])
        audio = path.stat().st_size > 44
        with_audio += audio
        assert row["recording_exists"] == ("yes" if audio else "no"), (sc.name, row)
    assert with_audio >= 5  # the answered direct calls and the transfers
