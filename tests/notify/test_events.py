import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.errors import InputError
from pbxgate.notify.events import CallEvent


def make(**kw: object) -> CallEvent:
    base: dict[str, object] = {
        "kind": "incoming",
        "uniqueid": "1700000000.1",
        "linkedid": "1700000000.0",
        "caller_number": "+79161234567",
        "caller_name": "Иван Петров",
        "did": "74951234567",
        "channel": "PJSIP/trunk-00000001",
        "context": "from-trunk",
        "extension": "74951234567",
        "occurred_at": 1700000000.25,
    }
    base.update(kw)
    return CallEvent(**base)  # type: ignore[arg-type]


def test_event_id_is_kind_and_linkedid() -> None:
    assert make().event_id == "incoming:1700000000.0"
    assert make(kind="missed", dialstatus="NOANSWER").event_id == "missed:1700000000.0"
    assert make(linkedid="").event_id == "incoming:1700000000.1"


def test_json_round_trip_keeps_cyrillic_and_extra() -> None:
    ev = make(extra=(("to", "vk"), ("ring", "2")))
    text = ev.to_json()
    assert "Иван" in text
    assert CallEvent.from_json(text) == ev


def test_from_json_ignores_unknown_fields() -> None:
    text = make().to_json()[:-1] + ',"future_field":1}'
    assert CallEvent.from_json(text) == make()


@pytest.mark.parametrize("text", ["{", "[]", '{"kind":"incoming"}'])
def test_bad_json_is_input_error(text: str) -> None:
    with pytest.raises(InputError):
        CallEvent.from_json(text)


def test_unknown_kind_rejected() -> None:
    with pytest.raises(InputError, match="kind"):
        make(kind="hangup")


def _generic(event: CallEvent) -> str:
    """The event's JSON as the standard library writes it (what to_json must equal)."""
    data = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    data["extra"] = [list(pair) for pair in event.extra]
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # any text


@settings(max_examples=300, deadline=None)
@given(
    strings=st.lists(_text, min_size=12, max_size=12),
    extra=st.lists(st.tuples(_text, _text), max_size=3),
    occurred_at=st.floats(allow_nan=True, allow_infinity=True),
    talk_seconds=st.floats(min_value=0, max_value=1e9) | st.integers(0, 10**6),
    recorded=st.booleans() | st.integers(0, 1),
    transfers=st.integers(min_value=0, max_value=50) | st.booleans(),
)
def test_to_json_writes_what_the_standard_encoder_writes(
    strings: list[str],
    extra: list[tuple[str, str]],
    occurred_at: float,
    talk_seconds: float,
    recorded: bool,
    transfers: int,
) -> None:
    # the types as the dataclass states them, and what a caller may pass instead
    names = ["uniqueid", "linkedid", "caller_number", "caller_name", "did", "channel"]
    names += ["context", "extension", "dialstatus", "answered_by", "answered_name", "pbx"]
    fields = dict(zip(names, strings, strict=True))
    fields["uniqueid"] = fields["uniqueid"] or "1.1"
    event = make(
        **fields,
        extra=tuple(extra),
        occurred_at=occurred_at,
        talk_seconds=talk_seconds,
        recorded=recorded,
        transfers=transfers,
    )
    assert event.to_json() == _generic(event)


def test_to_json_writes_every_field() -> None:
    # a field added to CallEvent and not to to_json would be lost in the outbox
    assert set(json.loads(make().to_json())) == {f.name for f in dataclasses.fields(CallEvent)}


@pytest.mark.parametrize(
    "odd",
    [
        {"caller_number": None},
        {"caller_name": 5},
        {"extra": (("a", "b", "c"),)},
        {"extra": (("a", None),)},
    ],
)
def test_to_json_of_a_field_not_of_its_type_is_what_json_writes(odd: dict[str, object]) -> None:
    # from_json takes what it is given; such an event must still be written (and logged)
    event = make(**odd)
    assert event.to_json() == _generic(event)
