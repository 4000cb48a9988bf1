"""The conformance kit as a pytest plugin (entry point `pytest11`, installed with `pip install 'paymux[kit]'`).

    # tests/test_kit.py in your plugin's package
    from gateway.testing.conformance import ChannelConformance, ChannelHarness

    class MyHarness(ChannelHarness): ...
    class TestMyChannel(ChannelConformance):
        harness = MyHarness

Every check of gateway/testing/conformance.py is asked for by a capability the plugin declares.
A check whose capability the plugin does not declare is *not asked* (skipped, and said so); a check
the plugin's capabilities call for but the harness cannot drive (a hook left at its default:
no `drop_callbacks`, no `unreachable_settings`, no `callback`) is *not covered*, by name. The run
ends with a report of both and why; `--kit-strict` makes each "not covered" a failure.

This module is loaded by pytest in every run where paymux is installed: it imports nothing of paymux
(the suite, gateway/testing/conformance.py, imports it), and prints its report only when conformance
checks ran.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

MARKER = "paymux_kit"
NOT_ASKED, NOT_COVERED = "[kit] not asked", "[kit] not covered"
_REPORT = pytest.StashKey["KitReport"]()
_STRICT = pytest.StashKey[bool]()


def not_asked(check: str, why: str) -> None:
    """Skip a check the plugin's declarations do not call for."""
    pytest.skip(f"{NOT_ASKED}: {check}: {why}")


def not_covered(check: str, why: str) -> None:
    """Skip (or, under --kit-strict, fail) a check the plugin calls for and the harness cannot drive."""
    pytest.skip(f"{NOT_COVERED}: {check}: {why}")


def partly_covered(node: pytest.Item, check: str, why: str) -> None:
    """A check ran, but one part of it could not be driven (e.g. the harness builds no stale callback)."""
    node.user_properties.append((NOT_COVERED, f"{check}: {why}"))


def partly_not_asked(node: pytest.Item, check: str, why: str) -> None:
    """A check ran without one part the plugin's declarations do not call for (a refund it never declared)."""
    node.user_properties.append((NOT_ASKED, f"{check}: {why}"))


@dataclass
class KitReport:
    ran: int = 0
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    asked_not: dict[str, set[str]] = field(default_factory=dict)      # plugin check -> whys
    covered_not: dict[str, set[str]] = field(default_factory=dict)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("paymux-kit", "paymux conformance kit")
    group.addoption("--kit-strict", action="store_true", default=False,
                    help="fail each conformance check the plugin's capabilities call for but its harness "
                         "cannot drive (reported as 'not covered' otherwise)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}: a check of the paymux channel conformance kit")
    config.stash[_REPORT] = KitReport()
    config.stash[_STRICT] = bool(config.getoption("kit_strict", False))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if not item.config.stash.get(_STRICT, False):
        return
    reason = str(report.longrepr[2]) if report.skipped and isinstance(report.longrepr, tuple) else ""
    if NOT_COVERED in reason:
        report.outcome = "failed"
        report.longrepr = f"--kit-strict: {reason[reason.index(NOT_COVERED):]}"
    elif call.when == "call" and report.passed:
        partial = [why for key, why in item.user_properties if key == NOT_COVERED]
        if partial:
            report.outcome = "failed"
            report.longrepr = "--kit-strict: " + "; ".join(f"{NOT_COVERED}: {why}" for why in partial)


def _plugin(report: pytest.TestReport) -> str:
    """The test class (one per harness) the report belongs to."""
    parts = report.nodeid.split("::")
    return parts[-2] if len(parts) >= 3 else parts[0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if MARKER not in report.keywords:
        return
    config = _CONFIG.get("config")
    if config is None:
        return
    kit = config.stash[_REPORT]
    where = _plugin(report)
    check = report.nodeid.split("::")[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        kit.ran += 1
        kit.passed += report.passed
        kit.failed += report.failed
        kit.skipped += report.skipped
    texts: list[str] = []
    if report.skipped and isinstance(report.longrepr, tuple):
        texts.append(str(report.longrepr[2]))
    elif report.failed and isinstance(report.longrepr, str) and "--kit-strict" in report.longrepr:
        texts.extend(report.longrepr.removeprefix("--kit-strict: ").split("; "))
    if report.when == "call":
        texts.extend(f"{key}: {why}" for key, why in report.user_properties if key in (NOT_ASKED, NOT_COVERED))
    for text in texts:
        for prefix, into in ((NOT_ASKED, kit.asked_not), (NOT_COVERED, kit.covered_not)):
            if prefix in text:
                why = text[text.index(prefix) + len(prefix) + 2:].removeprefix(f"{check.split('[')[0]}: ")
                into.setdefault(f"{where}: {check}", set()).add(why)


_CONFIG: dict[str, pytest.Config] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _CONFIG["config"] = session.config


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    kit = config.stash.get(_REPORT, None)
    if kit is None or not kit.ran:
        return
    write = terminalreporter.write_line
    terminalreporter.section("paymux conformance kit: not asked / not covered")
    write(f"{kit.ran} checks: {kit.passed} passed, {kit.failed} failed, {kit.skipped} skipped")
    if kit.asked_not:
        write("not asked (the plugin does not declare what the check needs, or the harness says its channel "
              "has no such thing):")
        for check, whys in sorted(kit.asked_not.items()):
            write(f"  {check}: {'; '.join(sorted(whys))}")
    else:
        write("not asked: none")
    if kit.covered_not:
        strict = config.stash.get(_STRICT, False)
        write("not covered (the plugin declares it, the harness cannot drive it)"
              + (", failed under --kit-strict:" if strict else "; --kit-strict fails these:"))
        for check, whys in sorted(kit.covered_not.items()):
            write(f"  {check}: {'; '.join(sorted(whys))}")
    else:
        write("not covered: none, every check the plugin's capabilities call for was driven")
