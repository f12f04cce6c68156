from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from pbxgate.cdr.kpi import peak_concurrency
from pbxgate.cdr.window import Window, Zones, limit_days, parse_moment, resolve_window, zone
from pbxgate.errors import ConfigError, InputError

NOW = datetime(2026, 3, 29, 1, 30)  # the night Europe/Berlin moves to summer time


def test_periods() -> None:
    assert resolve_window(period="today", now=NOW) == Window(
        datetime(2026, 3, 29), datetime(2026, 3, 30)
    )
    assert resolve_window(period="yesterday", now=NOW).start == datetime(2026, 3, 28)
    week = resolve_window(period="week", now=NOW)
    assert (week.start, week.end) == (datetime(2026, 3, 22), datetime(2026, 3, 29))
    month = resolve_window(period="month", now=NOW)
    assert (month.start, month.end) == (datetime(2026, 2, 1), datetime(2026, 3, 1))
    days = resolve_window(days=7, now=NOW)  # today included, as cdr generate --days 7
    assert (days.start, days.end) == (datetime(2026, 3, 23), datetime(2026, 3, 30))
    assert resolve_window(days=1, now=NOW) == resolve_window(period="today", now=NOW)
    with pytest.raises(InputError, match="at least one day"):
        resolve_window(days=0, now=NOW)


def test_bare_date_to_means_end_of_that_day() -> None:
    window = resolve_window(start="2016-03-18", end="2016-03-18", now=NOW)
    assert window == Window(datetime(2016, 3, 18), datetime(2016, 3, 19))
    assert resolve_window(
        start="2016-03-18 12:00", end="2016-03-18 12:10", now=NOW
    ).days == pytest.approx(10 / 1440)


def test_bad_window_and_zone() -> None:
    with pytest.raises(InputError, match="before it starts"):
        Window(datetime(2016, 3, 19), datetime(2016, 3, 18))
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        zone("Mars/Base")


def test_gmt_source_shown_in_pbx_zone_across_dst() -> None:
    zones = Zones(source=zone("UTC"), display=zone("Europe/Berlin"))
    # 00:30 UTC is 01:30 CET (winter); 01:30 UTC is 03:30 CEST (summer, after the jump).
    assert zones.to_display(datetime(2026, 3, 29, 0, 30)) == datetime(2026, 3, 29, 1, 30)
    assert zones.to_display(datetime(2026, 3, 29, 1, 30)) == datetime(2026, 3, 29, 3, 30)
    assert zones.to_source(datetime(2026, 3, 29, 3, 30)) == datetime(2026, 3, 29, 1, 30)


def test_peak_concurrency_sweep() -> None:
    t = datetime(2026, 1, 1, 12)
    spans = [
        (t.replace(minute=0), t.replace(minute=10)),
        (t.replace(minute=5), t.replace(minute=15)),
        (t.replace(minute=10), t.replace(minute=20)),  # starts as the first ends: still 2
        (t.replace(minute=6), t.replace(minute=7)),
    ]
    assert peak_concurrency(spans) == (3, t.replace(minute=6))
    window = Window(t.replace(minute=12), t.replace(minute=30))
    assert peak_concurrency(spans, window) == (2, t.replace(minute=12))
    assert peak_concurrency([]) == (0, None)


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("31.12.2026", False, datetime(2026, 12, 31)),
        ("31.12.2026", True, datetime(2027, 1, 1)),
        ("31.12.2026 14:00", False, datetime(2026, 12, 31, 14, 0)),
        ("1.2.2026 9:05:30", False, datetime(2026, 2, 1, 9, 5, 30)),
        ("today", False, datetime(2026, 12, 4)),
        ("сегодня", True, datetime(2026, 12, 5)),
        ("yesterday", False, datetime(2026, 12, 3)),
        ("Вчера", True, datetime(2026, 12, 4)),
        ("2026-12-31 14:00", False, datetime(2026, 12, 31, 14, 0)),
    ],
)
def test_dates_as_admins_type_them(text: str, end: bool, expected: datetime) -> None:
    assert parse_moment(text, end=end, today=date(2026, 12, 4)) == expected


@pytest.mark.parametrize("text", ["31.13.2026", "32.12.2026", "завтра", "12/31/2026 x"])
def test_dates_that_are_not_are_one_line(text: str) -> None:
    with pytest.raises(InputError, match="cannot read"):
        parse_moment(text, today=date(2026, 12, 4))


def test_equal_from_and_to_get_their_own_message() -> None:
    with pytest.raises(InputError, match="the same moment") as err:
        resolve_window(start="2026-12-04 10:00", end="2026-12-04 10:00", now=datetime(2026, 12, 5))
    assert "later --to" in (err.value.hint or "")


def test_a_whole_day_in_russian_words() -> None:
    window = resolve_window(start="вчера", end="вчера", now=datetime(2026, 12, 4, 15, 0))
    assert (window.start, window.end) == (datetime(2026, 12, 3), datetime(2026, 12, 4))


@pytest.mark.parametrize(
    ("start", "end", "named"),
    [
        (None, "9999-12-31", "'9999-12-31'"),  # its end, the next day, is past datetime.max
        (None, "31.12.9999", "'31.12.9999'"),
        ("0001-01-01", "0001-01-02", "'0001-01-01'"),  # the previous period would be year 0
        ("0001-01-01", None, "'0001-01-01'"),
        ("2016-03-18", "3000-01-02", "'3000-01-02'"),
        ("1899-12-31 23:59", "2016-03-18", "'1899-12-31 23:59'"),
    ],
)
def test_moments_past_the_calendar_are_one_line(
    start: str | None, end: str | None, named: str
) -> None:
    with pytest.raises(InputError, match="is out of range") as err:
        resolve_window(start=start, end=end, now=NOW)
    assert str(err.value) == f"{named} is out of range: use a moment from 1900-01-01 to 2999-12-31"


def test_the_widest_window_leaves_room_for_what_reports_do_with_it() -> None:
    window = resolve_window(start="1900-01-01", end="2999-12-31", now=NOW)
    assert (window.start, window.end) == (datetime(1900, 1, 1), datetime(3000, 1, 1))
    assert window.previous().start.year == 800  # the report's comparison period still exists


def test_a_page_limits_the_window_it_lists() -> None:
    year = resolve_window(start="2016-01-01", end="2016-12-31", now=NOW)
    assert limit_days(year, 366) is year
    longer = resolve_window(start="1990-01-01", end="2030-12-31", now=NOW)
    with pytest.raises(InputError) as err:
        limit_days(longer, 366)
    assert str(err.value) == (
        "the window 1990-01-01 .. 2030-12-31 is longer than 366 days (a year is plenty): "
        "narrow from/to"
    )


def test_a_window_is_described_with_times_when_either_end_has_one() -> None:
    day = datetime(2016, 3, 18)
    assert Window(day, day + timedelta(days=1)).describe() == "2016-03-18"
    assert Window(day, day + timedelta(days=7)).describe() == "2016-03-18 .. 2016-03-24"
    # it said "2016-03-18 .. 2016-03-18" for the morning (the end's 12:00 not shown)
    assert (
        Window(day, day + timedelta(hours=12)).describe() == "2016-03-18 00:00 .. 2016-03-18 12:00"
    )
    assert Window(day + timedelta(hours=12), day + timedelta(days=1)).describe() == (
        "2016-03-18 12:00 .. 2016-03-19 00:00"
    )
