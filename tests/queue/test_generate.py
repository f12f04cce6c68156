"""The generated queue_log: Asterisk 22's layout, calls that each leave the queue once, agents
who are never in two calls nor answer while paused or logged off, and a month whose numbers look
like a call centre's. The checks read the lines, not the generator's state."""

from __future__ import annotations

import itertools
import re
import stat
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbxgate.cli.main import cli
from pbxgate.queue.agents import agents
from pbxgate.queue.generate import generate_queue_log
from pbxgate.queue.log import (
    ABANDONED,
    ANSWERED,
    EMPTY,
    FIELDS,
    KEY,
    TIMEOUT,
    QueueLogLine,
    journeys,
    read_lines,
)
from pbxgate.queue.stats import summarise

MONTH = (date(2026, 3, 2), date(2026, 3, 31))  # from a Monday
# How many data fields app_queue.c's ast_queue_log() format writes for each event.
LAYOUT = {
    "QUEUESTART": 1, "DID": 1, "ENTERQUEUE": 3, "CONNECT": 3, "COMPLETECALLER": 3,
    "COMPLETEAGENT": 3, "ABANDON": 3, "EXITWITHTIMEOUT": 3, "EXITEMPTY": 3, "EXITWITHKEY": 4,
    "RINGNOANSWER": 1, "RINGCANCELED": 1, "BLINDTRANSFER": 5, "ATTENDEDTRANSFER": 5,
    "ADDMEMBER": 1, "REMOVEMEMBER": 1, "AGENTLOGIN": 1, "AGENTLOGOFF": 2, "PAUSE": 1,
    "UNPAUSE": 1, "PAUSEALL": 1, "UNPAUSEALL": 1,
}  # fmt: skip
EXITS = {"ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY"}
ENDS = {"COMPLETECALLER", "COMPLETEAGENT", "BLINDTRANSFER", "ATTENDEDTRANSFER"}
UNIQUEID = re.compile(r"\d{10}\.\d+")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def month() -> list[str]:
    return list(generate_queue_log(*MONTH, seed=7, tz=UTC))


@pytest.fixture(scope="module")
def parsed(month: list[str]) -> list[QueueLogLine]:
    return list(read_lines(month))


def test_same_seed_same_lines_other_seed_other_lines() -> None:
    day = date(2026, 3, 3)
    first = list(generate_queue_log(day, day, agents=4, seed=3, tz=UTC))
    assert len(first) > 500
    assert first == list(generate_queue_log(day, day, agents=4, seed=3, tz=UTC))
    assert first != list(generate_queue_log(day, day, agents=4, seed=4, tz=UTC))


def test_every_line_is_laid_out_as_asterisk_22_writes_it(
    month: list[str], parsed: list[QueueLogLine]
) -> None:
    assert parsed[0].event == "QUEUESTART" and month[0].endswith("|NONE|NONE|NONE|QUEUESTART|")
    assert all(a.time <= b.time for a, b in itertools.pairwise(parsed))
    assert Counter(line.event for line in parsed).keys() == LAYOUT.keys()
    for line in parsed:
        assert line.event in FIELDS and len(line.data) == LAYOUT[line.event], line
        if line.event in ENDS | EXITS | {"DID", "ENTERQUEUE", "CONNECT", "RINGNOANSWER"}:
            assert UNIQUEID.fullmatch(line.callid), line
        if line.event in ("PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL"):
            assert line.callid == "NONE" and (line.queue == "NONE") == line.event.endswith("ALL")
        if line.event == "ATTENDEDTRANSFER":
            assert line.data[0] == "BRIDGE" and UUID.fullmatch(line.data[1]), line
    enter = next(line for line in parsed if line.event == "ENTERQUEUE")
    did = parsed[parsed.index(enter) - 1]  # FreePBX's QueueLog() just before Queue()
    assert (did.event, did.callid, did.queue, did.agent) == (
        "DID",
        enter.callid,
        enter.queue,
        "NONE",
    )
    assert did.get("did") in ("74951234567", "74957654321", "88005553535")
    assert 0 <= enter.time - int(enter.callid.split(".")[0]) <= 2
    assert re.fullmatch(r"[78]\d{10}", enter.get("callerid")) and enter.get("position") == "1"
    names = {line.agent for line in parsed if line.event == "CONNECT"}
    assert any(ord(ch) > 0x400 for name in names for ch in name)  # Cyrillic names
    assert any(name.isascii() for name in names)  # and Latin ones


def test_every_queued_call_leaves_exactly_once(parsed: list[QueueLogLine]) -> None:
    ends: Counter[tuple[str, str]] = Counter()
    exits: Counter[tuple[str, str]] = Counter()
    for line in parsed:
        key = (line.callid, line.queue)
        if line.event in EXITS or line.event == "CONNECT":
            exits[key] += 1
        elif line.event in ENDS:
            ends[key] += 1
    calls = journeys(parsed)
    assert {(c.callid, c.queue) for c in calls} == exits.keys()
    assert set(exits.values()) == {1}
    answered = [c for c in calls if c.outcome == ANSWERED]
    assert {(c.callid, c.queue) for c in answered} == ends.keys() and set(ends.values()) == {1}
    assert all(c.completed and c.talk > 0 for c in answered)
    assert Counter(c.outcome for c in calls).keys() == {ANSWERED, ABANDONED, TIMEOUT, KEY, EMPTY}
    assert any(c.transferred_to for c in calls)


def consistency_problems(lines: list[QueueLogLine]) -> list[str]:
    """What the lines say an agent did that a real queue could not: answer (or ring) while
    logged off, paused or in a call; log off in a call; end a call it was not in."""
    online: set[tuple[str, str]] = set()  # (agent, queue)
    paused: set[tuple[str, str]] = set()
    talking: dict[str, str] = {}  # agent -> callid
    problems = []
    for line in lines:
        member, event = (line.agent, line.queue), line.event
        if event == "ADDMEMBER":
            online.add(member)
            if line.get("paused") == "PAUSED":
                paused.add(member)
        elif event == "REMOVEMEMBER":
            online.discard(member)
            paused.discard(member)
            if line.agent in talking:
                problems.append(f"{line.time}: {line.agent} logged off in a call")
        elif event == "PAUSE":
            paused.add(member)
        elif event == "UNPAUSE":
            paused.discard(member)
        elif event in ("CONNECT", "RINGNOANSWER", "RINGCANCELED"):
            why = ("logged off" if member not in online else "paused" if member in paused
                   else "in a call" if line.agent in talking else "")  # fmt: skip
            if why:
                problems.append(f"{line.time}: {line.agent} {event} while {why}")
            if event == "CONNECT":
                talking[line.agent] = line.callid
        elif event in ENDS and talking.pop(line.agent, None) != line.callid:
            problems.append(f"{line.time}: {line.agent} ended a call it was not in")
    return problems


def test_no_agent_in_two_calls_nor_answering_paused_or_logged_off(
    parsed: list[QueueLogLine],
) -> None:
    assert consistency_problems(parsed) == []
    # the check itself finds each kind of problem
    bad = [
        "1|MANAGER|q|Anna|ADDMEMBER|",
        "2|NONE|q|Anna|PAUSE|lunch",
        "3|1.1|q|Anna|CONNECT|1|1.2|1",  # paused
        "4|1.1|q|Anna|COMPLETECALLER|1|1|1",
        "4|NONE|q|Anna|UNPAUSE|",
        "5|2.1|q|Anna|CONNECT|1|2.2|1",
        "6|3.1|q|Anna|CONNECT|1|3.2|1",  # already talking
        "7|MANAGER|q|Anna|REMOVEMEMBER|",  # in a call
        "8|4.1|q|Anna|CONNECT|1|4.2|1",  # logged off (and talking)
        "9|5.1|q|Boris|COMPLETECALLER|1|5|1",  # never answered it
    ]
    problems = consistency_problems(list(read_lines(bad)))
    assert [p.split(":")[0] for p in problems] == ["3", "6", "7", "8", "9"]


def test_peaks_wait_longer_and_lose_more_callers(parsed: list[QueueLogLine]) -> None:
    calls = journeys(parsed)
    peak = [c for c in calls if (c.entered_at // 3600) % 24 in (10, 11, 15)]
    quiet = [c for c in calls if (c.entered_at // 3600) % 24 in (12, 16, 17)]
    peak_stats, quiet_stats = summarise(peak, "peak"), summarise(quiet, "quiet")
    assert peak_stats.wait_avg > 1.3 * quiet_stats.wait_avg
    assert peak_stats.abandoned / peak_stats.offered > quiet_stats.abandoned / quiet_stats.offered
    assert peak_stats.service_level is not None and quiet_stats.service_level is not None
    assert peak_stats.service_level < quiet_stats.service_level


def test_a_months_numbers_are_plausible(parsed: list[QueueLogLine]) -> None:
    stats = summarise(journeys(parsed), "all")
    assert 8000 < stats.offered < 10000  # 400 a weekday, a few at weekends
    assert stats.service_level is not None and 0.5 < stats.service_level < 0.98
    assert 0.02 < stats.abandoned / stats.offered < 0.2
    assert 0 < stats.short_abandoned < stats.abandoned
    assert stats.timed_out > 0 and stats.other_exits > 0 and stats.in_queue == 0
    assert 120 < stats.talk_avg < 600 and stats.wait_max <= 300  # support's maximum wait
    working: dict[date, set[str]] = {}
    for line in parsed:
        if line.event == "ADDMEMBER":
            working.setdefault(datetime.fromtimestamp(line.time, UTC).date(), set()).add(line.agent)
    weekdays = [len(names) for day, names in working.items() if day.weekday() < 5]
    weekends = [len(names) for day, names in working.items() if day.weekday() >= 5]
    assert len(weekdays) == 22 and sum(weekdays) / len(weekdays) > 9  # a few off ill
    assert len(weekends) == 8 and max(weekends) <= 2


def test_agents_log_in_talk_and_pause_by_reason(parsed: list[QueueLogLine]) -> None:
    working = [row for row in agents(parsed) if row.taken]
    assert len(working) == 10
    for row in working:
        assert row.logged_in > row.talk > 0, row
        assert {"lunch", "break"} <= row.paused.keys(), row
        assert row.occupancy is not None and 0.1 < row.occupancy < 0.95
    assert any("admin" in row.paused for row in working)
    events = Counter(line.event for line in parsed)
    assert events["PAUSEALL"] == events["UNPAUSEALL"] > 0
    assert events["AGENTLOGIN"] == events["AGENTLOGOFF"] > 0


def test_cdr_generate_writes_a_private_queue_log(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[cdr]\ntimezone = "UTC"\nstore = "{tmp_path}/s.sqlite3"\n', encoding="utf-8")
    out = tmp_path / "queue_log"
    out.write_text("old\n", encoding="utf-8")
    out.chmod(0o644)  # a file left readable is narrowed before numbers go into it
    result = CliRunner().invoke(cli, [
        "--config", str(cfg), "cdr", "generate", "--from", "2026-01-05", "--to", "2026-01-06",
        "--seed", "5", "--queue-log", str(out), "--agents", "4",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    expected = list(generate_queue_log(date(2026, 1, 5), date(2026, 1, 6), agents=4, seed=5,
                                       tz=UTC))  # fmt: skip
    assert out.read_text(encoding="utf-8") == "".join(f"{line}\n" for line in expected)
    assert f"wrote {len(expected)} queue_log lines to {out}" in result.output
    assert "CDR rows written" in result.output  # the CDRs of the same days as before
