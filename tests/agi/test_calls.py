"""From environment to call event: routes, parameters, the missed-call rule."""

from __future__ import annotations

import pytest

from pbxgate.agi.calls import (
    DIALSTATUS_VAR,
    DID_VARS,
    LINKEDID_VAR,
    CallRequest,
    Skip,
    VariableReads,
    build_event,
    missed_skip_reason,
    parse_request,
)
from pbxgate.agi.errors import RouteError
from pbxgate.agi.protocol import AgiSession, Environment, Reply

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


def _reply(line: bytes) -> Reply:
    """How the protocol module reads one of Asterisk's answers."""
    session = AgiSession()
    session.receive_data(b"agi_request: x\n\n")
    session.next_event()
    session.send_command("NOOP")
    session.receive_data(line)
    reply = session.next_event()
    assert isinstance(reply, Reply)
    return reply


def _read(names: list[str], answer) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The commands VariableReads sends when Asterisk answers each with ``answer(command)``,
    and the values it ends with."""
    reads = VariableReads(names)
    sent = []
    while (command := reads.next()) is not None:
        sent.append(command)
        reads.answer(command, answer(command))
    return sent, reads.variables


def test_several_variables_are_read_in_one_round_trip() -> None:
    """Each command waits for the call's thread in Asterisk: the names go in one GET FULL
    VARIABLE, and an unset one (nothing between its joiners) is absent as after GET
    VARIABLE's result=0."""
    names = [LINKEDID_VAR, DIALSTATUS_VAR, *DID_VARS]
    sent, variables = _read(names, lambda _: _reply(b"200 result=1 (100.1|NOANSWER||7495)\n"))
    assert sent == [
        ("GET FULL VARIABLE", "${CHANNEL(linkedid)}|${DIALSTATUS}|${FROM_DID}|${CDR(did)}")
    ]
    assert variables == {LINKEDID_VAR: "100.1", DIALSTATUS_VAR: "NOANSWER", "CDR(did)": "7495"}


def test_one_variable_is_read_with_get_variable() -> None:
    sent, variables = _read([LINKEDID_VAR], lambda _: _reply(b"200 result=1 (100.1)\n"))
    assert (sent, variables) == ([("GET VARIABLE", LINKEDID_VAR)], {LINKEDID_VAR: "100.1"})
    sent, variables = _read([LINKEDID_VAR], lambda _: _reply(b"200 result=0\n"))
    assert (sent, variables) == ([("GET VARIABLE", LINKEDID_VAR)], {})
    assert _read([], lambda _: pytest.fail("no command")) == ([], {})


@pytest.mark.parametrize(
    "together",
    [
        b"200 result=1 (100.1|a|b|NOANSWER)\n",  # a value holds the joiner: 4 parts for 3
        b"510 Invalid or unknown command\n",  # an Asterisk without the command
        b"200 result=0\n",
    ],
)
def test_an_answer_that_does_not_split_is_read_again_name_by_name(together: bytes) -> None:
    answers = {
        LINKEDID_VAR: b"200 result=1 (100.1)\n",
        "FROM_DID": b"200 result=1 (a|b)\n",
        DIALSTATUS_VAR: b"200 result=1 (NOANSWER)\n",
    }

    def answer(command: tuple[str, str]) -> Reply:
        return _reply(together if command[0] == "GET FULL VARIABLE" else answers[command[1]])

    sent, variables = _read([LINKEDID_VAR, "FROM_DID", DIALSTATUS_VAR], answer)
    assert [name for name, _ in sent] == ["GET FULL VARIABLE"] + ["GET VARIABLE"] * 3
    assert variables == {LINKEDID_VAR: "100.1", "FROM_DID": "a|b", DIALSTATUS_VAR: "NOANSWER"}


def test_no_answer_ends_the_reads() -> None:
    """The peer has gone (or is silent past idle_timeout): no command more, whether it was the
    one GET FULL VARIABLE or one of the GET VARIABLEs after an answer that did not split."""
    sent, variables = _read([LINKEDID_VAR, DIALSTATUS_VAR], lambda _: None)
    assert (len(sent), variables) == (1, {})

    def answer(command: tuple[str, str]) -> Reply | None:
        if command[0] == "GET FULL VARIABLE":
            return _reply(b"510 Invalid or unknown command\n")
        return _reply(b"200 result=1 (100.1)\n") if command[1] == LINKEDID_VAR else None

    sent, variables = _read([LINKEDID_VAR, DIALSTATUS_VAR, "FROM_DID"], answer)
    assert sent == [
        ("GET FULL VARIABLE", "${CHANNEL(linkedid)}|${DIALSTATUS}|${FROM_DID}"),
        ("GET VARIABLE", LINKEDID_VAR),
        ("GET VARIABLE", DIALSTATUS_VAR),
    ]
    assert variables == {LINKEDID_VAR: "100.1"}
