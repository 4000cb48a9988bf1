"""The daily close with nobody typing a command: a `paymux worker`'s close loop, on a gateway whose clock
the test moves over two business days; a statement published late is tried again and found (the alert
at its deadline on the way); a worker killed mid-close, and another that finishes the day once."""
from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, text

from gateway.close import STEPS, Step, register
from gateway.close import runner
from gateway.logs import get_logger
from ledger.check import check_ledger
from gateway.service import Gateway
from tests.conftest import Running, checkout, start_gateway, wait_for
from tests.support.console import Browser, add_operator
from tests.support.operator import Operator, sandbox_settings, sync
from tests.support.unionpay import ShiftedClock

DAY1 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)          # 10:00 in Beijing, a Tuesday
CLOSE = {"lookback_days": 1, "retry_seconds": [1200], "lease_seconds": 60,
         "accounts": {"sandbox": {"publish_at": "09:00", "deadline": "10:00"}}}


class Worker:
    """`paymux worker`'s close loop in a thread of its own, on its own gateway (the same database, settings
    and clock as the web gateway's), until stopped (or killed by the step the test gives it)."""

    def __init__(self, settings: Any, clock: Any, name: str) -> None:
        self.settings, self.clock, self.name = settings, clock, name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            gateway = Gateway.build(self.settings, get_logger(role="worker"), self.clock)
            self.gateway = gateway
            try:
                await runner.loop(gateway, poll_seconds=0.02, who=self.name)
            finally:
                await gateway.aclose()
        try:
            self.loop.run_until_complete(main())
        except (asyncio.CancelledError, RuntimeError):
            pass

    def stop(self) -> None:
        for task in asyncio.all_tasks(self.loop):
            self.loop.call_soon_threadsafe(task.cancel)
        self.thread.join(10)


def payer(client: Any) -> Callable[[str, int], dict]:
    """Pay an order of `amount` through the sandbox's checkout, and sync it: a succeeded payment."""
    def pay(order: str, amount: int) -> dict:
        payment = client.create_payment(merchant_order_no=order, amount=amount)
        checkout(payment)
        sync(client, payment)
        return payment
    return pay


def _days(gw: Any) -> dict[str, Any]:
    with gw.gateway.db.transaction() as conn:
        return {str(r.business_date): r for r in conn.execute(select(runner.days))}


def _steps(gw: Any, day: str) -> dict[str, Any]:
    with gw.gateway.db.transaction() as conn:
        return {r.step: r for r in conn.execute(select(runner.steps).join(
            runner.days, runner.days.c.id == runner.steps.c.close_day_id).where(
            runner.days.c.business_date == datetime.fromisoformat(day).date()))}


def test_a_worker_closes_two_days_alone_retries_a_late_statement_and_a_killed_close_finishes_once(db_url, tmp_path) -> None:
    clock = ShiftedClock()
    clock.offset = DAY1 - datetime.now(UTC)
    settings = sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path)).with_changes(
        extra={"close": CLOSE, "calendar": {"CNY": "china"}})
    account = settings.channel_accounts[0]   # the sandbox publishes day D's statement at 10:30 of D + 1
    settings = settings.with_changes(channel_accounts=(replace(account, settings={
        **account.settings, "statement_delay_seconds": 10 * 3600 + 1800}),))
    app, server = start_gateway(settings, clock=clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        pay = payer(gw.client(gw.merchant()))
        pay("day1-a", 10000)
        pay("day1-b", 2500)
        worker = Worker(settings, clock, "w1")
        # The day before (the gateway's first): no statement, and nothing booked: closed at its deadline.
        before = str((DAY1 - timedelta(days=1)).date())
        assert wait_for(lambda: before in _days(gw) and _days(gw)[before].status == "done", timeout=60)
        assert _days(gw)[before].alerted_at is None and _steps(gw, before)["download"].counts["statement"] == "none"
        clock.offset += timedelta(days=1)                       # day 2, 10:00: day 1's statement due since 09:00
        pay("day2-a", 7000)
        day1 = str(DAY1.date())
        assert wait_for(lambda: _days(gw).get(day1) is not None and _days(gw)[day1].tries >= 1, timeout=60)
        late = _days(gw)[day1]
        assert late.status == "waiting" and "not generated yet" in late.message
        assert late.alerted_at is not None           # 10:00 is its deadline: the alert, and the metric
        assert runner.alerts(worker.gateway).labels("sandbox", "statement_missing")._value.get() == 1

        # Killed mid-close: the worker dies in the settle step, after reconciling day 1.
        original = next(s for s in STEPS if s.name == "settle")

        async def killed(ctx: Any) -> Any:
            raise asyncio.CancelledError
        register(Step("settle", original.kinds, killed))      # (replaced in place: the order stays)
        try:
            clock.offset += timedelta(minutes=35)               # 10:35: published at 10:30, tried at 10:20 + 20 min
            assert wait_for(lambda: _steps(gw, day1).get("settle") is not None, timeout=60)
            worker.thread.join(10)
            assert not worker.thread.is_alive()
        finally:
            register(original)
        assert _days(gw)[day1].status == "running" and _steps(gw, day1)["reconcile"].status == "done"

        worker = Worker(settings, clock, "w2")                # restarted: takes the day once its lease passes
        clock.offset += timedelta(minutes=2)
        assert wait_for(lambda: _days(gw)[day1].status == "done", timeout=60)
        clock.offset += timedelta(days=1)                       # day 3, 10:35: day 2 is published, closed
        day2 = str((DAY1 + timedelta(days=1)).date())
        assert wait_for(lambda: day2 in _days(gw) and _days(gw)[day2].status == "done", timeout=60)
        worker.stop()

        steps1 = _steps(gw, day1)
        assert [steps1[s].status for s in ("download", "reconcile", "settle", "statements", "report")] == ["done"] * 5
        assert steps1["download"].runs == 2 and steps1["settle"].runs == 2 and steps1["reconcile"].runs == 1
        assert steps1["reconcile"].counts["class_matched"] == 2
        with gw.gateway.db.transaction() as conn:
            settled = conn.execute(text("SELECT kind, business_date, amount FROM settlements ORDER BY business_date, "
                                        "kind")).all()
            statements = conn.execute(text("SELECT business_date, lines FROM merchant_statements "
                                           "ORDER BY business_date")).all()
            runs = conn.execute(select(func.count()).select_from(text("recon_runs"))).scalar_one()
        # T+1 by China's working days: day 1 settled on day 2 (once, though its close ran twice), day 2 on day 3.
        assert [(k, str(d)) for k, d, _ in settled] == [("channel", day1), ("merchant", day1), ("channel", day2),
                                                        ("merchant", day2)]
        assert [str(d) for d, _ in statements] == [day1, day2] and all(n > 0 for _, n in statements)
        assert runs == 2
        # The statements tie to the books: day 2 opens where day 1 closed, and day 1's settlement, booked on
        # day 2, is what the merchant has available at the end of day 2.
        with gw.gateway.db.transaction() as conn:
            first, second = [r.balances for r in conn.execute(text(
                "SELECT balances FROM merchant_statements ORDER BY business_date"))]
        first, second = [json.loads(b) if isinstance(b, str) else b for b in (first, second)]
        assert {k: {c: pair[1] for c, pair in v.items()} for k, v in first.items()} == \
            {k: {c: pair[0] for c, pair in v.items()} for k, v in second.items() if k in first}
        assert second["merchant_available"]["CNY"] == [0, next(a for k, d, a in settled if k == "merchant"
                                                               and str(d) == day1)]
        with gw.gateway.db.transaction() as conn:
            assert check_ledger(conn) == []

        # What an operator looks at: `paymux close-day status` and the console's page of the day.
        op = Operator(settings, tmp_path, extra='[close.accounts.sandbox]\npublish_at = "09:00"\ndeadline = "10:00"')
        shown = json.loads(op.run("close-day", "status", "--date", day1, "--json").stdout)["closes"]
        assert [(c["account"], c["status"], c["alerted_at"] is not None) for c in shown] == [("sandbox", "done", True)]
        assert [s["step"] for s in shown[0]["steps"]] == ["download", "reconcile", "settle", "statements", "report"]
        assert "settle      done     runs 2" in op.run("close-day", "status", "--date", day1).stdout
        assert "queued again" in op.run("close-day", "run", "--date", day1).stdout
        add_operator(gw, "vera", "viewer")
        browser = Browser(gw.url)
        browser.sign_in("vera")
        page = browser.http.get(f"/console/close?date={day1}")
        assert page.status_code == 200 and "statement_missing" not in page.text and "reconcile" in page.text


def test_a_day_with_an_open_difference_is_held_saying_why_and_its_statements_still_go_out(db_url, tmp_path) -> None:
    from tests.support.payouts import sandbox

    clock = ShiftedClock()
    clock.offset = DAY1 - datetime.now(UTC)
    settings = sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path)).with_changes(
        extra={"close": CLOSE, "calendar": {"CNY": "china"}})
    app, server = start_gateway(settings, clock=clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        client = gw.client(gw.merchant())
        payment = client.create_payment(merchant_order_no="short", amount=5000)
        checkout(payment)
        sync(client, payment)
        next(o for o in sandbox(gw).orders.values() if o.out_trade_no == payment["out_trade_no"]).amount = 4000
        clock.offset += timedelta(days=1, hours=1)               # the channel's statement says 40.00, not 50.00

        async def close() -> str:
            gateway = Gateway.build(settings, get_logger(), clock)
            try:
                schedule = runner.schedule_of(gateway)
                await gateway.db.tx(lambda conn: runner.request_day(conn, schedule.accounts[0], DAY1.date(),
                                                                    clock.now()))
                row = await gateway.db.tx(lambda conn: runner.claim(conn, clock.now(), "w", timedelta(minutes=1)))
                return await runner.run_day(gateway, schedule, row)
            finally:
                await gateway.aclose()

        assert asyncio.run(close()) == "held"
        day = _days(gw)[str(DAY1.date())]
        steps = _steps(gw, str(DAY1.date()))
    assert day.status == "held" and "sandbox up to 2026-03-10: open differences (1 amount_mismatch)" in day.message
    assert steps["reconcile"].counts["class_amount_mismatch"] == 1 and steps["settle"].status == "held"
    assert steps["statements"].status == "done" and steps["statements"].counts["merchants"] == 1
    with gw.gateway.db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM settlements")).scalar_one() == 0
