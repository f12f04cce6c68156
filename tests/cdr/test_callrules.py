"""The call rules on legs shaped like those a real Asterisk 22 wrote (tests/asterisk/ has the
real thing; these pin each rule down on its own)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from pbxgate.cdr.callrules import derive, link_by_channels, parse_channel
from pbxgate.cdr.model import Leg
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import group_calls

T0 = datetime(2026, 12, 4, 10, 0, 0)
RULE = InternalRule()


def leg(at: int, src: str, dst: str, channel: str, dstchannel: str, disp: str, *,
        answered: int | None = None, end: int, uid: str = "1.1", link: str = "1.1",
        seq: int = 0, lastapp: str = "Dial", ctx: str = "from-did-direct") -> Leg:  # fmt: skip
    start = T0 + timedelta(seconds=at)
    stop = T0 + timedelta(seconds=end)
    answer = T0 + timedelta(seconds=answered) if answered is not None else None
    return Leg(start=start, src=src, dst=dst, channel=channel, dstchannel=dstchannel,
               disposition=disp, duration=end - at,
               billsec=(end - answered) if answered is not None else 0, uniqueid=uid,
               linkedid=link, sequence=seq, lastapp=lastapp, dcontext=ctx, answer=answer,
               end=stop)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "tech", "name", "half"),
    [
        ("PJSIP/101-0000002a", "PJSIP", "101", ""),
        ("SIP/101-00000abc", "SIP", "101", ""),
        ("IAX2/101-14893", "IAX2", "101", ""),
        ("IAX2/trunk-12", "IAX2", "trunk", ""),
        ("PJSIP/mts-trunk-0000001f", "PJSIP", "mts-trunk", ""),
        ("DAHDI/i1/84991234567-1a", "DAHDI", "84991234567", ""),
        ("Local/101@from-queue-00000000;1", "Local", "101", "1"),
        ("Local/102@from-internal-0000001b;2", "Local", "102", "2"),
    ],
)
def test_channel_names(text: str, tech: str, name: str, half: str) -> None:
    chan = parse_channel(text)
    assert chan is not None
    assert (chan.tech, chan.name, chan.half) == (tech, name, half)


def test_ring_group_answered_by_the_phone_not_the_group() -> None:
    legs = [
        leg(0, "84991000001", "600", "IAX2/trunk-1", "IAX2/101-2", "NO ANSWER", end=4),
        leg(
            0,
            "84991000001",
            "600",
            "IAX2/trunk-1",
            "IAX2/102-3",
            "ANSWERED",
            answered=4,
            end=7,
            seq=1,
        ),
        leg(0, "84991000001", "600", "IAX2/trunk-1", "IAX2/103-4", "NO ANSWER", end=4, seq=2),
    ]
    d = derive(legs, RULE)
    assert (d.outcome, d.answered_by, d.answered_via, d.ring_seconds, d.talk_seconds) == (
        "ANSWERED", "102", "600", 4, 3)  # fmt: skip


def test_every_phone_busy_is_busy_though_the_callers_last_leg_says_otherwise() -> None:
    legs = [
        leg(0, "84991000003", "600", "IAX2/trunk-1", "IAX2/101-2", "BUSY", end=0),
        leg(0, "84991000003", "600", "IAX2/trunk-1", "IAX2/102-3", "BUSY", end=1, seq=1),
        # what Asterisk writes for the caller alone after Dial gave up: no party B
        leg(
            1, "84991000003", "600", "IAX2/trunk-1", "", "NO ANSWER", end=1, seq=2, lastapp="Hangup"
        ),
    ]
    assert derive(legs, RULE).outcome == "BUSY"


def test_one_phone_rang_unanswered_makes_the_call_unanswered() -> None:
    legs = [
        leg(0, "84991000003", "600", "IAX2/trunk-1", "IAX2/101-2", "BUSY", end=0),
        leg(0, "84991000003", "600", "IAX2/trunk-1", "IAX2/102-3", "NO ANSWER", end=8, seq=1),
    ]
    assert derive(legs, RULE).outcome == "NO ANSWER"


def test_busy_in_the_dialplan_and_network_failures_keep_their_status() -> None:
    assert derive([leg(0, "84991", "199", "IAX2/trunk-1", "", "BUSY", end=0,
                       lastapp="Busy")], RULE).outcome == "BUSY"  # fmt: skip
    congested = [
        leg(0, "101", "89161000003", "IAX2/101-1", "IAX2/trunk-2", "CONGESTION", end=0),
        leg(0, "101", "89161000003", "IAX2/101-1", "", "CONGESTION", end=0, seq=1),
    ]
    assert derive(congested, RULE).outcome == "CONGESTION"


def test_queue_answered_by_the_agent_through_a_local_channel() -> None:
    """The caller's rows ring Local/...;1 and carry the caller's own answer (the queue answered
    first); the ;2 half's row says when the agent picked up."""
    out = "IAX2/trunk-1"
    legs = [
        leg(
            0,
            "84991000005",
            "700",
            out,
            "Local/101@from-queue-00000000;1",
            "ANSWERED",
            answered=0,
            end=5,
            lastapp="Queue",
            ctx="ext-queues",
        ),
        leg(
            1,
            "84991000005",
            "700",
            out,
            "Local/102@from-queue-00000001;1",
            "NO ANSWER",
            end=3,
            seq=1,
            lastapp="Queue",
            ctx="ext-queues",
        ),
        leg(
            1,
            "84991000005",
            "101",
            "Local/101@from-queue-00000000;2",
            "IAX2/101-7",
            "ANSWERED",
            answered=3,
            end=5,
            uid="1.3",
            seq=2,
            ctx="from-queue",
        ),
        leg(
            1,
            "84991000005",
            "102",
            "Local/102@from-queue-00000001;2",
            "IAX2/102-8",
            "NO ANSWER",
            end=3,
            uid="1.5",
            seq=3,
            ctx="from-queue",
        ),
    ]
    d = derive(legs, RULE)
    assert (d.answered_by, d.answered_via, d.ring_seconds, d.talk_seconds) == ("101", "700", 3, 2)
    assert d.origin.channel == out


def test_queue_abandoned_is_not_answered_by_the_queue() -> None:
    legs = [
        leg(
            0,
            "84991000006",
            "700",
            "IAX2/trunk-1",
            "Local/101@from-queue-00000002;1",
            "NO ANSWER",
            answered=0,
            end=4,
            lastapp="Queue",
        ),
        leg(
            0,
            "84991000006",
            "700",
            "IAX2/trunk-1",
            "",
            "ANSWERED",
            answered=0,
            end=4,
            seq=1,
            lastapp="Hangup",
        ),
        leg(
            1,
            "84991000006",
            "101",
            "Local/101@from-queue-00000002;2",
            "IAX2/101-9",
            "NO ANSWER",
            end=4,
            uid="1.4",
            seq=2,
        ),
    ]
    d = derive(legs, RULE)
    assert (d.outcome, d.answered_by, d.ring_seconds, d.talk_seconds) == ("NO ANSWER", "", 4, 0)


def test_pickup_credits_the_phone_that_picked_up() -> None:
    legs = [
        # the rung phone's own row after the pickup, and its row reading ANSWERED with 0 s
        leg(
            0,
            "103",
            "**103",
            "IAX2/103-5",
            "",
            "NO ANSWER",
            end=3,
            uid="1.2",
            lastapp="AppDial",
            ctx="from-internal",
        ),
        leg(0, "84991000014", "103", "IAX2/trunk-1", "IAX2/103-5", "ANSWERED", answered=3, end=3),
        leg(
            3,
            "84991000014",
            "103",
            "IAX2/trunk-1",
            "IAX2/102-6",
            "ANSWERED",
            answered=3,
            end=6,
            seq=1,
        ),
    ]
    d = derive(legs, RULE)
    assert (d.answered_by, d.answered_via, d.talked) == ("102", "", ("102",))
    assert d.origin.channel == "IAX2/trunk-1"


def test_attended_transfer_names_both_people_and_counts_the_callers_time() -> None:
    legs = [
        leg(
            3,
            "101",
            "",
            "IAX2/101-6",
            "Local/102@from-internal-00000000;1",
            "ANSWERED",
            answered=3,
            end=9,
            uid="1.2",
            lastapp="AppDial",
            ctx="from-internal",
        ),
        leg(
            3,
            "84991000013",
            "102",
            "Local/102@from-internal-00000000;2",
            "IAX2/102-7",
            "ANSWERED",
            answered=4,
            end=9,
            uid="1.3",
            seq=3,
        ),
        leg(0, "84991000013", "101", "IAX2/trunk-1", "IAX2/101-6", "ANSWERED", answered=1, end=3),
        leg(
            3,
            "84991000013",
            "101",
            "IAX2/trunk-1",
            "Local/102@from-internal-00000000;1",
            "ANSWERED",
            answered=3,
            end=9,
            seq=7,
        ),
        leg(
            9,
            "84991000013",
            "101",
            "IAX2/trunk-1",
            "IAX2/102-7",
            "ANSWERED",
            answered=9,
            end=11,
            seq=9,
        ),
    ]
    d = derive(legs, RULE)
    assert (d.answered_by, d.talked, d.ring_seconds, d.talk_seconds) == (
        "101", ("101", "102"), 1, 10)  # fmt: skip
    assert d.origin.src == "84991000013"


def test_outbound_answered_by_the_number_over_a_trunk() -> None:
    d = derive([leg(0, "101", "89161000001", "PJSIP/101-1", "PJSIP/mts-0000a", "ANSWERED",
                    answered=2, end=5, ctx="from-internal")], RULE)  # fmt: skip
    assert (d.answered_by, d.answered_via, d.talk_seconds) == ("89161000001", "", 3)


def test_a_caller_who_waited_in_a_queue_for_nobody_was_not_answered(tmp_path: Path) -> None:
    """FreePBX answers the caller before Queue(): with every agent busy or paused, or a caller
    who gives up during the greeting, the only row is the caller's, ANSWERED, lastapp Queue,
    no party B. Nobody answered: a missed call (it counted as answered, its music as talk),
    and an earlier missed call of that number did not get through by it, nor by a next call
    that only an IVR answered."""
    from pbxgate.cdr import api
    from pbxgate.cdr.missed import OPEN
    from pbxgate.cdr.query import Filters
    from pbxgate.cdr.settings import CdrSettings, SourceSettings
    from pbxgate.cdr.source import open_source
    from pbxgate.cdr.store import Store
    from pbxgate.cdr.window import Window

    waited = leg(600, "84991000006", "700", "IAX2/trunk-2", "", "ANSWERED", answered=600,
                 end=645, uid="2.1", link="2.1", lastapp="Queue")  # fmt: skip
    d = derive([waited], RULE)
    assert (d.outcome, d.answered_by, d.talk_seconds) == ("NO ANSWER", "", 0)
    earlier = leg(0, "84991000006", "101", "IAX2/trunk-1", "PJSIP/101-1", "NO ANSWER", end=20)
    ivr = leg(900, "84991000006", "7000", "IAX2/trunk-3", "", "ANSWERED", answered=900,
              end=960, uid="3.1", link="3.1", lastapp="BackGround")  # fmt: skip
    db = tmp_path / "cdr.sqlite3"
    Store.open_sqlite(db).insert([earlier, waited, ivr])
    src = open_source(CdrSettings(sources={"s": SourceSettings(url=f"sqlite:///{db}")}), "s")
    day = Window(T0.replace(hour=0), T0.replace(hour=23))
    try:
        kpis = api.stats(src, day, Filters()).kpis
        assert (kpis.calls, kpis.answered, kpis.talk_seconds) == (3, 1, 60)  # the IVR's only
        rows = api.missed(src, day, Filters()).rows
        assert [(r["src"], r["resolution"]) for r in rows] == [
            ("84991000006", OPEN), ("84991000006", OPEN)]  # fmt: skip
    finally:
        src.close()


def test_answered_by_the_dialplan_alone_has_nobody_in_answered_by() -> None:
    d = derive([leg(0, "84991", "7000", "PJSIP/trunk-1", "", "ANSWERED", answered=0, end=20,
                    lastapp="BackGround")], RULE)  # fmt: skip
    assert (d.outcome, d.answered_by, d.talk_seconds) == ("ANSWERED", "", 20)


@pytest.mark.parametrize("caller", ["", "anonymous", "Restricted", "Unknown", "UNAVAILABLE"])
def test_a_caller_with_no_number_is_inbound_from_a_trunk(caller: str) -> None:
    assert RULE.direction(caller, "105", "PJSIP/trunk-0001", "from-did-direct") == "inbound"
    assert RULE.direction(caller, "105", "PJSIP/mts-0001", "custom-context") == "inbound"
    assert RULE.is_withheld(caller)


def test_a_phone_with_no_caller_id_calling_inside_is_internal() -> None:
    assert RULE.direction("", "102", "PJSIP/101-0001", "from-internal") == "internal"
    assert RULE.direction("", "89161234567", "PJSIP/101-0001", "from-internal") == "outbound"


def test_trunk_patterns_from_the_settings() -> None:
    rule = InternalRule(trunk_channels=(r"^PJSIP/1\d\d-",), inbound_contexts=())
    assert rule.direction("", "105", "PJSIP/100-01", "somewhere") == "inbound"
    assert rule.direction("", "105", "PJSIP/201-01", "somewhere") == "internal"


def test_without_linkedid_the_legs_of_a_queue_call_are_joined_by_their_channels() -> None:
    """Master.csv has no linkedid: the agent's row (the Local ;2 half's uniqueid) and the
    picked-up phone's own row join the caller's call through channel names."""
    legs = [
        leg(
            0,
            "84991000005",
            "700",
            "IAX2/trunk-1",
            "Local/101@from-queue-0000000a;1",
            "ANSWERED",
            answered=0,
            end=5,
            uid="9.1",
            link="",
        ),
        leg(
            1,
            "84991000005",
            "101",
            "Local/101@from-queue-0000000a;2",
            "IAX2/101-7",
            "ANSWERED",
            answered=3,
            end=5,
            uid="9.2",
            link="",
        ),
        leg(
            60,
            "84991000099",
            "101",
            "IAX2/trunk-3",
            "IAX2/101-7",
            "ANSWERED",
            answered=61,
            end=70,
            uid="9.3",
            link="",
        ),  # fmt: skip  (IAX2/101-7 again, a minute later)
    ]
    calls = group_calls(legs, RULE)
    assert [len(c.legs) for c in calls] == [2, 1]
    assert (calls[0].answered_by, calls[0].answered_via) == ("101", "700")


def test_without_any_id_a_blind_transfer_is_one_call() -> None:
    """cdr_csv's own 16 columns have no uniqueid: each leg is keyed by its start and channel.
    The real Asterisk 22 rows of a blind transfer (101 takes the call, sends it to 102) leave
    the caller's channel in two rows that touch: one call, answered by 101 (it was two)."""
    import sqlite3

    con = sqlite3.connect(":memory:")
    con.executescript((Path(__file__).parents[1] / "queue/goldens/office.cdr.sql").read_text())
    rows = con.execute(
        "SELECT calldate, src, dst, channel, dstchannel, lastapp, duration, billsec,"
        " disposition, dcontext FROM cdr WHERE AcctId IN (89, 90)"
    ).fetchall()
    legs = []
    for at, src, dst, chan, dchan, app, duration, billsec, disp, ctx in rows:
        start = datetime.fromisoformat(at)
        legs.append(Leg(start=start, src=src, dst=dst, channel=chan, dstchannel=dchan,
                        lastapp=app, duration=int(duration), billsec=int(billsec),
                        disposition=disp, dcontext=ctx,
                        end=start + timedelta(seconds=int(duration))))  # fmt: skip
    assert len({leg.call_key for leg in legs}) == 2  # two keys, no id
    (call,) = group_calls(legs, RULE)
    assert (call.src, call.outcome, call.answered_by, len(call.legs)) == (
        "84991000012", "ANSWERED", "101", 2)  # fmt: skip


def test_legs_with_a_linkedid_are_never_joined_by_channel() -> None:
    a = leg(0, "84991", "101", "IAX2/trunk-1", "IAX2/101-7", "ANSWERED", answered=1, end=5,
            uid="1.1", link="1.1")  # fmt: skip
    b = leg(2, "101", "102", "IAX2/101-7", "IAX2/102-8", "ANSWERED", answered=3, end=5,
            uid="2.1", link="2.1")  # fmt: skip
    groups = link_by_channels({"1.1": [a], "2.1": [b]}, lambda x: x.channel,
                              lambda x: x.dstchannel, lambda x: (x.start, x.finish),
                              lambda x: bool(x.linkedid))  # fmt: skip
    assert sorted(groups) == ["1.1", "2.1"]


def test_linking_is_not_quadratic_when_a_channel_name_repeats() -> None:
    """DAHDI reuses DAHDI/1-1 all day: 20,000 legs without linkedid group in well under a
    second (a linear scan per leg took minutes for a month)."""
    import time

    legs = []
    for n in range(10_000):
        at = n * 10
        legs.append(leg(at, "84991", "101", "IAX2/trunk-1", "DAHDI/1-1", "ANSWERED",
                        answered=at + 1, end=at + 5, uid=f"{n}.1", link=""))  # fmt: skip
        legs.append(leg(at + 1, "101", "", "DAHDI/1-1", "", "ANSWERED", answered=at + 1,
                        end=at + 5, uid=f"{n}.2", link=""))  # fmt: skip
    started = time.perf_counter()
    calls = group_calls(legs, RULE)
    assert time.perf_counter() - started < 5
    assert len(calls) == 10_000 and all(len(c.legs) == 2 for c in calls)


def test_a_channel_that_began_before_the_leg_still_links() -> None:
    """Overlap, not "starts inside": a phone's channel from before a transfer's new row."""
    x = leg(1, "102", "", "PJSIP/102-9", "", "ANSWERED", answered=1, end=100, uid="2.1", link="")
    y = leg(30, "84991", "101", "IAX2/trunk-1", "PJSIP/102-9", "ANSWERED", answered=30, end=80,
            uid="1.1", link="")  # fmt: skip
    assert len(group_calls([x, y], RULE)) == 1


def test_an_empty_disposition_is_no_answer_with_one_leg_or_several() -> None:
    one = [leg(0, "84991", "101", "IAX2/trunk-1", "PJSIP/101-1", "", end=5)]
    two = [*one, leg(0, "84991", "101", "IAX2/trunk-1", "PJSIP/102-1", "", end=5, seq=1)]
    assert derive(one, RULE).outcome == derive(two, RULE).outcome == "NO ANSWER"


def test_a_dahdi_port_is_no_extension() -> None:
    d = derive([leg(0, "101", "89161234567", "PJSIP/101-1", "DAHDI/1-1", "ANSWERED", answered=2,
                    end=9, ctx="from-internal")], RULE)  # fmt: skip
    assert d.answered_by == "89161234567"
    assert RULE.direction("", "105", "DAHDI/1-1", "custom") == "inbound"
