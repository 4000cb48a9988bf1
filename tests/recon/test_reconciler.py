"""The Reconciler works from the collaborators it is given (no gateway needed), and a run that could
not get its statement is recorded in the statement's currency, not an assumed one."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

import structlog

from gateway.channel import Capability, StatementUnavailable
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.reconciliation.run import Reconciler
from ledger.booking import Booker
from ledger.chart import load_chart
from ledger.core import Ledger
from ledger.days import BusinessDay


class HongKongChannel:
    statement_currency = "HKD"

    async def download_statement(self, business_date: date) -> bytes:
        raise StatementUnavailable(f"no bill for {business_date.isoformat()} yet")


class OneAccount:
    id = "hk"
    channel = HongKongChannel()

    def account(self, account_id: str) -> "OneAccount":
        assert account_id == self.id
        return self

    def require(self, account: "OneAccount", capability: Capability) -> None:
        assert capability == Capability.STATEMENT


class NoRate:
    async def wait(self, account: str) -> None:
        return None


def test_a_failed_download_fails_the_run_in_the_statements_currency(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        reconciler = Reconciler(
            settings=Settings(database_url=db_url, statement_dir=str(tmp_path)), db=db, host=OneAccount(),
            business_day=BusinessDay.of("Asia/Hong_Kong", 0), booker=Booker(Ledger(load_chart())), rate=NoRate(),
            payments=None, refunds=None, payouts=None, clock=Clock(), log=structlog.get_logger())
        report = asyncio.run(reconciler.reconcile("hk", date(2026, 11, 20)))
        assert (report["status"], report["currency"], report["channel_account"], report["business_date"]) == \
            ("failed", "HKD", "hk", "2026-11-20")
        assert report["message"] == "statement download failed: no bill for 2026-11-20 yet"
    finally:
        db.dispose()
