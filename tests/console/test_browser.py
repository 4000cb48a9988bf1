"""The console in headless Chromium (Debian's chromium, driven by Playwright): an operator signs in,
finds a payment and follows its story, proposes the resolution of a reconciliation difference, and
another operator (an approver) approves it; the adjustment is then in the payment's ledger entries.
Then every page, in English and in Simplified Chinese (chosen on the operator's own form), in a
1280 px window: nothing wider than the window, the charts drawn by ECharts. Screenshots of each page in
each language are saved under test-artifacts/console/ (and as docs/console-*.png with
PAYMUX_SCREENSHOTS_TO_DOCS=1, to refresh the operator's guide)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.operator import edit_sandbox, paid_day, today

SHOTS = REPO / "test-artifacts" / "console"
DOCS = REPO / "docs"
IN_THE_GUIDE = ("overview", "payment", "channels", "recon-run", "audit")     # docs/console.md shows these
WIDTH = 1280
PAGES = ("", "payments", "payments/{payment}", "refunds", "exceptions", "recon", "recon/runs/{run}", "merchants",
         "channels", "events", "audit", "password")
PASSWORD = "correct horse battery"


def chromium() -> str:
    found = os.environ.get("PAYMUX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("PAYMUX_REQUIRE_BROWSER"):
            pytest.fail("PAYMUX_REQUIRE_BROWSER is set but no chromium was found")
        pytest.skip("no chromium on this machine (.ci/run installs Debian's chromium package)")
    return found


@pytest.fixture
def db_url(request, tmp_path: Path, sqlite_url: str) -> str:  # noqa: ANN001
    """One run: on PostgreSQL where the tests have it (as CI does), else on SQLite."""
    if os.environ.get("PAYMUX_TEST_DATABASE_URL"):
        from tests.conftest import _truncate_pg

        url = request.getfixturevalue("pg_database")
        _truncate_pg(url)
        return url
    return sqlite_url


def test_from_a_payment_to_a_booked_resolution_in_the_browser(gateway_factory, db_url, tmp_path) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency")
    executable = chromium()
    day = paid_day(gateway_factory, db_url, tmp_path, 5000, 2000)
    gw, op, [short, fine] = day.gw, day.op, day.payments
    wrong = tmp_path / "wrong.statement"        # the channel says it took 40.00 of the first payment's 50.00
    wrong.write_text(edit_sandbox(day.statement.read_text(), amount={short["out_trade_no"]: 4000}))
    assert op.reconcile("sandbox", today(), wrong)["counts"]["amount_mismatch"] == 1
    for name, role in (("alice", "operator"), ("bob", "approver")):
        op.run("operator", "create", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True,
                                    args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900}, locale="en-US")

            def sign_in(name: str) -> None:
                page.goto(f"{gw.url}/console/")
                assert "/console/login" in page.url          # no session: sent to sign in
                page.fill("input[name=name]", name)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{gw.url}/console/")

            sign_in("alice")
            assert page.locator("h1").inner_text() == "Overview"
            page.screenshot(path=str(SHOTS / "overview.png"), full_page=True)

            # "The merchant says order o0 was charged but not delivered": find it, read its story.
            page.click("text=Payments")
            page.fill("input[name=q]", "o0")
            page.click("button:has-text('Search')")
            page.click(f"a:has-text('{short['id']}')")
            page.wait_for_url(f"{gw.url}/console/payments/{short['id']}")
            story = page.locator("main").inner_text()
            assert "succeeded" in story and "payment.succeeded" in story and "channel_clearing" in story
            assert "amount_mismatch" in story                     # reconciliation found a difference
            page.screenshot(path=str(SHOTS / "payment.png"), full_page=True)

            # The maker: propose an adjustment of the difference.
            page.click("main a[href^='/console/recon/runs/']")
            row = page.locator("tr", has_text="amount_mismatch")
            row.locator("select[name=action]").select_option("adjust")
            row.locator("input[name=reason]").fill("The bank shows 40.00 received; the channel kept 10.00")
            row.locator("button:has-text('Propose')").click()
            assert "proposed by alice" in page.locator("main").inner_text()
            assert page.locator("button:has-text('Approve')").count() == 0     # not for the maker
            page.screenshot(path=str(SHOTS / "recon-proposed.png"), full_page=True)
            run_url = page.url.split("?")[0]
            page.click("button:has-text('Sign out')")

            # The checker: someone else approves; the adjustment is booked.
            sign_in("bob")
            page.goto(run_url)
            page.click("button:has-text('Approve')")
            assert "Done: approved" in page.locator("main").inner_text()
            assert "adjust alice + bob" in page.locator("tr", has_text="amount_mismatch").inner_text()
            page.screenshot(path=str(SHOTS / "recon-approved.png"), full_page=True)
            page.goto(f"{gw.url}/console/payments/{short['id']}")
            assert "recon.adjust_loss" in page.locator("main").inner_text()
            page.goto(f"{gw.url}/console/audit")
            audit = page.locator("main").inner_text()
            assert "recon.propose" in audit and "recon.approve" in audit and "bob" in audit
            # Every page in both languages: bob picks Chinese on his own form, then English again.
            run_id = run_url.rsplit("/", 1)[1]
            for locale, overview in (("zh_Hans", "总览"), ("en", "Overview")):
                page.goto(f"{gw.url}/console/password")
                page.locator("main select[name=locale]").select_option(locale)
                page.locator("main button:has-text('设置'), main button:has-text('Set')").first.click()
                page.goto(f"{gw.url}/console/")
                assert page.locator("h1").inner_text() == overview
                assert page.locator("html").get_attribute("lang") == {"zh_Hans": "zh-Hans", "en": "en"}[locale]
                page.wait_for_selector("div.chart svg")                  # ECharts drew the charts
                assert page.locator("div.chart svg").count() == page.locator("div.chart").count() >= 4
                for path in PAGES:
                    page.goto(f"{gw.url}/console/" + path.format(payment=short["id"], run=run_id))
                    assert page.locator("h1").count() == 1, path
                    wide = page.evaluate("Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)")
                    assert wide <= WIDTH, f"/console/{path} is {wide} px wide in {locale}"
                    name = {"": "overview", "payments/{payment}": "payment", "recon/runs/{run}": "recon-run"}.get(
                        path, path)
                    shot = SHOTS / f"{name}-{locale}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    if os.environ.get("PAYMUX_SCREENSHOTS_TO_DOCS") and name in IN_THE_GUIDE:
                        shutil.copyfile(shot, DOCS / f"console-{name}-{locale}.png")
            zh = browser.new_page(viewport={"width": WIDTH, "height": 900}, locale="zh-CN")
            zh.goto(f"{gw.url}/console/login")                           # no operator yet: the browser's language
            assert zh.locator("h1").inner_text() == "paymux 控制台"
        finally:
            browser.close()
    balances = {line.split()[1]: int(line.split()[-1].replace(",", ""))
                for line in op.run("ledger", "balances", "--owner", "platform").stdout.splitlines()[1:]}
    assert balances["suspense"] == 1000                        # the 10.00 the channel kept, until explained
    assert op.run("ledger", "check").returncode == 0
