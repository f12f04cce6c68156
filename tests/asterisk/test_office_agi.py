"""Call notifications through a real Asterisk: FastAGI and the process AGI, one message per call.

During the office's calls ``pbxgate serve`` ran beside the PBX with a webhook channel; the
PBX's dialplan ran FastAGI for the group and queue DIDs and ``pbxgate-agi`` for the direct ones,
and a hangup handler (FastAGI) or the ``h`` extension (script) for missed calls.
"""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from tests.asterisk.conftest import OfficeRun
from tests.asterisk.office import DID_PREFIX, Scenario
from tests.asterisk.pbxgate_side import holds

pytestmark = [pytest.mark.asterisk, pytest.mark.mariadb, pytest.mark.postgresql]

QUEUE, DND, EARLY = f"{DID_PREFIX}0700", f"{DID_PREFIX}0199", f"{DID_PREFIX}0198"


def _inbound(run: OfficeRun) -> list[Scenario]:
    return [sc for sc in run.plan if sc.truth.direction == "inbound"]


def _events(run: OfficeRun, kind: str) -> list[dict[str, object]]:
    callers = {sc.truth.src for sc in _inbound(run)}  # not the warm-up calls
    return [
        b["event"]
        for b in run.delivered
        if b["event"]["kind"] == kind and b["event"]["caller_number"] in callers
    ]


def test_one_incoming_notification_per_inbound_call(office_run: OfficeRun) -> None:
    """Every inbound call, the one the PBX hung up 50 ms into pbxgate-agi included, gave one
    message, with the number the caller dialled."""
    events = _events(office_run, "incoming")
    count = Counter(e["caller_number"] for e in events)
    assert count == Counter(sc.truth.src for sc in _inbound(office_run))
    dids = {e["caller_number"]: e["did"] for e in events}
    assert dids == {sc.truth.src: sc.truth.did for sc in _inbound(office_run)}


def test_one_missed_notification_per_missed_call_with_the_dialled_number(
    office_run: OfficeRun,
) -> None:
    """The missed notice comes from DIALSTATUS (app_dial.c): a ring group or an extension that
    was dialled and not answered. Queue() and Busy() set none, and a call the PBX hangs up
    before dialling has none either. The number dialled is FROM_DID, never the hangup
    handler's "s" or the "h" extension."""
    events = _events(office_run, "missed")
    expected = {
        sc.truth.src: sc.truth.did
        for sc in _inbound(office_run)
        if sc.truth.outcome != "ANSWERED" and sc.truth.did not in (QUEUE, DND, EARLY)
    }
    assert Counter(e["caller_number"] for e in events) == Counter(expected.keys())
    assert {e["caller_number"]: e["did"] for e in events} == expected


def test_every_agi_step_returned_to_the_dialplan_queued(office_run: OfficeRun) -> None:
    found = list(holds(office_run.logs / "full"))
    kinds = Counter(h.kind for h in found)
    inbound = _inbound(office_run)
    script = sum(1 for sc in inbound if sc.truth.did[-3] == "1" and sc.truth.did != EARLY)
    # the warm-up's five direct calls ran the script too
    assert kinds == {"script": script + 5, "fastagi": len(inbound) - script - 1}
    assert {(h.status, h.event) for h in found} == {("SUCCESS", "queued")}
    for kind in ("fastagi", "script"):
        ms = sorted(h.ms for h in found if h.kind == kind)
        print(f"{kind}: {len(ms)} calls held {statistics.median(ms)} ms median, {ms[-1]} ms max")


def test_the_variables_a_step_needs_come_in_one_command(office_run: OfficeRun) -> None:
    """Each command is a round trip to the call's thread: the office's dialplan passes nothing
    in the URL, and Asterisk 22 answers one GET FULL VARIABLE for every name a step needs, on
    a live channel (the notify step, FastAGI and pbxgate-agi) and on a hung-up one (the missed
    step in a hangup handler, FastAGI, and in the h extension, pbxgate-agi): one read and one
    SET VARIABLE a step, never a name asked for again with GET VARIABLE."""
    commands = office_run.agi_commands
    full = [e for e in commands if e["Command"].startswith("GET FULL VARIABLE ")]
    assert {(e["Context"], e["Exten"]) for e in full} == {
        ("pbxgate-notify", "s"),
        ("pbxgate-missed", "s"),
        ("from-did-direct", "h"),
    }
    assert {(e["ResultCode"], e["Result"]) for e in full} == {("200", "Success")}
    assert all("${CHANNEL(linkedid)}|" in e["Command"] for e in full)
    kinds = Counter(e["Command"].split(' "')[0] for e in commands)
    assert kinds == {"GET FULL VARIABLE": len(full), "SET VARIABLE": len(full)}
