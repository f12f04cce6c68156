from __future__ import annotations

from datetime import datetime

import pytest

from pbxgate.cdr.kpi import peak_concurrency
from pbxgate.cdr.window import Window, Zones, resolve_window, zone
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
