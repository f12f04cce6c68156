import pytest

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
