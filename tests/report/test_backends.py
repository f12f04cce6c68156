"""The report reads every backend and layout alike (SQLite always; MariaDB and PostgreSQL when
their DSN is set): the same numbers as the report built from the fixture legs in memory."""

from __future__ import annotations

from pbxgate.cdr.numbers import InternalRule
from pbxgate.cdr.report.build import ReportOptions, build_report
from pbxgate.cdr.source import Source
from tests.cdr.test_contract import source  # noqa: F401 - the contract's backend fixture
from tests.report.helpers import DAY, NOW, day_report


def test_report_over_every_backend_matches_memory(source: Source) -> None:  # noqa: F811
    got = build_report(source, DAY, InternalRule(), ReportOptions(source="fx"), NOW)
    want = day_report()
    for key in ("kpis", "hourly", "heatmap", "extensions", "period", "previous"):
        assert got[key] == want[key], key
    assert [(m["src"], m["resolution"], m["after_seconds"]) for m in got["missed"]] == [
        (m["src"], m["resolution"], m["after_seconds"]) for m in want["missed"]
    ]
    assert [c["number"] for c in got["top_callers"]] == [c["number"] for c in want["top_callers"]]
