from __future__ import annotations

from collections import Counter
from datetime import date

from pbxgate.cdr.generate import generate
from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.query import group_calls

DAY = date(2026, 1, 6)  # a Tuesday


def test_same_seed_same_calls_other_seed_other_calls() -> None:
    first = list(generate(DAY, DAY, seed=11))
    assert first == list(generate(DAY, DAY, seed=11))
    assert first != list(generate(DAY, DAY, seed=12))


def test_realistic_shape() -> None:
    legs = list(generate(DAY, DAY, seed=2, calls_per_day=400))
    calls = group_calls(legs, InternalRule())
    assert all(leg.billsec <= leg.duration for leg in legs)
    assert any(len(c.legs) >= 3 for c in calls)  # ring groups and queues
    assert any(any(ord(ch) > 0x400 for ch in leg.cnam) for leg in legs)  # Cyrillic names
    assert Counter(c.direction for c in calls).keys() == {"inbound", "outbound", "internal"}
    outcomes = Counter(c.outcome for c in calls)
    assert {"ANSWERED", "NO ANSWER", "BUSY"} <= outcomes.keys()
    hours = Counter(c.start.hour for c in calls)
    assert hours[10] + hours[11] > hours[8] + hours[18] + hours[19]
    recorded = [leg.recordingfile for leg in legs if leg.recordingfile]
    assert recorded and all(f.split("-")[3] == "20260106" for f in recorded)


def test_weekends_are_quiet() -> None:
    saturday = date(2026, 1, 10)
    assert len(list(generate(saturday, saturday))) * 5 < len(list(generate(DAY, DAY)))
