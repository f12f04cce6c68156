"""pbxgate's queue_log reading against the queue_log the real PBX wrote while the office's
queue calls ran (two queues: 700 rings all its members, 701 one at a time): each queued call
comes out as the office knows it, the agents' pauses and log-ins as the office made them, the
numbers tie out with the scenario list, and every call ties out with the CDR Asterisk wrote of
it into FreePBX's table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbxgate.cli.main import main
from pbxgate.queue.agents import agents
from pbxgate.queue.log import ABANDONED, ANSWERED, TIMEOUT, QueuedCall, journeys, read_lines
from pbxgate.queue.stats import by
from tests.asterisk.conftest import OfficeRun
from tests.asterisk.office import DID_PREFIX, V_MEMBER, Scenario
from tests.asterisk.test_office_calls import _config

pytestmark = [pytest.mark.asterisk, pytest.mark.mariadb]

QUEUES = {f"{DID_PREFIX}0700": "700", f"{DID_PREFIX}0701": "701"}
# conf/pbx/queues.conf and the scenario that adds 103: the members' names and their phones
MEMBERS = {"Anna Smirnova": "101", "Boris Petrov": "102", "Вера Иванова": "103"}
UNANSWERED = {  # how the queue's unanswered calls leave it
    "queue, caller abandons while waiting": ABANDONED,
    "queue, times out": TIMEOUT,
}


def _queued(run: OfficeRun) -> list[Scenario]:
    return [sc for sc in run.plan if sc.truth.did in QUEUES]


def _lines(run: OfficeRun) -> list[str]:
    return (run.logs / "queue_log").read_text(encoding="utf-8").splitlines()


def _calls(run: OfficeRun) -> dict[str, QueuedCall]:
    return {call.caller: call for call in journeys(read_lines(_lines(run)))}


def test_every_queued_call_is_read_as_the_office_knows_it(office_run: OfficeRun) -> None:
    found = _calls(office_run)
    queued = _queued(office_run)
    assert len(queued) == 7
    wrong = []
    for sc in queued:
        call, t = found[sc.truth.src], sc.truth
        want = ANSWERED if t.outcome == "ANSWERED" else UNANSWERED[sc.name]
        # queue_log counts whole seconds from entering the queue (after Answer(), 0.5 s); the
        # truth, from the call's start
        got = (call.queue, call.outcome, abs(call.wait - t.ring) <= 2)
        if got != (QUEUES[t.did], want, True):
            wrong.append(f"{sc.name}: {got}, wait {call.wait} s, rang {t.ring} s")
        elif want == ANSWERED:
            who = (MEMBERS.get(call.agent), call.transferred_to, call.completed)
            transfer = t.talked[1] if len(t.talked) > 1 else ""
            if who != (t.answered_by, transfer, True):
                wrong.append(f"{sc.name}: {who}")
            # queue_log's talk ends at a transfer; the office's, when the caller hangs up
            elif not (abs(call.talk - t.talk) <= 2 if not transfer else call.talk < t.talk - 2):
                wrong.append(f"{sc.name}: talked {call.talk} s, the office says {t.talk}")
        elif call.agent or {MEMBERS[a] for a, _, _ in call.rang} != {"101", "102"}:
            wrong.append(f"{sc.name}: agent {call.agent!r}, rang {call.rang}")
    assert not wrong, "\n".join(wrong)


def test_who_rang_pause_and_linear_ringing(office_run: OfficeRun) -> None:
    """The paused agent is not rung; the linear queue rings 101 for its 3 s, then 102."""
    found = _calls(office_run)
    by_name = {sc.name: found[sc.truth.src] for sc in _queued(office_run)}
    paused = by_name["queue, an agent on a break (paused): the other answers"]
    assert all(a != "Boris Petrov" for a, _, _ in paused.rang)
    linear = by_name["queue, linear: the first agent does not answer, the second does"]
    ((agent, event, ms),) = linear.rang
    assert (agent, event, abs(ms - 3000) < 500) == ("Anna Smirnova", "RINGNOANSWER", True)


def test_agents_pauses_and_log_ins_as_the_office_made_them(office_run: OfficeRun) -> None:
    """Asterisk logs a member added by the manager under its interface (ADDMEMBER,
    REMOVEMEMBER: queues.conf has no log_membername_as_agent) and its calls under its name:
    [queue.members] joins the two."""
    lines = list(read_lines(_lines(office_run)))
    events = {(ln.agent, ln.event) for ln in lines}
    assert {("Boris Petrov", "PAUSE"), ("Boris Petrov", "UNPAUSE"), (V_MEMBER, "ADDMEMBER"),
            (V_MEMBER, "REMOVEMEMBER")} <= events  # fmt: skip
    apart = {row.agent: row for row in agents(lines)}
    assert (apart[V_MEMBER].taken, apart["Вера Иванова"].taken) == (0, 1)
    rows = {row.agent: row for row in agents(lines, aliases={V_MEMBER: "Вера Иванова"})}
    assert V_MEMBER not in rows
    plan = {sc.name: sc for sc in office_run.plan}
    pause = plan["queue, an agent on a break (paused): the other answers"]
    # paused before the call was placed, unpaused once it was gone
    assert abs(rows["Boris Petrov"].paused.get("lunch", 0) - (pause.finished - pause.started)) <= 2
    login = plan["queue, an agent logs in, takes the call, logs off"]
    vera = rows["Вера Иванова"]
    assert abs(vera.logged_in - (login.finished - login.started)) <= 2
    assert (vera.taken, vera.paused) == (1, {})
    assert abs(vera.talk - login.truth.talk) <= 2
    taken = {MEMBERS[r.agent]: r.taken for r in rows.values() if r.taken}
    want: dict[str, int] = {}
    for sc in _queued(office_run):
        if sc.truth.outcome == "ANSWERED":
            want[sc.truth.answered_by] = want.get(sc.truth.answered_by, 0) + 1
    assert taken == want


def test_queue_stats_tie_out_with_the_office(office_run: OfficeRun) -> None:
    rows = {s.key: s for s in by(journeys(read_lines(_lines(office_run))), lambda c: c.queue)}
    for queue in QUEUES.values():
        queued = [sc for sc in _queued(office_run) if QUEUES[sc.truth.did] == queue]
        s = rows[queue]
        assert (s.offered, s.answered, s.abandoned, s.timed_out) == (
            len(queued),
            sum(sc.truth.outcome == "ANSWERED" for sc in queued),
            sum(UNANSWERED.get(sc.name) == ABANDONED for sc in queued),
            sum(UNANSWERED.get(sc.name) == TIMEOUT for sc in queued),
        ), queue


def test_every_queued_call_ties_out_with_its_cdr(
    office_run: OfficeRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`pbxgate queue tieout` against the CDRs Asterisk wrote into FreePBX's table: every
    queued call is found by its uniqueid, answered (and by the phone the member rings) or not as
    queue_log says, with the same talk; the transferred call's CDR talks longer (queue_log stops
    at the transfer), which is not a difference."""
    cfg = _config(tmp_path, office_run, "mariadb_freepbx")
    capsys.readouterr()
    log = office_run.logs / "queue_log"
    assert main(["--config", str(cfg), "queue", "tieout", str(log), "--json"]) == 0, (
        capsys.readouterr()
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    truth = {sc.truth.src: sc.truth for sc in _queued(office_run)}
    rows = [r for r in rows if r["caller"] in truth]
    assert len(rows) == len(truth)
    for row in rows:
        t = truth[row["caller"]]
        assert row["agrees"] and row["linkedid"] == row["callid"], row
        if t.outcome == "ANSWERED":
            assert (MEMBERS[row["queue_agent"]], row["cdr_answered_by"], row["cdr_answered_via"]
                    ) == (t.answered_by, t.answered_by, QUEUES[t.did])  # fmt: skip
        if row["transferred_to"]:
            assert row["cdr_talk"] > row["queue_talk"] + 2
