"""Charts drawn as inline SVG by the server: no script, no image request, readable by a screen
reader (the chart has a name, each bar a ``<title>`` with its numbers) and beside a table of
the same figures. Colours are CSS classes (console.css), the same per outcome as the report's
PNG charts (``pbxgate.cdr.report.charts.STYLE``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT = 720, 200
LEFT, BOTTOM, TOP = 28, 20, 8


def stacked_bars(
    rows: Sequence[Mapping[str, Any]],
    series: Sequence[tuple[str, str]],
    *,
    name: str,
    x_label: Callable[[Mapping[str, Any]], str],
    every: int = 1,
) -> Markup:
    """One bar per row, stacked from ``series`` (key, words); ``x_label`` names a row, shown
    under every ``every``-th bar and in each bar's title."""
    totals = [sum(int(row.get(key) or 0) for key, _ in series) for row in rows]
    top = max([*totals, 1])
    plot_w, plot_h = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(rows), 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(name)}"'
        f' viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{top}</text>',
        f'<line class="grid" x1="{LEFT}" y1="{TOP}" x2="{WIDTH}" y2="{TOP}"/>',
    ]
    for index, (row, total) in enumerate(zip(rows, totals, strict=True)):
        x = LEFT + index * step
        label = escape(x_label(row))
        detail = ", ".join(f"{escape(words)} {int(row.get(key) or 0)}" for key, words in series)
        parts.append(f"<g><title>{label} — {total}: {detail}</title>")
        y = float(TOP + plot_h)
        for key, _ in series:
            height = int(row.get(key) or 0) / top * plot_h
            if height:
                y -= height
                parts.append(
                    f'<rect class="s-{escape(key)}" x="{x + step * 0.1:.1f}" y="{y:.1f}"'
                    f' width="{step * 0.8:.1f}" height="{height:.1f}"/>'
                )
        parts.append("</g>")
        if index % every == 0:
            parts.append(
                f'<text class="tick" x="{x + step / 2:.1f}" y="{HEIGHT - 6}"'
                f' text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch s-{escape(key)}"></span>{escape(words)}</li>'
        for key, words in series
    )
    chart = '<div class="scroll chart-box">' + "".join(parts) + "</div>"
    return Markup(chart + f'<ul class="legend">{legend}</ul>')  # noqa: S704 - escaped above


__all__ = ["stacked_bars"]
