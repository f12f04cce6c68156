"""The report dict over the hand-checked day: every number traced to tests/cdr/fixture_calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pbxgate.cdr.report.build import assemble
from pbxgate.cdr.window import Window
from tests.cdr.fixture_calls import EXPECTED, REC_A
from tests.report.helpers import DAY, NOW, day_report, week_report


def kpi(report: dict, key: str) -> dict:
    return next(k for k in report["kpis"] if k["key"] == key)


def test_headline_kpis_are_the_hand_computed_ones() -> None:
    report = day_report()
    for key in ("calls", "answered", "missed", "asr", "acd", "talk_seconds", "peak_concurrent"):
        assert kpi(report, key)["value"] == EXPECTED[key], key
    assert kpi(report, "busy_hour")["value"] == "2016-03-18 12:00"
    assert kpi(report, "busy_hour")["calls"] == 5
    assert kpi(report, "peak_concurrent")["at"] == "2016-03-18 12:01:33"


def test_change_against_an_empty_previous_day() -> None:
    calls = kpi(day_report(), "calls")
    assert (calls["previous"], calls["delta"], calls["change_pct"]) == (0, 10, None)
    assert kpi(day_report(), "asr")["previous"] is None


def test_change_against_the_previous_period_is_a_signed_difference() -> None:
    # The same day reported from the next day: the 18th is the previous period.
    from pbxgate.cdr.numbers import InternalRule
    from pbxgate.cdr.query import group_calls
    from pbxgate.cdr.report.build import ReportOptions
    from tests.cdr.fixture_calls import LEGS

    calls = group_calls(LEGS, InternalRule())
    window = Window(DAY.end, DAY.end.replace(day=20))
    report = assemble(calls, window, ReportOptions(), NOW)
    row = kpi(report, "calls")
    assert (row["value"], row["previous"], row["delta"], row["change_pct"]) == (0, 10, -10, -100.0)


def test_hourly_splits_inbound_calls_by_outcome() -> None:
    hourly = {r["hour"]: r for r in day_report()["hourly"]}
    # Inbound: 12h A B C (C missed: NO ANSWER+BUSY ranks as no answer); 13h F busy, G failed,
    # H answered; 14h I no answer, J answered.
    assert hourly[12] == {
        "hour": 12,
        "answered": 2,
        "no_answer": 1,
        "busy": 0,
        "failed": 0,
        "total": 3,
    }
    assert hourly[13] == {
        "hour": 13,
        "answered": 1,
        "no_answer": 0,
        "busy": 1,
        "failed": 1,
        "total": 3,
    }
    assert hourly[14]["total"] == 2
    assert sum(r["total"] for r in hourly.values()) == EXPECTED["inbound"]


def test_missed_calls_with_call_backs() -> None:
    missed = {m["src"]: m for m in day_report()["missed"]}
    assert set(missed) == {"84993333333", "89165555555", "84996666666", "84998888888"}
    assert (
        missed["84993333333"]["resolution"],
        missed["84993333333"]["after_seconds"],
        missed["84993333333"]["by"],
    ) == ("called back", 884, "113")
    assert missed["84998888888"]["resolution"] == "got through"
    assert missed["84998888888"]["after_seconds"] == 580
    assert missed["89165555555"]["resolution"] == "not yet"


def test_top_callers_dids_and_extensions() -> None:
    report = day_report()
    assert report["top_callers"][0] == {
        "number": "84998888888",
        "name": "",
        "calls": 2,
        "answered": 1,
        "missed": 1,
        "talk_seconds": 40,
    }
    # talk: A 130 + B 67 + H 130 (answered 13:30:10, ended 13:32:20) + J 40
    assert report["top_dids"] == [
        {
            "did": "4996491913",
            "calls": 8,
            "answered": 4,
            "missed": 4,
            "asr": 50.0,
            "talk_seconds": 367,
        }
    ]
    ext = {e["extension"]: e for e in report["extensions"]}
    # H was answered by 104 and transferred to 105: the extension is who answered first.
    assert ext["104"]["answered"] == 2 and ext["104"]["missed"] == 1
    assert ext["113"] == {
        "extension": "113",
        "calls": 3,
        "answered": 1,
        "missed": 2,
        "talk_seconds": 130,
        "acd": 130.0,
    }


def test_recordings_resolve_to_paths_and_links(tmp_path: Path) -> None:
    mon = tmp_path / "mon"
    wav = mon / "2016" / "03" / "18" / REC_A
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF" + b"\0" * 100)
    report = day_report(monitor_dir=mon, recordings_url="https://pbx.example/rec/")
    (rec,) = report["recordings"]
    assert rec["path"] == str(wav) and rec["exists"] is True
    assert rec["url"] == f"https://pbx.example/rec/2016/03/18/{REC_A}"
    # without recordings_url the report names no files, it counts them (issue: first hour, 14)
    plain = day_report()
    assert (plain["recordings"], plain["recordings_count"]) == ([], 1)


def test_heatmap_only_for_a_week_or_more() -> None:
    assert day_report()["heatmap"] is None
    week = week_report()
    grid = week["heatmap"]
    assert len(grid) == 7 and all(len(row) == 24 for row in grid)
    inbound = sum(r["total"] for r in week["hourly"])
    assert sum(map(sum, grid)) == inbound > 0
    assert week["daily"][0]["day"] == "2024-03-04" and len(week["daily"]) == 7


def test_the_dict_is_plain_json() -> None:
    report = week_report()
    assert json.loads(json.dumps(report)) == report


def test_call_backs_count_only_within_callback_hours() -> None:
    rows = week_report()["missed"]
    afters = [m["after_seconds"] for m in rows if m["after_seconds"] is not None]
    assert afters and max(afters) <= 24 * 3600
    assert any(m["resolution"] == "not yet" and m["attempts"] == 0 for m in rows)


@pytest.mark.parametrize(
    ("value", "prev", "unit", "expected"),
    [
        (130073, 10, "seconds", None),  # a previous period of a few seconds: "+1300725.0 %"
        (28159, 31570, "seconds", -10.8),
        (3, 4, "count", None),  # three calls against four: the absolute change says it
        (350, 369, "count", -5.1),
        (12000, 11, "count", None),  # over 1000 %
        (5, 0, "count", None),
    ],
)
def test_a_percentage_only_where_it_means_something(
    value: float, prev: float, unit: str, expected: float | None
) -> None:
    from pbxgate.cdr.report.build import _change_pct

    assert _change_pct(value, prev, unit) == expected
