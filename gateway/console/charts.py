"""Pictures drawn on the server as SVG: nothing to load, nothing from outside. Every label is
escaped; the markup is returned as Markup for the templates."""
from __future__ import annotations

from html import escape
from typing import Sequence

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 160, 28


def bars(title: str, points: Sequence[tuple[str, float]], *, unit: str = "", color: str = "#3b6ea5",
         maximum: float | None = None) -> Markup:
    """A bar per point (label, value), labelled at both ends; hover shows each bar's value."""
    top = maximum if maximum is not None else max([v for _, v in points] + [1])
    n = max(len(points), 1)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    width = inner_w / n
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="{PAD}" y="16" class="title">{escape(title)}</text>',
             f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>',
             f'<text x="{WIDTH - PAD}" y="16" text-anchor="end" class="note">max {_fmt(top)}{escape(unit)}</text>']
    for i, (label, value) in enumerate(points):
        h = 0 if top <= 0 else inner_h * max(value, 0) / top
        x, y = PAD + i * width, HEIGHT - PAD - h
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(width - 2, 1):.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{escape(label)}: {_fmt(value)}{escape(unit)}</title></rect>')
    if points:
        parts.append(f'<text x="{PAD}" y="{HEIGHT - 8}" class="note">{escape(points[0][0])}</text>')
        parts.append(f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end" class="note">'
                     f'{escape(points[-1][0])}</text>')
    else:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="note">no data</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def success_rate(title: str, points: Sequence[tuple[str, int, int]]) -> Markup:
    """Share of attempts that succeeded per bucket (buckets without attempts are left empty)."""
    return bars(title, [(label, ok / total * 100 if total else 0) for label, total, ok in points], unit="%",
                color="#3a8f5c", maximum=100)


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"
