"""queue_log lines and the journeys of queued calls: golden lines Asterisk 22.10.1 wrote (the
test office's queue: answered, abandoned, timed out), older layouts, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.errors import InputError
from pbxgate.queue.log import QueuedCall, journeys, parse_line, read_lines
from pbxgate.queue.stats import percentile, summarise

GOLDEN = Path(__file__).parent / "goldens" / "asterisk22.queue_log"


def test_the_real_asterisk_lines_make_three_journeys() -> None:
    lines = list(read_lines(GOLDEN.read_text().splitlines()))
    assert all(line.known for line in lines)
    answered, abandoned, timeout = journeys(lines)
    assert (answered.caller, answered.outcome, answered.agent, answered.wait, answered.talk,
            answered.position) == ("84991000005", "answered", "Anna Smirnova", 2, 2, 1)  # fmt: skip
    assert (abandoned.outcome, abandoned.wait, [a for a, _, _ in abandoned.rang]) == (
        "abandoned", 3, ["Anna Smirnova", "Boris Petrov"])  # fmt: skip
    assert (timeout.outcome, timeout.wait, len(timeout.rang)) == ("timeout", 10, 4)
    assert {e for _, e, _ in timeout.rang} == {"RINGNOANSWER"}
    connect = next(line for line in lines if line.event == "CONNECT")
    assert (connect.number("holdtime"), connect.get("bridged_uniqueid"),
            connect.number("ringtime")) == (2, "1796445478.36", 2)  # fmt: skip


def test_older_layouts_unknown_events_and_transfers() -> None:
    text = [
        "1300000000|1300000000.1|sales|NONE|ENTERQUEUE||84951234567",  # 1.8: no position
        "1300000003|1300000000.1|sales|SIP/201|CONNECT|3|1300000000.2",  # 1.4: no ringtime
        "1300000050|1300000000.1|sales|SIP/201|TRANSFER|205|from-internal|3|47|1",  # before 12
        "1300000051|1300000000.1|sales|SIP/201|SOMETHINGNEW|a|b",
        "1300000052|NONE|sales|SIP/201|PAUSE|lunch",
    ]
    lines = list(read_lines(text))
    (call,) = journeys(lines)
    assert (call.position, call.agent, call.wait, call.talk, call.transferred_to) == (
        0, "SIP/201", 3, 47, "205")  # fmt: skip
    assert lines[1].number("ringtime") == 0 and lines[1].get("ringtime") == ""
    assert not lines[3].known and lines[3].data == ("a", "b")
    assert lines[4].get("reason") == "lunch"


@pytest.mark.parametrize(
    ("line", "message"),
    [("garbage", "line 1: not a queue_log line"),
     ("yesterday|1.1|q|NONE|ENTERQUEUE", "line 1: the time 'yesterday' is not Unix seconds")],
)  # fmt: skip
def test_a_line_that_is_not_one_is_a_clear_error(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        list(read_lines([line]))
    assert parse_line("1|2|3|4|5").event == "5"


def test_pbxgate_queue_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "calls", str(GOLDEN), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["outcome"] for r in rows] == ["answered", "abandoned", "timeout"]
    assert main(["queue", "calls", str(GOLDEN)]) == 0
    assert "answered by Anna Smirnova after 2 s, talked 2 s" in capsys.readouterr().out
    bad = tmp_path / "queue_log"
    bad.write_text("1796445446|NONE|NONE|NONE|QUEUESTART|\nnot a line\n")
    assert main(["queue", "calls", str(bad)]) != 0
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: line 2: not a queue_log line") and err.count("\n") == 1
    assert main(["queue", "calls", str(tmp_path / "missing")]) != 0
    assert "cannot read" in capsys.readouterr().err


def _call(n: int, outcome: str, wait: int, talk: int = 0, queue: str = "sales") -> QueuedCall:
    return QueuedCall(f"1.{n}", queue, 1_700_000_000 + n * 60, f"8499{n:07d}", outcome,
                      "Anna" if outcome == "answered" else "", wait, talk,
                      completed=outcome == "answered")  # fmt: skip


def test_the_numbers_a_call_centre_reports() -> None:
    calls = [
        _call(1, "answered", 5, 100),
        _call(2, "answered", 15, 200),
        _call(3, "answered", 40, 300),  # answered, but outside a 20 s service level
        _call(4, "abandoned", 3),  # a short abandon: out of the service level's base
        _call(5, "abandoned", 60),
        _call(6, "timeout", 120),
        _call(7, "key", 10),
        _call(8, "in queue", 0),  # still waiting when the file ends
    ]
    s = summarise(calls, "sales", service_level=20, short_abandon=5)
    assert (s.offered, s.answered, s.abandoned, s.short_abandoned, s.timed_out,
            s.other_exits, s.in_queue, s.answered_in_sl) == (8, 3, 2, 1, 1, 1, 1, 2)  # fmt: skip
    assert s.service_level == 2 / 6  # offered minus short abandons minus still waiting
    assert (s.wait_avg, s.wait_p90, s.wait_max) == (253 / 7, 120, 120)
    assert s.talk_avg == 200.0
    assert summarise([], "none").service_level is None
    assert [percentile(list(range(1, 11)), q) for q in (0.5, 0.9, 1.0)] == [5, 9, 10]


def test_pbxgate_queue_stats(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "stats", str(GOLDEN), "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (row["key"], row["offered"], row["answered"], row["abandoned"],
            row["timed_out"]) == ("700", 3, 1, 1, 1)  # fmt: skip
    assert row["service_level"] == 0.5  # the abandon after 3 s is short: 1 of 2
    assert main(["queue", "stats", str(GOLDEN), "--by", "agent"]) == 0
    assert "Anna Smirnova" in capsys.readouterr().out


def test_review_cases_transfers_a_second_queue_and_talks_not_yet_ended() -> None:
    text = [
        "1|1.1|700|NONE|ENTERQUEUE||84991000005|1",
        "3|1.1|700|Anna|CONNECT|2|1.2|2",
        # the caller goes on to queue 800 before queue 700's COMPLETEAGENT is logged
        "50|1.1|800|NONE|ENTERQUEUE||84991000005|1",
        "51|1.1|700|Anna|COMPLETEAGENT|2|48|1",
        "60|1.1|800|Boris|CONNECT|10|1.3|3",
        # an attended transfer to a channel pair: six fields, the times counted from the end
        "90|1.1|800|Boris|ATTENDEDTRANSFER|LINK|PJSIP/101-1|Local/200@x-2;1|10|30|1",
        "100|2.1|700|NONE|ENTERQUEUE||84991000006|1",
        "104|2.1|700|Anna|CONNECT|4|2.2|1",  # still talking at the end of the file
    ]
    first, second, third = journeys(read_lines(text))
    assert (first.queue, first.talk, first.completed) == ("700", 48, True)
    assert (second.queue, second.agent, second.wait, second.talk) == ("800", "Boris", 10, 30)
    assert second.transferred_to == "PJSIP/101-1"
    assert (third.outcome, third.completed) == ("answered", False)
    stats = summarise([first, third], "700")
    assert stats.talk_avg == 48.0  # the call still talking is not counted as 0 s


def test_agents_login_pauses_by_reason_and_occupancy() -> None:
    from pbxgate.queue.agents import agents

    text = [
        "1000|MANAGER|sales|Anna|ADDMEMBER|",
        "1000|MANAGER|support|Anna|ADDMEMBER|",  # two queues: logged in once
        "1100|1.1|sales|NONE|ENTERQUEUE||84991000005|1",
        "1105|1.1|sales|Boris|RINGNOANSWER|5000",
        "1110|1.1|sales|Anna|CONNECT|10|1.2|5",
        "1400|1.1|sales|Anna|COMPLETECALLER|10|290|1",
        "1500|NONE|sales|Anna|PAUSE|lunch",
        "2100|NONE|sales|Anna|UNPAUSE|",
        "2150|2.1|sales|NONE|ENTERQUEUE||84991000006|1",
        "2160|2.1|sales|Boris|RINGNOANSWER|5000",
        "2170|2.1|sales|NONE|ABANDON|1|1|20",
        "2200|NONE|sales|Anna|PAUSEALL|",
        "2300|NONE|NONE|Anna|UNPAUSEALL|",
        "2500|MANAGER|sales|Anna|REMOVEMEMBER|",
        "2600|1796445477.9|support|Anna|REMOVEMEMBER|",  # RemoveQueueMember() in the dialplan
        "3000|NONE|NONE|NONE|QUEUESTART|",
    ]
    anna, boris = agents(read_lines(text))
    assert (anna.agent, anna.taken, anna.talk, anna.logged_in) == ("Anna", 1, 290, 1600)
    assert anna.paused == {"lunch": 600, "(no reason)": 100}
    assert anna.occupancy == 290 / 900
    # Boris is a static member (queues.conf): logged in from the first line naming him to the
    # last (not to the end of the log: nothing shows him at work after it)
    assert (boris.taken, boris.rang_unanswered, boris.logged_in) == (0, 2, 2160 - 1105)


def test_pbxgate_queue_agents_on_the_real_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["queue", "agents", str(GOLDEN), "--json"]) == 0
    rows = {r["agent"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert (rows["Anna Smirnova"]["taken"], rows["Anna Smirnova"]["rang_unanswered"]) == (1, 2)
    assert (rows["Boris Petrov"]["taken"], rows["Boris Petrov"]["rang_unanswered"]) == (0, 2)
    assert main(["queue", "agents", str(GOLDEN)]) == 0
    assert "Anna Smirnova" in capsys.readouterr().out


def test_review_cases_agents_across_days_queues_and_log_ins() -> None:
    """A static member's day starts at its first line in the window (not at a line of the day
    before); a call line after REMOVEMEMBER does not keep the agent logged in to the next
    day; leaving one queue of two does not end a PAUSEALL."""
    from pbxgate.queue.agents import agents

    day = 86400
    static = [
        f"{t}|{n}.1|sales|Anna|{e}|"
        for n, t, e in ((1, 9 * 3600, "RINGNOANSWER"), (2, 17 * 3600, "RINGNOANSWER"),
                        (3, day + 9 * 3600, "RINGNOANSWER"), (4, day + 17 * 3600, "RINGNOANSWER"))
    ]  # fmt: skip
    (anna,) = agents(read_lines(static), since=day, until=2 * day)
    assert (anna.logged_in, anna.rang_unanswered) == (8 * 3600, 2)

    relogin = [
        "32400|MANAGER|sales|Boris|ADDMEMBER|",  # day 1, 09:00
        "40000|5.1|sales|NONE|ENTERQUEUE||8499|1",
        "40010|5.1|sales|Boris|CONNECT|10|5.2|3",
        "61200|MANAGER|sales|Boris|REMOVEMEMBER|",  # 17:00, while still talking
        "61300|5.1|sales|Boris|COMPLETECALLER|10|21290|1",
        f"{day + 32400}|MANAGER|sales|Boris|ADDMEMBER|",  # day 2, 09:00 to 17:00
        f"{day + 61200}|MANAGER|sales|Boris|REMOVEMEMBER|",
    ]
    (boris,) = agents(read_lines(relogin), since=day, until=2 * day)
    assert boris.logged_in == 8 * 3600

    pauses = [
        "1000|MANAGER|sales|Vera|ADDMEMBER|",
        "1000|MANAGER|support|Vera|ADDMEMBER|",
        "2000|NONE|NONE|Vera|PAUSEALL|lunch",
        "2100|MANAGER|sales|Vera|REMOVEMEMBER|",
        "5600|NONE|NONE|Vera|UNPAUSEALL|",
        "9000|MANAGER|support|Vera|REMOVEMEMBER|",
    ]
    (vera,) = agents(read_lines(pauses))
    assert (vera.paused, vera.logged_in) == ({"lunch": 3600}, 8000)
