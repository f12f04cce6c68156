"""From environment to call event: routes, parameters, the missed-call rule."""

from __future__ import annotations

import pytest

from pbxgate.agi.calls import (
    DIALSTATUS_VAR,
    DID_VARS,
    LINKEDID_VAR,
    CallRequest,
    Skip,
    build_event,
    missed_skip_reason,
    parse_request,
)
from pbxgate.agi.errors import RouteError
from pbxgate.agi.protocol import Environment

BASE = {
    "agi_uniqueid": "100.1",
    "agi_callerid": "84991111111",
    "agi_calleridname": "unknown",
    "agi_dnid": "4996491913",
    "agi_channel": "PJSIP/trunk-1",
    "agi_context": "from-trunk",
    "agi_extension": "s",
}


def env(**more: str) -> Environment:
    return Environment({**BASE, **more})


def test_fastagi_route_and_query():
    request = parse_request(
        env(agi_network="yes", agi_network_script="missed?dialstatus=BUSY&queue=sales")
    )
    assert request == CallRequest("missed", (("dialstatus", "BUSY"), ("queue", "sales")))
    assert request.missing() == [LINKEDID_VAR]


def test_script_route_and_arguments():
    request = parse_request(env(agi_arg_1="notify", agi_arg_2="linkedid=99.1", agi_arg_3="vip"))
    assert request == CallRequest("incoming", (("linkedid", "99.1"), ("arg_2", "vip")))
    assert request.missing() == []
    assert parse_request(env()).kind == "incoming"  # no argument: notify


def test_unknown_route():
    with pytest.raises(RouteError, match="no AGI handler for 'ring'"):
        parse_request(env(agi_network="yes", agi_network_script="ring"))


def test_incoming_event_fields():
    request = CallRequest("incoming", (("x", "1"),))
    event = build_event(env(), request, {LINKEDID_VAR: "99.1"}, 1700.5)
    assert not isinstance(event, Skip)
    assert event.event_id == "incoming:99.1"
    assert (event.caller_number, event.caller_name, event.did) == ("84991111111", "", "4996491913")
    assert (event.extension, event.occurred_at, event.extra) == ("s", 1700.5, (("x", "1"),))
    assert event.dialstatus == ""


def test_linkedid_falls_back_to_uniqueid_and_did_to_extension():
    event = build_event(
        env(agi_dnid="unknown", agi_extension="4951234567"), CallRequest("incoming", ()), {}, 0
    )
    assert not isinstance(event, Skip)
    assert (event.linkedid, event.did) == ("100.1", "4951234567")
    hangup = build_event(
        env(agi_dnid="unknown", agi_extension="h"), CallRequest("incoming", ()), {}, 0
    )
    assert not isinstance(hangup, Skip) and hangup.did == ""


def test_did_parameter_wins():
    request = CallRequest("incoming", (("did", "+74951234567"),))
    event = build_event(env(), request, {}, 0)
    assert not isinstance(event, Skip) and event.did == "+74951234567"


@pytest.mark.parametrize(
    ("dialstatus", "uniqueid", "linkedid", "reason"),
    [
        ("NOANSWER", "1.1", "1.1", None),
        ("BUSY", "1.1", "1.1", None),
        ("CANCEL", "1.1", "1.1", None),  # the caller gave up while it rang
        ("CHANUNAVAIL", "1.1", "1.1", None),
        ("CONGESTION", "1.1", "1.1", None),
        ("ANSWER", "1.1", "1.1", "answered"),
        ("", "1.1", "1.1", "DIALSTATUS=unset"),
        ("CANCEL", "1.2", "1.1", "not the call's first channel"),  # answered elsewhere
        ("NOANSWER", "1.2", "1.1", "not the call's first channel"),
    ],
)
def test_missed_rule(dialstatus, uniqueid, linkedid, reason):
    assert missed_skip_reason(dialstatus, uniqueid, linkedid) == reason


def test_missed_event_reads_variables_and_keeps_dialstatus():
    request = CallRequest("missed", ())
    assert request.missing() == [LINKEDID_VAR, DIALSTATUS_VAR]
    event = build_event(env(), request, {LINKEDID_VAR: "100.1", DIALSTATUS_VAR: "noanswer"}, 0)
    assert not isinstance(event, Skip)
    assert (event.event_id, event.dialstatus) == ("missed:100.1", "NOANSWER")
    skipped = build_event(env(), request, {LINKEDID_VAR: "100.0", DIALSTATUS_VAR: "CANCEL"}, 0)
    assert skipped == Skip("not the call's first channel")


@pytest.mark.parametrize("extension", ["h", "s"])
def test_a_hangup_handler_or_h_takes_the_dialled_number_from_from_did(extension: str) -> None:
    """In the h extension or a hangup handler (extension s) the dialled number is FreePBX's
    FROM_DID, else CDR(did): never "h" or "s"."""
    env = Environment({**BASE, "agi_extension": extension, "agi_dnid": "unknown",
                       "agi_network": "yes", "agi_network_script": "missed"})  # fmt: skip
    request = parse_request(env)
    assert request.missing(env) == [LINKEDID_VAR, DIALSTATUS_VAR, *DID_VARS]
    for answers, did in (
        ({"FROM_DID": "74951110101", "CDR(did)": "x"}, "74951110101"),
        ({"CDR(did)": "74951110102"}, "74951110102"),
        ({}, ""),
    ):
        variables = {LINKEDID_VAR: "100.1", DIALSTATUS_VAR: "NOANSWER", **answers}
        event = build_event(env, request, variables, 0.0)
        assert not isinstance(event, Skip)
        assert event.did == did


def test_a_number_in_the_environment_needs_no_lookup() -> None:
    for extension, dnid in (("74951110101", "unknown"), ("s", "74951110101")):
        e = Environment({**BASE, "agi_extension": extension, "agi_dnid": dnid})
        assert DID_VARS[0] not in parse_request(e).missing(e)
