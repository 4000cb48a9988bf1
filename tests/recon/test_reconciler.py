"""The Reconciler works from the collaborators it is given (no gateway needed), and a run that could
not get its statement is recorded in the statement's currency, not an assumed one."""
from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path

from gateway.channel import StatementUnavailable
from gateway.db import Database
from tests.support.reconciler import OneAccount, one_account_reconciler


class HongKongChannel:
    statement_currency = "HKD"

    async def download_statement(self, business_date: date) -> bytes:
        raise StatementUnavailable(f"no bill for {business_date.isoformat()} yet")


def test_a_failed_download_fails_the_run_in_the_statements_currency(db_url: str, tmp_path: Path) -> None:
    db = Database(db_url)
    try:
        reconciler = one_account_reconciler(db, str(tmp_path), OneAccount("hk", HongKongChannel()), "Asia/Hong_Kong")
        report = asyncio.run(reconciler.reconcile("hk", date(2026, 11, 20)))
        assert (report["status"], report["currency"], report["channel_account"], report["business_date"]) == \
            ("failed", "HKD", "hk", "2026-11-20")
        assert report["message"] == "statement download failed: no bill for 2026-11-20 yet"
    finally:
        db.dispose()
