"""Interleaved repeated windows: the benches time a side and its baseline in alternating windows
(side, baseline, side, baseline, ...) so that drift on the machine (other load, checkpoints, the
table growing) falls on both, and report min/median/max of each side and of the per-pair ratio."""
from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path


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


# ---- where the CPU goes (Linux: /proc) ----

# every PostgreSQL process on the machine, by command name (its backends, and its own background work)
POSTGRES = {"postgresql server": "postgres"}
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, user + system CPU seconds of all its threads) of a live process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2:].split()
    return name, int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _all() -> dict[int, tuple[str, int, float]]:
    found = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def cpu_by_group(roots: dict[str, list[int]], by_name: dict[str, str]) -> dict[str, float]:
    """CPU seconds used so far by each group: `roots` groups processes with all their descendants,
    `by_name` groups every process whose command name is the given one (PostgreSQL's backends, say).
    Empty where /proc is not there. Processes that ended are not counted: sample before they stop."""
    procs = _all()
    totals = {group: 0.0 for group in [*roots, *by_name]}
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    for group, pids in roots.items():
        todo, seen = list(pids), set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in procs:
                continue
            seen.add(pid)
            totals[group] += procs[pid][2]
            todo.extend(children.get(pid, ()))
    for group, name in by_name.items():
        totals[group] += sum(cpu for command, _, cpu in procs.values() if command == name)
    return totals


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {group: after[group] - before.get(group, 0.0) for group in after}
