"""The funds step of the daily close: a reserve account's bank files dropped in its inbox are imported and
funds-reconciled by the worker, with nobody typing a command; a file that comes after its deadline is
tried for, alerted on, then found; a worker killed in the middle of the step leaves a day the next
worker finishes once (the import is not made twice)."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from gateway.close import STEPS, Step, register
from gateway.close import runner
from ledger.check import check_ledger
from tests.close.test_close import Worker, payer
from tests.conftest import Running, start_gateway, wait_for
from tests.funds.bankfiles import Movement, camt053, mt940
from tests.support.console import Browser, add_operator
from tests.support.operator import Operator, sandbox_settings
from tests.support.unionpay import ShiftedClock

MAR10 = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)          # 10:00 in Beijing, a Tuesday
D9, D10, D11, D12 = (date(2026, 3, d) for d in (9, 10, 11, 12))


def close_settings(db_url: str, tmp_path: Path, inbox: Path) -> Any:
    close = {"lookback_days": 1, "retry_seconds": [1200], "lease_seconds": 60,
             "accounts": {"sandbox": {"publish_at": "09:00", "deadline": "10:00"}},
             "reserves": {"RESERVE": {"publish_at": "10:00", "deadline": "12:00"}}}
    reserve = {"id": "RESERVE", "channel_accounts": {"sandbox": "SANDBOX-SETTLE"}, "inbox": str(inbox),
               "inbox_files": "bank-%Y%m%d.*"}
    return sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path / "kept")).with_changes(
        extra={"close": close, "calendar": {"CNY": "china"}, "reserve_accounts": [reserve]})


def reserve_day(gw: Any, day: date) -> Any:
    return {(r.account, r.business_date): r for r in _rows(gw)}.get(("RESERVE", day))


def _rows(gw: Any) -> list[Any]:
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(runner.days)).all()


def funds_step(gw: Any, day: date) -> Any:
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(runner.steps).join(runner.days, runner.days.c.id == runner.steps.c.close_day_id)
                            .where(runner.days.c.account == "RESERVE", runner.days.c.business_date == day,
                                   runner.steps.c.step == "funds")).first()


def channel_net(gw: Any, day: date) -> int:
    with gw.gateway.db.transaction() as conn:
        return conn.execute(text("SELECT amount FROM settlements WHERE kind = 'channel' AND business_date = :d"),
                            {"d": day}).scalar_one()


def test_a_worker_reconciles_the_reserve_accounts_days_from_its_inbox_alone(db_url, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = ShiftedClock()
    clock.offset = MAR10 - datetime.now(UTC)
    settings = close_settings(db_url, tmp_path, inbox)
    app, server = start_gateway(settings, clock=clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        pay = payer(gw.client(gw.merchant()))

        def done(day: date) -> bool:
            row = reserve_day(gw, day)
            return row is not None and row.status == "done"

        pay("mar10", 10000)
        worker = Worker(settings, clock, "w1")
        # Mar 9 (the gateway's first day): no file yet at 10:00, before its deadline: waiting.
        assert wait_for(lambda: reserve_day(gw, D9) is not None and reserve_day(gw, D9).tries >= 1, timeout=60)
        assert reserve_day(gw, D9).status == "waiting" and "bank-20260309.*" in reserve_day(gw, D9).message
        # Mar 10's file is in the inbox when it is due: only the bank's interest moved that day.
        (inbox / "bank-20260310.xml").write_bytes(camt053([Movement(D10, 1234, "结息", "B1")], D10))
        clock.offset += timedelta(days=1, minutes=30)            # Mar 11, 10:30
        assert wait_for(lambda: done(D10), timeout=60)
        # Mar 9 had no file at its deadline, and nothing was expected through the bank that day.
        assert done(D9) and funds_step(gw, D9).counts == {"statement": "none"} and reserve_day(gw, D9).alerted_at is None
        assert funds_step(gw, D10).counts["class_received_not_expected"] == 1
        pay("mar11", 7000)

        clock.offset += timedelta(days=1)                        # Mar 12, 10:30: Mar 11's file is not there
        assert wait_for(lambda: reserve_day(gw, D11) is not None and reserve_day(gw, D11).tries >= 1, timeout=60)
        assert reserve_day(gw, D11).status == "waiting" and reserve_day(gw, D11).alerted_at is None
        clock.offset += timedelta(minutes=100)                   # 12:10, past its deadline: the alert
        assert wait_for(lambda: reserve_day(gw, D11).alerted_at is not None, timeout=60)
        assert runner.alerts(worker.gateway).labels("RESERVE", "statement_missing")._value.get() == 1
        # The file comes late, with Mar 10's settlement in it (T+1: paid on Mar 11): found at the next try.
        net10 = channel_net(gw, D10)
        (inbox / "bank-20260311.sta").write_bytes(mt940([Movement(D11, net10, "SANDBOX-SETTLE 20260310", "B2")], D11))
        clock.offset += timedelta(minutes=21)
        assert wait_for(lambda: done(D11), timeout=60)
        assert funds_step(gw, D11).counts["class_matched"] == 1 and funds_step(gw, D11).counts["open"] == 0
        pay("mar12", 500)

        # Mar 12's file, and a worker killed in the funds step, once the file is imported.
        original = next(s for s in STEPS if s.name == "funds")

        async def killed(ctx: Any) -> Any:
            await original.run(ctx)
            raise asyncio.CancelledError
        register(Step("funds", original.kinds, killed))
        try:
            (inbox / "bank-20260312.xml").write_bytes(camt053([Movement(D12, channel_net(gw, D11),
                                                                        "SANDBOX-SETTLE 20260311", "B3")], D12))
            clock.offset += timedelta(days=1, minutes=-101)       # Mar 13, 10:30
            assert wait_for(lambda: funds_step(gw, D12) is not None, timeout=60)
            worker.thread.join(10)
            assert not worker.thread.is_alive()
        finally:
            register(original)
        assert reserve_day(gw, D12).status == "running" and funds_step(gw, D12).status == "running"
        worker = Worker(settings, clock, "w2")                  # restarted: the day is taken once its lease passed
        clock.offset += timedelta(minutes=2)
        assert wait_for(lambda: done(D12), timeout=60)
        worker.stop()

        again = funds_step(gw, D12)
        assert again.runs == 2 and again.counts["imported"] == 0 and again.counts["class_matched"] == 1
        with gw.gateway.db.transaction() as conn:
            kept = conn.execute(text("SELECT statement_date, status FROM bank_statements ORDER BY statement_date")).all()
            bank_runs = conn.execute(text("SELECT count(*) FROM recon_runs WHERE channel_account = 'RESERVE'")).scalar()
            assert check_ledger(conn) == []
        assert [(str(d), s) for d, s in kept] == [("2026-03-10", "current"), ("2026-03-11", "current"),
                                                  ("2026-03-12", "current")]
        assert bank_runs == 3                                     # one per file: the killed import was not made again
        assert [reserve_day(gw, d).alerted_at is not None for d in (D9, D10, D11, D12)] == [False, False, True, False]

        # What an operator looks at: `paymux close status` and the console's page of the day.
        op = Operator(settings, tmp_path)
        shown = {c["account"]: c for c in json.loads(op.run("close", "status", "--date", str(D11),
                                                            "--json").stdout)["closes"]}
        assert [s["step"] for s in shown["RESERVE"]["steps"]] == ["funds", "statements", "report"]
        assert shown["RESERVE"]["alerted_at"] is not None and shown["RESERVE"]["steps"][0]["runs"] == 3
        assert shown["RESERVE"]["steps"][2]["counts"]["received"] == net10
        assert "funds       done" in op.run("close-day", "status", "--date", str(D11)).stdout
        add_operator(gw, "vera", "viewer")
        browser = Browser(gw.url)
        browser.sign_in("vera")
        page = browser.http.get(f"/console/close?date={D11}")
        assert page.status_code == 200 and "RESERVE" in page.text and "funds" in page.text
