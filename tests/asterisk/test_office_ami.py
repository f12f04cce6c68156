"""pbxgate's AMI client and call tracker against the real PBX: while the office's calls ran, it
followed the manager's events; every inbound call must come out as the office knows it: who
called, the number dialled, who answered (nobody, for a missed call), and that it ended."""

from __future__ import annotations

import pytest

from tests.asterisk.conftest import OfficeRun
from tests.asterisk.office import Scenario

pytestmark = pytest.mark.asterisk


def _seen(ended: list[dict[str, object]], sc: Scenario) -> list[dict[str, object]]:
    """The calls seen to end that began while ``sc`` ran, from its caller."""
    return [
        call
        for call in ended
        if call["caller_number"] == sc.truth.src
        and sc.started - 1 <= float(call["started_at"]) <= sc.finished + 1  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("where", ["tracker", "stream"])
def test_every_inbound_call_is_followed_from_ring_to_hangup(
    office_run: OfficeRun, where: str
) -> None:
    """By pbxgate's tracker following the manager, and by the live-calls stream of the
    pbxgate serve that follows it (its Unix socket, as pbxgate ami live reads it)."""
    ended = office_run.live if where == "tracker" else office_run.streamed
    inbound = [
        sc for sc in office_run.plan
        if sc.truth.direction == "inbound" and sc.truth.src.startswith("8499")
    ]  # fmt: skip
    assert len(inbound) >= 15
    wrong = []
    for sc in inbound:
        seen = _seen(ended, sc)
        if len(seen) != 1:
            wrong.append(f"{sc.name}: {len(seen)} calls seen")
            continue
        (call,) = seen
        answered = sc.truth.outcome == "ANSWERED"
        answered_by = sc.truth.answered_by if answered else ""
        # after a transfer the caller talks with its target
        last = sc.truth.talked[-1] if answered else ""
        got = (call["did"], call["answered_by"], call["talking_to"], call["transfers"],
               call["state"])  # fmt: skip
        want = (sc.truth.did, answered_by, last, max(0, len(sc.truth.talked) - 1), "ended")
        if got != want:
            wrong.append(f"{sc.name}: {got} instead of {want}")
        elif answered_by and not float(call["answered_at"]) > float(call["started_at"]):  # type: ignore[arg-type]
            wrong.append(f"{sc.name}: answered at {call['answered_at']}")
    assert not wrong, "\n".join(wrong)


def _posts(run: OfficeRun) -> dict[str, list[dict[str, object]]]:
    """The AMI side's webhook bodies of each inbound caller's call, in arrival order."""
    callers = {sc.truth.src for sc in run.plan if sc.truth.direction == "inbound"}
    by_caller: dict[str, list[dict[str, object]]] = {}
    for body in run.ami_delivered:
        event = body["event"]
        if event["caller_number"] in callers:
            by_caller.setdefault(event["caller_number"], []).append(body)
    return by_caller


def test_notifications_from_ami_alone_follow_every_inbound_call_to_its_end(
    office_run: OfficeRun,
) -> None:
    """A pbxgate serve with [ami] enabled, which no dialplan line calls, its messages following
    their calls: for every inbound call, the webhook gets the call's states in order (incoming
    first, then answered, again after each transfer, then ended or missed), each once, under one
    call id, and the last is
    the call's true end: missed for every call no phone answered (the queue's, the
    do-not-disturb and the unknown DID included: the dialplan's AGI cannot see those), ended,
    with whom the caller talked last (after a transfer, its target) and how many transfers, a
    talk time and whether MixMonitor recorded it, for every answered one;
    and the missed call that 101
    calls back afterwards gets a last state, called back by 101."""
    inbound = [sc for sc in office_run.plan if sc.truth.direction == "inbound"]
    posts = _posts(office_run)
    assert sorted(posts) == sorted(sc.truth.src for sc in inbound)
    wrong = []
    for sc in inbound:
        bodies = posts[sc.truth.src]
        kinds = [str(b["kind"]) for b in bodies]
        answered = sc.truth.outcome == "ANSWERED"
        # one answered state per phone the caller talked with (a transfer: another)
        talked = ["answered"] * len(sc.truth.talked)
        whole = ["incoming", *talked, "ended"] if answered else ["incoming", "missed"]
        if sc.name == "missed, to be called back":  # 101 calls the number back, answered
            whole.append("called_back")
        if kinds != whole:
            wrong.append(f"{sc.name}: {kinds} instead of {whole}")
            continue
        if len({b["call_id"] for b in bodies}) != 1 or [b["update"] for b in bodies] != [
            False,
            *[True] * (len(bodies) - 1),
        ]:
            wrong.append(f"{sc.name}: not one call's message: {bodies}")
            continue
        last = bodies[-1]["event"]
        if last["kind"] == "called_back":
            if (last["answered_by"], last["dialstatus"]) != ("101", "CALLBACK"):
                wrong.append(f"{sc.name}: called back as {last}")
            continue
        if last["did"] != sc.truth.did or not bodies[-1]["final"]:
            wrong.append(f"{sc.name}: ends as {last}")
        elif answered and (
            (last["answered_by"], last["transfers"], last["talk_seconds"] > 0, last["recorded"])
            != (sc.truth.talked[-1], len(sc.truth.talked) - 1, True, sc.truth.recorded)
        ):
            wrong.append(f"{sc.name}: ended with {last['answered_by']!r} after "
                         f"{last['transfers']} transfers, talked {last['talk_seconds']} s, "
                         f"recorded {last['recorded']}; truth {sc.truth.talked}, recorded "
                         f"{sc.truth.recorded}")  # fmt: skip
        elif any(b["event"]["extra"] != {"source": "ami"} for b in bodies):
            wrong.append(f"{sc.name}: not from AMI: {bodies}")
    assert not wrong, "\n".join(wrong)
