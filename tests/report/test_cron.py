"""Cron parsing and next fire times: fields, day rules, midnight, month ends, DST both ways."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbxgate.cdr.report.cron import Cron, next_fire, to_utc
from pbxgate.errors import ConfigError

BERLIN = ZoneInfo("Europe/Berlin")  # DST: 2024-03-31 02:00 -> 03:00, 2024-10-27 03:00 -> 02:00
MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3, no DST since 2014
NEW_YORK = ZoneInfo("America/New_York")


def fire(expr: str, tz: ZoneInfo, after: str) -> str:
    """Next fire after a local wall-clock time (first occurrence), as local ISO with offset."""
    start = datetime.fromisoformat(after).replace(tzinfo=tz)
    return next_fire(Cron.parse(expr), tz, start).astimezone(tz).isoformat()


def test_fields_lists_ranges_steps_and_names() -> None:
    cron = Cron.parse("*/20 9-17/4 1,15 jan-mar mon-fri")
    assert cron.minutes == {0, 20, 40}
    assert cron.hours == {9, 13, 17}
    assert cron.days == {1, 15}
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert Cron.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert Cron.parse("5/15 * * * *").minutes == {5, 20, 35, 50}
    assert Cron.parse("@daily") == Cron.parse("0 0 * * *").__class__.parse("@daily")
    assert Cron.parse("@weekly").weekdays == {0}


@pytest.mark.parametrize(
    "expr",
    [
        "",
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "*/0 * * * *",
        "a * * * *",
        "5-1 * * * *",
        "* * * 13 *",
    ],
)
def test_bad_expressions_are_config_errors(expr: str) -> None:
    with pytest.raises(ConfigError, match="cron expression"):
        Cron.parse(expr)


def test_daily_report_around_midnight() -> None:
    assert fire("0 7 * * *", MOSCOW, "2026-11-25 23:59") == "2026-11-26T07:00:00+03:00"
    assert fire("0 7 * * *", MOSCOW, "2026-11-26 06:59") == "2026-11-26T07:00:00+03:00"
    assert fire("0 7 * * *", MOSCOW, "2026-11-26 07:00") == "2026-11-27T07:00:00+03:00"
    assert fire("0 0 * * *", MOSCOW, "2026-11-26 00:00") == "2026-11-27T00:00:00+03:00"
    assert fire("59 23 * * *", MOSCOW, "2026-11-26 23:58:30") == "2026-11-26T23:59:00+03:00"


def test_the_zone_decides_the_instant() -> None:
    after = datetime(2026, 11, 26, 5, 0, tzinfo=UTC)  # 08:00 Moscow, 00:00 New York
    cron = Cron.parse("0 7 * * *")
    assert next_fire(cron, MOSCOW, after) == datetime(2026, 11, 27, 4, 0, tzinfo=UTC)
    assert next_fire(cron, NEW_YORK, after) == datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_month_ends_and_leap_days() -> None:
    assert fire("0 6 31 * *", MOSCOW, "2026-04-01 00:00") == "2026-05-31T06:00:00+03:00"
    assert fire("0 6 29 2 *", MOSCOW, "2025-03-01 00:00") == "2028-02-29T06:00:00+03:00"
    assert fire("0 7 1 * *", MOSCOW, "2026-12-31 08:00") == "2027-01-01T07:00:00+03:00"
    with pytest.raises(ConfigError, match="never fires"):
        next_fire(Cron.parse("0 0 30 2 *"), MOSCOW, datetime(2026, 1, 1, tzinfo=UTC))


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # crontab(5): "0 8 1 * mon" runs on the 1st AND on every Monday.
    assert fire("0 8 1 * mon", MOSCOW, "2026-11-26 09:00") == "2026-11-30T08:00:00+03:00"
    assert fire("0 8 1 * mon", MOSCOW, "2026-11-30 09:00") == "2026-12-01T08:00:00+03:00"
    # Only weekdays restricted: Monday to Friday, 07:30.
    assert fire("30 7 * * 1-5", MOSCOW, "2026-11-27 08:00") == "2026-11-30T07:30:00+03:00"


def test_spring_forward_a_skipped_time_fires_once_when_the_clock_jumps() -> None:
    # 2024-03-31 in Berlin: 02:00 CET becomes 03:00 CEST, 02:30 does not exist.
    assert fire("30 2 * * *", BERLIN, "2024-03-30 12:00") == "2024-03-31T03:00:00+02:00"
    assert fire("30 2 * * *", BERLIN, "2024-03-31 03:00") == "2024-04-01T02:30:00+02:00"
    # Every 15 minutes through the gap: 01:45, then 03:00 (02:00..02:45 collapse into it), 03:15.
    cron = Cron.parse("*/15 * * * *")
    moment = datetime(2024, 3, 31, 1, 40, tzinfo=BERLIN)
    seen = []
    for _ in range(4):
        moment = next_fire(cron, BERLIN, moment)
        seen.append(moment.astimezone(BERLIN).strftime("%H:%M%z"))
    assert seen == ["01:45+0100", "03:00+0200", "03:15+0200", "03:30+0200"]


def test_fall_back_a_repeated_time_fires_once() -> None:
    # 2024-10-27 in Berlin: 03:00 CEST becomes 02:00 CET, 02:30 happens twice.
    first = "2024-10-27T02:30:00+02:00"
    assert fire("30 2 * * *", BERLIN, "2024-10-26 12:00") == first
    after_first = datetime(2024, 10, 27, 0, 31, tzinfo=UTC)  # 02:31 CEST
    nxt = next_fire(Cron.parse("30 2 * * *"), BERLIN, after_first)
    assert nxt.astimezone(BERLIN).isoformat() == "2024-10-28T02:30:00+01:00"
    # A daily 07:00 report keeps its wall-clock time across the change: 25 hours apart.
    a = next_fire(Cron.parse("0 7 * * *"), BERLIN, datetime(2024, 10, 26, 6, tzinfo=BERLIN))
    b = next_fire(Cron.parse("0 7 * * *"), BERLIN, a)
    assert b - a == timedelta(hours=25)


def test_to_utc_for_real_skipped_and_repeated_times() -> None:
    assert to_utc(datetime(2024, 3, 31, 2, 30), BERLIN) == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)
    assert to_utc(datetime(2024, 10, 27, 2, 30), BERLIN) == datetime(
        2024, 10, 27, 0, 30, tzinfo=UTC
    )
    assert to_utc(datetime(2024, 7, 1, 7, 0), NEW_YORK) == datetime(2024, 7, 1, 11, 0, tzinfo=UTC)


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_fire(Cron.parse("@hourly"), MOSCOW, datetime(2026, 1, 1))


EXPRS = st.sampled_from(
    [
        "0 7 * * *",
        "*/15 * * * *",
        "30 2 * * *",
        "0 0 1 * *",
        "45 23 * * 0",
        "0 8 1 * mon",
        "0 2-3 * * *",
    ]
)
ZONES = st.sampled_from([BERLIN, MOSCOW, NEW_YORK, ZoneInfo("Australia/Lord_Howe")])


@settings(max_examples=150, deadline=None)
@given(expr=EXPRS, tz=ZONES, offset=st.integers(0, 2 * 366 * 24 * 60))
def test_next_fire_is_later_and_on_a_matching_or_jumped_minute(
    expr: str, tz: ZoneInfo, offset: int
) -> None:
    cron = Cron.parse(expr)
    after = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=offset, seconds=offset % 61)
    got = next_fire(cron, tz, after)
    assert got > after
    local = got.astimezone(tz)
    wall_ok = (
        local.minute in cron.minutes and local.hour in cron.hours and cron.matches_day(local.date())
    )
    # Not on a matching minute only when a DST jump skipped it: the offset changed just now.
    jumped = (got - timedelta(minutes=1)).astimezone(tz).utcoffset() != local.utcoffset()
    assert wall_ok or jumped
    # Nothing fires in between: the minute before is not a later match.
    assert next_fire(cron, tz, got - timedelta(seconds=1)) == got
