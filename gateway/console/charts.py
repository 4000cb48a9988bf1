"""The console's charts, drawn in the browser by Apache ECharts (gateway/console/static/, pinned,
with its licence): this module only builds each chart's option, a JSON document the page carries in
a data attribute and static/console.js hands to ECharts (axes, tooltips, a legend that scrolls, the
total in the subtitle). One chart per metric with one series per channel account, so a chart stays
one chart however many accounts there are."""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

Series = Mapping[str, Sequence[float]]


def _base(title: str, subtitle: str, labels: Sequence[str], unit: str, y_name: str, *,
          currency: str | None = None) -> dict[str, Any]:
    return {"unit": unit, "currency": currency, "animation": False,
            "title": {"text": title, "subtext": subtitle, "left": 8, "top": 4,
                      "textStyle": {"fontSize": 13}, "subtextStyle": {"fontSize": 11}},
            "tooltip": {"trigger": "axis", "confine": True},
            "legend": {"type": "scroll", "bottom": 0, "left": 8, "right": 8},
            "grid": {"left": 64, "right": 16, "top": 84, "bottom": 56},
            "xAxis": {"type": "category", "data": list(labels), "axisTick": {"alignWithLabel": True}},
            "yAxis": {"type": "value", "name": y_name, "nameGap": 12, "min": 0, "minInterval": 0 if unit == "percent" else 1,
                      **({"max": 100} if unit == "percent" else {})},
            "series": []}


def stacked(title: str, labels: Sequence[str], per_account: Series, *, unit: str, y_name: str,
            total: Callable[[float], str], empty: str, currency: str | None = None) -> dict[str, Any]:
    """A bar per bucket, stacked by account; the subtitle gives the total over the period."""
    whole = sum(sum(values) for values in per_account.values())
    option = _base(title, total(whole) if per_account and whole else empty, labels, unit, y_name,
                   currency=currency)
    option["series"] = [{"name": account, "type": "bar", "stack": "total", "data": list(values),
                         "emphasis": {"focus": "series"}} for account, values in per_account.items()]
    return option


def rates(title: str, labels: Sequence[str], per_account: Mapping[str, Sequence[tuple[int, int]]], *,
          overall: Callable[[float], str], empty: str, y_name: str) -> dict[str, Any]:
    """Success rate per bucket per account (a line each; a bucket without attempts is a gap), and the
    overall rate of the period in the subtitle."""
    tried = sum(t for points in per_account.values() for t, _ in points)
    won = sum(ok for points in per_account.values() for _, ok in points)
    option = _base(title, overall(won / tried * 100) if tried else empty, labels, "percent", y_name)
    option["series"] = [{"name": account, "type": "line", "connectNulls": False, "showSymbol": True, "showAllSymbol": True,
                         "symbolSize": 4,
                         "data": [round(ok / t * 100, 1) if t else None for t, ok in points]}
                        for account, points in per_account.items()]
    return option


def bars(title: str, labels: Sequence[str], named: Mapping[str, Sequence[float]], *, unit: str, y_name: str,
         subtitle: str, currency: str | None = None, line: str | None = None) -> dict[str, Any]:
    """Side-by-side bars, one series per name; `line` names a series drawn as a line instead."""
    option = _base(title, subtitle, labels, unit, y_name, currency=currency)
    if unit == "money":
        option["yAxis"]["min"] = None     # revenue can be negative
    option["series"] = [{"name": name, "type": "line" if name == line else "bar", "data": list(values)}
                        for name, values in named.items()]
    return option
