"""The report as terminal text (also the plain-text part of the e-mail): pure dict -> str."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pbxgate.cdr.report.build import OUTCOMES
from pbxgate.cdr.report.i18n import WEEKDAYS, duration, label, moment, number, paused_reasons


def kpi_value(row: dict[str, Any], value: Any) -> str:
    """A headline KPI value as a reader wants it: 72.0 s as 1:12, a busy hour as 12:00."""
    if value is None:
        return "–"
    if row["unit"] == "seconds":
        return duration(value)
    if row["unit"] == "percent":
        return f"{value:.1f}"
    if row["unit"] == "hour":
        return str(value)[11:16] if len(str(value)) > 11 else str(value)
    return number(value)


def kpi_change(row: dict[str, Any]) -> str:
    """``+3 (+25.0%)``, ``-5.0 pp`` for percentages, ``+0:12`` for durations; text for arrows
    too, so that the change reads without colour."""
    delta = row.get("delta")
    if delta is None:
        return ""
    size = abs(delta)
    if row["unit"] == "seconds":
        size = round(size)
        delta = 0 if size == 0 else delta
    sign = "+" if delta > 0 else "−" if delta < 0 else "±"
    if row["unit"] == "percent":
        return f"{sign}{size:.1f} pp"
    text = duration(size) if row["unit"] == "seconds" else number(size)
    pct = row.get("change_pct")
    if pct is None:
        return f"{sign}{text}"
    pct_sign = "+" if pct > 0 else "−" if pct < 0 else "±"
    return f"{sign}{text} ({pct_sign}{abs(pct):.1f}%)"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> Iterator[str]:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    yield line(headers)
    yield "  ".join("-" * w for w in widths)
    for row in rows:
        yield line(row)


def _section(title: str) -> Iterator[str]:
    yield ""
    yield title
    yield "=" * len(title)


def _capped(rows: list[Any], limit: int) -> tuple[list[Any], int]:
    return rows[:limit], max(0, len(rows) - limit)


def render_text(report: dict[str, Any], *, max_rows: int = 100) -> str:
    return "".join(line + "\n" for line in text_lines(report, max_rows=max_rows))


def text_lines(report: dict[str, Any], *, max_rows: int = 100) -> Iterator[str]:
    lang = report["language"]

    def t(key: str) -> str:
        return label(lang, key)

    period, prev = report["period"], report["previous"]
    yield f"{t('title')}: {period['label']}"
    yield f"{t('source')}: {report['source']}  ·  {t('previous')}: {prev['label']}"
    yield from _section(t("kpis"))
    yield from _kpi_table(report["kpis"], t)
    yield from _section(t("hourly"))
    yield from _hourly(report["hourly"], t)
    if report["heatmap"]:
        yield from _section(t("heatmap"))
        yield from _heatmap(report["heatmap"], lang)
    yield from _section(t("top_callers"))
    yield from _rows(
        report["top_callers"],
        t,
        [
            ("number", "number", str),
            ("name", "name", str),
            ("calls", "calls", number),
            ("answered", "answered", number),
            ("no_answer", "missed", number),
            ("talk", "talk_seconds", duration),
        ],
    )
    yield from _section(t("top_dids"))
    yield from _rows(
        report["top_dids"],
        t,
        [
            ("did", "did", str),
            ("calls", "calls", number),
            ("answered", "answered", number),
            ("no_answer", "missed", number),
            ("asr_col", "asr", number),
            ("talk", "talk_seconds", duration),
        ],
    )
    yield from _section(t("missed_list"))
    shown, more = _capped(report["missed"], max_rows)
    yield from _rows(
        shown,
        t,
        [
            ("start", "start", moment),
            ("caller", "src", str),
            ("did", "did", str),
            ("dst", "dst", str),
            ("outcome", "outcome", t),
            ("ring", "ring", number),
            ("resolution", "resolution", t),
            ("after", "after_seconds", duration),
            ("by", "by", str),
        ],
    )
    if more:
        yield "… " + t("more").format(n=more)
    yield from _section(t("extensions"))
    yield from _rows(
        report["extensions"],
        t,
        [
            ("extension", "extension", str),
            ("calls", "calls", number),
            ("answered", "answered", number),
            ("no_answer", "missed", number),
            ("talk", "talk_seconds", duration),
            ("acd_col", "acd", duration),
        ],
    )
    if report.get("queues"):
        yield from _queues(report["queues"], t)
    if report["recordings"]:
        yield from _section(t("recordings"))
        shown, more = _capped(report["recordings"], max_rows)
        yield from _rows(
            shown,
            t,
            [
                ("start", "start", moment),
                ("caller", "src", str),
                ("dst", "dst", str),
                ("file", "url", str),
            ]
            if any(r["url"] for r in shown)
            else [
                ("start", "start", moment),
                ("caller", "src", str),
                ("dst", "dst", str),
                ("file", "file", str),
            ],
        )
        if more:
            yield "… " + t("more").format(n=more)
    elif report.get("recordings_count"):
        yield from _section(t("recordings"))
        yield t("recordings_count").format(n=report["recordings_count"])


# (header word, key, format) of the Queues section's tables; shared with the HTML page.
QUEUE_COLUMNS = [
    ("queue", "queue", str),
    ("offered", "offered", number),
    ("answered", "answered", number),
    ("abandoned", "abandoned", number),
    ("short_abandoned", "short_abandoned", number),
    ("timed_out", "timed_out", number),
    ("sl_target", "target_seconds", number),
    ("service_level", "service_level_pct", number),
    ("wait_avg", "wait_avg", duration),
    ("wait_p90", "wait_p90", duration),
    ("wait_max", "wait_max", duration),
    ("talk_avg", "talk_avg", duration),
]
QUEUE_HOUR_COLUMNS = [
    ("hour", "hour", str),
    ("offered", "offered", number),
    ("answered", "answered", number),
    ("abandoned", "abandoned", number),
    ("timed_out", "timed_out", number),
    ("other_exits", "other", number),
    ("service_level", "service_level_pct", number),
]
AGENT_COLUMNS = [
    ("agent", "agent", str),
    ("taken", "taken", number),
    ("rang_unanswered", "rang_unanswered", number),
    ("talk", "talk", duration),
    ("logged_in", "logged_in", duration),
    ("paused", "paused_total", duration),
    ("occupancy", "occupancy_pct", number),
    ("paused_reasons", "paused", paused_reasons),
]


def queue_rows(section: dict[str, Any], t: Any) -> list[dict[str, Any]]:
    """The per-queue rows, and the all-queues row named in the report's language."""
    rows: list[dict[str, Any]] = list(section["by_queue"])
    if section["total"]:
        rows.append({**section["total"], "queue": t("all_queues")})
    return rows


def _queues(section: dict[str, Any], t: Any) -> Iterator[str]:
    yield from _section(t("queues"))
    yield from _rows(queue_rows(section, t), t, QUEUE_COLUMNS)
    if section["by_queue"]:
        yield t("queues_note").format(short=section["short_abandon"])
    yield from _section(t("queue_hourly"))
    hours = [{**r, "hour": f"{r['hour']:02d}:00"} for r in section["hourly"] if r["offered"]]
    yield from _rows(hours, t, QUEUE_HOUR_COLUMNS)
    yield from _section(t("agents"))
    yield from _rows(section["agents"], t, AGENT_COLUMNS)
    if section["agents"]:
        yield t("agents_note")


def _kpi_table(kpis: list[dict[str, Any]], t: Any) -> Iterator[str]:
    rows = [
        [t(k["key"]), kpi_value(k, k["value"]), kpi_value(k, k["previous"]), kpi_change(k)]
        for k in kpis
    ]
    yield from _table([t("kpi"), t("value"), t("prev_value"), t("change")], rows, {1, 2, 3})


def _hourly(hourly: list[dict[str, Any]], t: Any) -> Iterator[str]:
    rows = [
        [f"{r['hour']:02d}:00", *(str(r[k]) for k in OUTCOMES), str(r["total"])]
        for r in hourly
        if r["total"]
    ]
    if not rows:
        yield t("none")
        return
    yield from _table([t("hour"), *(t(k) for k in OUTCOMES), t("total")], rows, {1, 2, 3, 4, 5})


def _heatmap(grid: list[list[int]], lang: str) -> Iterator[str]:
    hours = [h for h in range(24) if any(row[h] for row in grid)] or list(range(8, 20))
    rows = [
        [WEEKDAYS[lang if lang in WEEKDAYS else "ru"][d], *(str(grid[d][h]) for h in hours)]
        for d in range(7)
    ]
    yield from _table(["", *(f"{h:02d}" for h in hours)], rows, set(range(1, len(hours) + 1)))


def _rows(rows: list[dict[str, Any]], t: Any, cols: list[tuple[str, str, Any]]) -> Iterator[str]:
    if not rows:
        yield t("none")
        return
    cells = [[_cell(fmt, r.get(key)) for _, key, fmt in cols] for r in rows]
    right = {
        i
        for i, (_, key, _) in enumerate(cols)
        if all(isinstance(r.get(key), int | float) or r.get(key) is None for r in rows)
    }
    yield from _table([t(h) for h, _, _ in cols], cells, right)


def _cell(fmt: Any, value: Any) -> str:
    if value is None or value == "":
        return ""
    return str(fmt(value))


__all__ = [
    "AGENT_COLUMNS",
    "QUEUE_COLUMNS",
    "QUEUE_HOUR_COLUMNS",
    "kpi_change",
    "kpi_value",
    "queue_rows",
    "render_text",
    "text_lines",
]
