"""pbxgate's queue_log reading against the queue_log the real PBX wrote while the office's
queue calls ran: each queued call comes out as the office knows it."""

from __future__ import annotations

import pytest

from pbxgate.queue.log import ABANDONED, ANSWERED, TIMEOUT, journeys, read_lines
from tests.asterisk.conftest import OfficeRun

pytestmark = pytest.mark.asterisk

# conf/pbx/queues.conf: the members' names and their phones
MEMBERS = {"Anna Smirnova": "101", "Boris Petrov": "102"}
OUTCOMES = {
    "queue, answered by an agent": ANSWERED,
    "queue, caller abandons while waiting": ABANDONED,
    "queue, times out": TIMEOUT,
}


def test_every_queued_call_is_read_as_the_office_knows_it(office_run: OfficeRun) -> None:
    text = (office_run.logs / "queue_log").read_text(encoding="utf-8").splitlines()
    found = {call.caller: call for call in journeys(read_lines(text))}
    queued = [sc for sc in office_run.plan if sc.name in OUTCOMES]
    assert len(queued) == 3
    for sc in queued:
        call = found[sc.truth.src]
        assert call.outcome == OUTCOMES[sc.name], sc.name
        # queue_log counts whole seconds from entering the queue; the truth, from the call's start
        assert abs(call.wait - sc.truth.ring) <= 2, (sc.name, call.wait, sc.truth.ring)
        if call.outcome == ANSWERED:
            assert MEMBERS[call.agent] == sc.truth.answered_by
            assert abs(call.talk - sc.truth.talk) <= 2, (sc.name, call.talk, sc.truth.talk)
        else:
            assert call.agent == "" and {MEMBERS[a] for a, _, _ in call.rang} == {"101", "102"}


def test_queue_stats_tie_out_with_the_office(office_run: OfficeRun) -> None:
    from pbxgate.queue.stats import summarise

    text = (office_run.logs / "queue_log").read_text(encoding="utf-8").splitlines()
    stats = summarise(journeys(read_lines(text)), "700")
    queued = [sc for sc in office_run.plan if sc.name in OUTCOMES]
    assert (stats.offered, stats.answered, stats.abandoned, stats.timed_out) == (
        len(queued),
        sum(sc.truth.outcome == "ANSWERED" for sc in queued),
        sum(OUTCOMES[sc.name] == ABANDONED for sc in queued),
        sum(OUTCOMES[sc.name] == TIMEOUT for sc in queued),
    )
