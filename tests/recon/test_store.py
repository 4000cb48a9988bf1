"""Reconciliation's store: the bulk reads of our side take their values as data, never as SQL."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from gateway.db import Database
from gateway.reconciliation.store import load_local
from ledger.days import BusinessDay


def test_a_quote_in_an_account_id_is_read_as_data_by_the_bulk_reads(db_url: str) -> None:
    db = Database(db_url)
    try:
        hostile = "x' OR '1'='1'; DROP TABLE attempts; --"
        pay, ref, out = load_local(db, hostile, datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC),
                                   BusinessDay.of("Asia/Shanghai", 0))
        assert (pay.height, ref.height, out.height) == (0, 0, 0)
        assert {"out_trade_no", "local_status", "local_amount", "local_date"} <= set(pay.columns)
        assert {"out_payout_no", "local_date", "sent_date"} <= set(out.columns)
        with db.transaction() as conn:   # the table is still there
            assert conn.execute(text("SELECT count(*) FROM attempts")).scalar_one() == 0
    finally:
        db.dispose()
