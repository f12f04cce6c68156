"""Several PBXes through one pbxgate: each event names its PBX, its ids carry it, routes
match it."""

from __future__ import annotations

import re
from dataclasses import replace

from pbxgate.agi.calls import build_event, parse_request
from pbxgate.agi.protocol import Environment
from pbxgate.ami.calls import RINGING, CallState
from pbxgate.ami.notices import CallNotices
from pbxgate.cdr.numbers import InternalRule
from pbxgate.notify.events import CallEvent
from pbxgate.notify.routing import Route, Router
from pbxgate.notify.templates import Renderer

from .helpers import make_event


def test_the_pbx_is_part_of_the_ids_two_pbxes_calls_never_meet() -> None:
    one, two = make_event(1, pbx="office1"), make_event(1, pbx="office2")
    assert (one.event_id, one.call_id) == ("incoming:office1/1700000000.1", "office1/1700000000.1")
    assert one.event_id != two.event_id
    assert make_event(1).event_id == "incoming:1700000000.1"  # one PBX: as before
    assert CallEvent.from_json(one.to_json()) == one


def test_the_agi_takes_the_pbx_from_its_url_or_script_arguments() -> None:
    env = Environment({
        "agi_uniqueid": "100.1", "agi_callerid": "84991111111",
        "agi_network": "yes", "agi_network_script": "notify?pbx=office1&x=1",
    })  # fmt: skip
    event = build_event(env, parse_request(env), {"CHANNEL(linkedid)": "100.1"}, 5.0)
    assert isinstance(event, CallEvent)
    assert (event.pbx, event.extra, event.event_id) == (
        "office1",
        (("x", "1"),),
        "incoming:office1/100.1",
    )
    script = Environment({"agi_uniqueid": "100.1", "agi_arg_1": "notify", "agi_arg_2": "pbx=b"})
    assert build_event(script, parse_request(script), {}, 5.0).pbx == "b"  # type: ignore[union-attr]


def test_the_manager_names_its_pbx_and_the_agi_of_that_pbx_agrees() -> None:
    state = CallState(linkedid="1733.1", caller_number="84991111111", caller_name="", did="600",
                      context="from-trunk", channel="IAX2/trunk-1", state=RINGING,
                      started_at=1.0)  # fmt: skip
    (event,) = CallNotices(InternalRule(), "office1")(state)
    env = Environment({
        "agi_uniqueid": "1733.1", "agi_callerid": "84991111111",
        "agi_network": "yes", "agi_network_script": "notify?pbx=office1",
    })  # fmt: skip
    agi = build_event(env, parse_request(env), {"CHANNEL(linkedid)": "1733.1"}, 1.0)
    assert event.event_id == agi.event_id == "incoming:office1/1733.1"  # type: ignore[union-attr]


def test_routes_match_the_pbx() -> None:
    routes = [
        Route(channels=("vk",), recipients=("moscow",), pbx=re.compile("msk-.*")),
        Route(channels=("vk",), recipients=("spb",), pbx=re.compile("spb")),
    ]
    router = Router(routes, {"vk": ["moscow", "spb"]}, None)
    assert router.targets(make_event(1, pbx="msk-2")) == [("vk", "moscow")]
    assert router.targets(make_event(1, pbx="spb")) == [("vk", "spb")]
    assert router.targets(make_event(1)) == []


def test_templates_see_the_pbx() -> None:
    text = Renderer("{{ pbx }}: {{ number }}").render(make_event(1, pbx="office1")).text
    assert text == "office1: +79161234567"
    assert replace(make_event(1), pbx="x").pbx == "x"
