"""Charts drawn as inline SVG on the server: no script, no font or file to fetch.

Two kinds, enough for the dashboard:

- ``stacked_columns``: one column per day, its series stacked (sent on failed...);
- ``bars``: one horizontal bar per item (a reason, a platform, a group, a grid).

Every chart is an ``<svg class="chart">`` that scales to its container
(``viewBox``, width 100 %), carries ``data-chart`` and ``data-series`` (how many
series it draws), and puts each series in a ``<g class="series">`` whose
shapes carry ``data-value``: the numbers a test can read back. Every label is
escaped: group names and platform reasons are outside text. A chart with
nothing to draw says so (``暂无数据``) and draws no series.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from html import escape

WIDTH = 360
FONT = 11
LABEL_WIDTH = 140         # bar labels wider than this are cut (the full text is in <title>)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str
    values: list[int]


def nice_max(value: float) -> int:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = 1
    while power * 10 <= value:
        power *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return int(step * power)
    return 10 * power  # not reached


def short_number(n: float) -> str:
    """``1234`` -> ``1,234``; ``362000`` -> ``36.2万``; ``1.2e8`` -> ``1.2亿``."""
    if abs(n) >= 100_000_000:
        return f"{n / 100_000_000:.1f}亿".replace(".0亿", "亿")
    if abs(n) >= 100_000:
        return f"{n / 10_000:.1f}万".replace(".0万", "万")
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"


def text_width(text: str) -> float:
    """Roughly how wide ``text`` is drawn: wide (CJK) characters take a full em, others 0.55."""

    return sum(FONT if unicodedata.east_asian_width(c) in "WF" else FONT * 0.55 for c in text)


def fit(text: str, width: float = LABEL_WIDTH) -> str:
    """``text``, cut with an ellipsis to fit ``width``."""
    if text_width(text) <= width:
        return text
    while text and text_width(text + "…") > width:
        text = text[:-1]
    return text + "…"


def _open(chart: str, title: str, height: int, series: int) -> list[str]:
    return [f'<svg class="chart" data-chart="{escape(chart)}" data-series="{series}" '
            f'viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg" font-size="{FONT}">',
            f"<title>{escape(title)}</title>"]


def _empty(chart: str, title: str) -> str:
    parts = _open(chart, title, 60, 0)
    parts.append(f'<text class="empty" x="{WIDTH / 2}" y="34" text-anchor="middle" '
                 f'fill="#888">暂无数据</text></svg>')
    return "".join(parts)


def _legend(series: list[Series], y: float) -> list[str]:
    out, x = ['<g class="legend">'], 0.0
    for s in series:
        out.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{s.color}"/>'
                   f'<text x="{x + 14:.1f}" y="{y:.1f}">{escape(s.label)}</text>')
        x += 14 + text_width(s.label) + 16
    out.append("</g>")
    return out


def stacked_columns(chart: str, title: str, labels: list[str], series: list[Series]) -> str:
    """Columns, one per label, each stacking the series' values bottom-up."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    if not labels or not any(totals):
        return _empty(chart, title)
    top, left, plot_h, axis_h = 22, 40, 150, 18
    height = top + plot_h + axis_h
    ymax = nice_max(max(totals))
    step = (WIDTH - left) / len(labels)
    bar = max(step * 0.8, 0.6)
    parts = _open(chart, title, height, len(series))
    parts += _legend(series, 12)
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#ddd" stroke-width="0.5"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#666">'
                     f"{short_number(ymax * frac)}</text>")
    base = [0] * len(labels)
    for s in series:
        parts.append(f'<g class="series" data-series="{escape(s.key)}" fill="{s.color}">')
        for i, value in enumerate(s.values):
            if value:
                h = plot_h * value / ymax
                y = top + plot_h - plot_h * base[i] / ymax - h
                parts.append(f'<rect x="{left + i * step + (step - bar) / 2:.2f}" y="{y:.2f}" '
                             f'width="{bar:.2f}" height="{h:.2f}" data-label="{escape(labels[i])}" '
                             f'data-value="{value}"><title>{escape(labels[i])} {escape(s.label)} '
                             f"{value}</title></rect>")
                base[i] += value
        parts.append("</g>")
    ticks = sorted({0, len(labels) // 2, len(labels) - 1})
    for i in ticks:
        x = left + i * step + step / 2
        anchor = "start" if i == 0 and len(labels) > 1 else ("end" if i == len(labels) - 1 else "middle")
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 4}" text-anchor="{anchor}" '
                     f'fill="#666">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(chart: str, title: str, items: list[tuple[str, int]], color: str,
         series_key: str = "count", colors: list[str] | None = None) -> str:
    """Horizontal bars, one per ``(label, value)`` item, longest first as given."""
    items = [(label, value) for label, value in items if value]
    if not items:
        return _empty(chart, title)
    row, label_w, value_w = 22, 150, 52
    height = row * len(items) + 4
    vmax = max(v for _, v in items)
    span = WIDTH - label_w - value_w
    parts = _open(chart, title, height, 1)
    parts.append(f'<g class="series" data-series="{escape(series_key)}" fill="{color}">')
    for i, (label, value) in enumerate(items):
        y = 2 + i * row
        w = max(span * value / vmax, 1.0)
        shown = fit(label)
        fill = f' fill="{colors[i]}"' if colors else ""
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" fill="#333">'
                     f"<title>{escape(label)}</title>{escape(shown)}</text>"
                     f'<rect x="{label_w}" y="{y + 3}" width="{w:.2f}" height="{row - 7}"{fill} '
                     f'data-label="{escape(label)}" data-value="{value}"><title>{escape(label)} '
                     f"{value}</title></rect>"
                     f'<text x="{label_w + w + 4:.2f}" y="{y + 14}" fill="#333">'
                     f"{short_number(value)}</text>")
    parts.append("</g></svg>")
    return "".join(parts)
