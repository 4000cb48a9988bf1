"""Interleaved repeated windows: the benches time a side and its baseline in alternating windows
(side, baseline, side, baseline, ...) so that drift on the machine (other load, checkpoints, the
table growing) falls on both, and report min/median/max of each side and of the per-pair ratio."""
from __future__ import annotations

import statistics
from collections.abc import Callable


def interleave(pairs: int, side: Callable[[int], float], baseline: Callable[[int], float]) -> tuple[list[float],
                                                                                                    list[float]]:
    """Call side(k) then baseline(k) for k in range(pairs); each returns a rate. Returns both lists."""
    a, b = [], []
    for k in range(pairs):
        a.append(side(k))
        b.append(baseline(k))
    return a, b


def mmm(values: list[float], fmt: str = "{:.0f}") -> str:
    """min/median/max of values, formatted."""
    return "/".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def report(a: list[float], b: list[float], fmt: str = "{:.0f}", ratio_fmt: str = "{:.2f}") -> tuple[str, str, str]:
    """min/median/max of a, of b, and of the per-pair ratio a/b."""
    ratios = [x / y for x, y in zip(a, b) if y]
    return mmm(a, fmt), mmm(b, fmt), mmm(ratios, ratio_fmt) if ratios else "n/a"
