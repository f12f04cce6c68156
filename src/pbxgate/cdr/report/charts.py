"""Charts of a report as PNG bytes (matplotlib, Agg, no pyplot global state).

Readable in grey-scale and by colour-blind readers: each outcome has a hatch pattern as well
as a colour, axes are labelled with units, the heat map prints its numbers in the cells.
matplotlib is imported inside the functions: importing pbxgate (the AGI path above all) must
not pay for it.
"""

from __future__ import annotations

import io
from typing import Any

from pbxgate.cdr.report.i18n import WEEKDAYS, label
from pbxgate.optional import need

# (face colour, hatch) per outcome: the hatch tells them apart when printed in grey.
STYLE = {
    "answered": ("#2f6db5", ""),
    "no_answer": ("#f0a040", "///"),
    "busy": ("#c8403a", "xxx"),
    "failed": ("#9aa3ad", "..."),
}
DPI = 100


def _figure(width: float, height: float) -> Any:
    need("matplotlib", "a report with charts (HTML, e-mail)")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # No "Software" text chunk: the same report gives the same bytes.
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _stacked(
    ax: Any,
    xs: list[int],
    rows: list[dict[str, Any]],
    lang: str,
    style: dict[str, tuple[str, str]] = STYLE,
    words: dict[str, str] | None = None,
) -> None:
    """Bars of ``rows[key]`` for each key of ``style``, stacked in its order, labelled with
    ``words[key]`` (default: the key) in ``lang``."""
    bottom = [0] * len(rows)
    for key, (face, hatch) in style.items():
        values = [r[key] for r in rows]
        ax.bar(
            xs,
            values,
            bottom=bottom,
            color=face,
            hatch=hatch,
            edgecolor="#333333",
            linewidth=0.6,
            label=label(lang, (words or {}).get(key, key)),
            width=0.8,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel(label(lang, "calls_axis"))
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", fontsize=8, ncols=4, frameon=False)
    ax.set_ylim(0, max(1, *bottom) * 1.25)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def hourly_chart(report: dict[str, Any]) -> bytes | None:
    """Inbound calls per hour of day, stacked by outcome; None when there were none."""
    rows = report["hourly"]
    if not any(r["total"] for r in rows):
        return None
    lang = report["language"]
    active = [r["hour"] for r in rows if r["total"]]
    lo, hi = min(*active, 8), max(*active, 19)
    shown = rows[lo : hi + 1]
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    xs = [r["hour"] for r in shown]
    _stacked(ax, xs, shown, lang)
    ax.set_xticks(xs, [f"{h:02d}" for h in xs], fontsize=8)
    ax.set_xlabel(label(lang, "hour_axis"))
    fig.tight_layout()
    return _png(fig)


def daily_chart(report: dict[str, Any]) -> bytes | None:
    """Inbound calls per day of the period, stacked by outcome (weeks and months)."""
    rows = report["daily"]
    if len(rows) < 2 or not any(r["total"] for r in rows):
        return None
    lang = report["language"]
    days = WEEKDAYS[lang if lang in WEEKDAYS else "ru"]
    fig = _figure(8.0, 3.0)
    ax = fig.add_subplot()
    xs = list(range(len(rows)))
    _stacked(ax, xs, rows, lang)
    step = 1 if len(rows) <= 14 else 2
    ticks = xs[::step]
    names = [
        f"{rows[i]['day'][8:10]}.{rows[i]['day'][5:7]}\n{days[rows[i]['weekday']]}" for i in ticks
    ]
    ax.set_xticks(ticks, names, fontsize=7)
    ax.set_xlabel(label(lang, "day"))
    fig.tight_layout()
    return _png(fig)


def heatmap_chart(report: dict[str, Any]) -> bytes | None:
    """Weekday × hour of inbound calls, grey scale with the count printed in each cell."""
    grid = report["heatmap"]
    if not grid or not any(any(row) for row in grid):
        return None
    lang = report["language"]
    hours = [h for h in range(24) if any(row[h] for row in grid)]
    lo, hi = min(*hours, 8), max(*hours, 19)
    cols = list(range(lo, hi + 1))
    data = [[row[h] for h in cols] for row in grid]
    top = max(max(r) for r in data)
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    image = ax.imshow(data, cmap="Greys", aspect="auto", vmin=0, vmax=top)
    for y, row in enumerate(data):
        for x, value in enumerate(row):
            if value:
                ink = "white" if value > top * 0.55 else "black"
                ax.text(x, y, str(value), ha="center", va="center", fontsize=7, color=ink)
    ax.set_xticks(range(len(cols)), [f"{h:02d}" for h in cols], fontsize=8)
    ax.set_yticks(range(7), list(WEEKDAYS[lang if lang in WEEKDAYS else "ru"]), fontsize=8)
    ax.set_xlabel(label(lang, "hour_axis"))
    ax.set_ylabel(label(lang, "weekday"))
    bar = fig.colorbar(image, ax=ax, pad=0.01)
    bar.set_label(label(lang, "calls_axis"))
    bar.ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return _png(fig)


# The queue chart's bars, in the outcome colours and hatches of the call charts.
QUEUE_STYLE = {
    "answered": STYLE["answered"],
    "abandoned": STYLE["no_answer"],
    "timed_out": STYLE["busy"],
    "other": STYLE["failed"],
}
QUEUE_LABELS = {"answered": "answered", "abandoned": "abandoned", "timed_out": "timed_out",
                "other": "other_exits"}  # fmt: skip


def queue_chart(report: dict[str, Any]) -> bytes | None:
    """Queued calls per hour of day, stacked by how they left the queue, with the service
    level as a line on its own axis; None without a Queues section or queued calls."""
    rows = report.get("queues", {}).get("hourly", [])
    if not any(r["offered"] for r in rows):
        return None
    lang = report["language"]
    active = [r["hour"] for r in rows if r["offered"]]
    shown = rows[min(*active, 8) : max(*active, 19) + 1]
    fig = _figure(8.0, 3.2)
    ax = fig.add_subplot()
    xs = [r["hour"] for r in shown]
    _stacked(ax, xs, shown, lang, QUEUE_STYLE, QUEUE_LABELS)
    level = ax.twinx()
    sl = [r["service_level_pct"] for r in shown]
    level.plot(xs, [float("nan") if v is None else v for v in sl], color="#1f2933",
               marker="o", markersize=5, markerfacecolor="white", linewidth=1.2,
               label=label(lang, "service_level"))  # fmt: skip
    level.set_ylim(0, 125)
    level.set_yticks([0, 25, 50, 75, 100])
    level.set_ylabel(label(lang, "service_level"))
    level.spines["top"].set_visible(False)
    handles = ax.get_legend_handles_labels()
    lines = level.get_legend_handles_labels()
    ax.legend(handles[0] + lines[0], handles[1] + lines[1], loc="upper left", fontsize=8,
              ncols=5, frameon=False)  # fmt: skip
    ax.set_xticks(xs, [f"{h:02d}" for h in xs], fontsize=8)
    ax.set_xlabel(label(lang, "hour_axis"))
    fig.tight_layout()
    return _png(fig)


def render_charts(report: dict[str, Any]) -> dict[str, bytes]:
    """The charts this report has, by name, in the order they are shown."""
    charts = {
        "hourly": hourly_chart(report),
        "daily": daily_chart(report),
        "heatmap": heatmap_chart(report),
        "queues": queue_chart(report),
    }
    return {name: png for name, png in charts.items() if png is not None}


__all__ = [
    "QUEUE_STYLE",
    "STYLE",
    "daily_chart",
    "heatmap_chart",
    "hourly_chart",
    "queue_chart",
    "render_charts",
]
