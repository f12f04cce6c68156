"""pbxgate's AMI client and call tracker against the real PBX: while the office's calls ran, it
followed the manager's events; every inbound call must come out as the office knows it: who
called, the number dialled, who answered (nobody, for a missed call), and that it ended."""

from __future__ import annotations

import pytest

from tests.asterisk.conftest import OfficeRun
from tests.asterisk.office import Scenario

pytestmark = pytest.mark.asterisk


def _seen(run: OfficeRun, sc: Scenario) -> list[dict[str, object]]:
    """The calls the tracker saw end that began while ``sc`` ran, from its caller."""
    return [
        call
        for call in run.live
        if call["caller_number"] == sc.truth.src
        and sc.started - 1 <= float(call["started_at"]) <= sc.finished + 1  # type: ignore[arg-type]
    ]


def test_every_inbound_call_is_followed_from_ring_to_hangup(office_run: OfficeRun) -> None:
    inbound = [
        sc for sc in office_run.plan
        if sc.truth.direction == "inbound" and sc.truth.src.startswith("8499")
    ]  # fmt: skip
    assert len(inbound) >= 15
    wrong = []
    for sc in inbound:
        seen = _seen(office_run, sc)
        if len(seen) != 1:
            wrong.append(f"{sc.name}: {len(seen)} calls seen")
            continue
        (call,) = seen
        answered_by = sc.truth.answered_by if sc.truth.outcome == "ANSWERED" else ""
        got = (call["did"], call["answered_by"], call["state"])
        if got != (sc.truth.did, answered_by, "ended"):
            wrong.append(f"{sc.name}: {got} instead of {(sc.truth.did, answered_by, 'ended')}")
        elif answered_by and not float(call["answered_at"]) > float(call["started_at"]):  # type: ignore[arg-type]
            wrong.append(f"{sc.name}: answered at {call['answered_at']}")
    assert not wrong, "\n".join(wrong)


def _notices(run: OfficeRun, kind: str) -> list[dict[str, object]]:
    callers = {sc.truth.src for sc in run.plan if sc.truth.direction == "inbound"}
    return [
        b["event"]
        for b in run.ami_delivered
        if b["event"]["kind"] == kind and b["event"]["caller_number"] in callers
    ]


def test_notifications_from_ami_alone_one_per_inbound_call_and_per_missed_call(
    office_run: OfficeRun,
) -> None:
    """A pbxgate serve with [ami] enabled, which no dialplan line calls: one incoming notice
    per inbound call, and one missed notice per inbound call that no phone answered, the
    queue's, the do-not-disturb and the unknown DID included (the dialplan's AGI cannot see
    those: no DIALSTATUS), each with the number dialled."""
    inbound = [sc for sc in office_run.plan if sc.truth.direction == "inbound"]
    incoming = _notices(office_run, "incoming")
    assert sorted(str(e["caller_number"]) for e in incoming) == sorted(
        sc.truth.src for sc in inbound
    )
    assert {e["caller_number"]: e["did"] for e in incoming} == {sc.truth.src: sc.truth.did
                                                                for sc in inbound}  # fmt: skip
    unanswered = {sc.truth.src: sc.truth.did for sc in inbound if sc.truth.outcome != "ANSWERED"}
    missed = _notices(office_run, "missed")
    assert sorted(str(e["caller_number"]) for e in missed) == sorted(unanswered)
    assert {e["caller_number"]: e["did"] for e in missed} == unanswered
    assert all(e["extra"] == {"source": "ami"} for e in incoming + missed)
