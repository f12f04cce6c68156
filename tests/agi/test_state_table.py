"""The AGI session's state table: every (state, input) pair, and random walks through it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.agi.errors import LocalProtocolError, RemoteProtocolError
from pbxgate.agi.protocol import (
    TRANSITIONS,
    AgiSession,
    ConnectionClosed,
    Environment,
    Hangup,
    Input,
    Reply,
    State,
    transition,
)

PAIRS = list(itertools.product(State, Input))


@pytest.mark.parametrize(("state", "inp"), PAIRS, ids=lambda v: v.name)
def test_every_pair_is_allowed_or_raises_the_right_error(state, inp):
    if (state, inp) in TRANSITIONS:
        assert transition(state, inp) is TRANSITIONS[(state, inp)]
        return
    error = LocalProtocolError if inp is Input.SEND else RemoteProtocolError
    with pytest.raises(error):
        transition(state, inp)


def test_error_and_closed_are_sinks():
    assert not [k for k in TRANSITIONS if k[0] is State.ERROR]
    assert {v for k, v in TRANSITIONS.items() if k[0] is State.CLOSED} == {State.CLOSED}


# What each input looks like on the wire (or as a call), for driving a real session.
WIRE = {
    Input.ENV_LINE: b"agi_callerid: 100\n",
    Input.ENV_END: b"\n",
    Input.REPLY: b"200 result=1\n",
    Input.USAGE_START: b"520-Invalid command syntax.  Proper usage follows:\n",
    Input.USAGE_LINE: b" Usage: NOOP\n",
    Input.USAGE_END: b"520 End of proper usage.\n",
    Input.HANGUP: b"HANGUP\n",
    Input.EOF: b"",
}


def _wire_input(state: State, inp: Input) -> bytes | None:
    """The bytes that mean ``inp`` in ``state``; None where no bytes can mean it."""
    if state is State.ENVIRONMENT:
        # In the environment every line is an environment line or the blank end.
        return WIRE[inp] if inp in (Input.ENV_LINE, Input.ENV_END, Input.EOF) else None
    if state is State.USAGE:
        return WIRE[inp] if inp in (Input.USAGE_LINE, Input.USAGE_END, Input.EOF) else None
    if inp in (Input.ENV_LINE, Input.ENV_END, Input.USAGE_LINE, Input.USAGE_END):
        return None
    return WIRE[inp]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(Input)), max_size=25))
def test_random_walks_follow_the_table(inputs):
    """A real session fed random inputs ends where the table says, or raises as it says."""
    session = AgiSession()
    model = State.ENVIRONMENT
    for inp in inputs:
        if inp is Input.SEND:
            expected = TRANSITIONS.get((model, inp))
            if expected is None:
                with pytest.raises(LocalProtocolError):
                    session.send_command("NOOP")
                assert session.state is model  # our own mistake does not break the session
                continue
            assert session.send_command("NOOP") == b"NOOP\n"
            model = expected
            continue
        data = _wire_input(model, inp)
        if data is None or (model is State.CLOSED and data):
            continue
        session.receive_data(data)
        expected = TRANSITIONS.get((model, inp))
        if expected is None:
            with pytest.raises(RemoteProtocolError):
                list(session.events())
            assert session.state is State.ERROR
            return
        events = list(session.events())
        model = expected
        assert session.state is model
        _check_events(inp, events)


def _check_events(inp: Input, events: list[object]) -> None:
    if inp is Input.ENV_END:
        assert len(events) == 1 and isinstance(events[0], Environment)
    elif inp is Input.HANGUP:
        assert events == [Hangup()]
    elif inp is Input.REPLY:
        assert events == [Reply(200, "result=1", 1)]
    elif inp is Input.USAGE_END:
        assert len(events) == 1 and isinstance(events[0], Reply) and events[0].code == 520
    elif inp is Input.EOF:
        assert events == [ConnectionClosed()]
    else:
        assert events == []
