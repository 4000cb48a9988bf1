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


def test_the_cheap_filter_of_the_history_keeps_every_success_of_the_business_day() -> None:
    """Rows of the lookback window are dropped before their business date is worked out unless they may
    have succeeded on the business day: every row with_success_date puts on it is kept, whether `at`
    comes as PostgreSQL's instant or as SQLite's text, and most others are not."""
    from datetime import date, timedelta

    import polars as pl

    from gateway.reconciliation.match import with_success_date
    from gateway.reconciliation.store import _may_have_succeeded

    day = BusinessDay.of("Asia/Shanghai", 0)
    business_date = date(2026, 11, 20)
    lo, hi = day.start(business_date), day.start(business_date + timedelta(days=1))
    instants = [lo + timedelta(minutes=m) for m in range(-3 * 24 * 60, 4 * 24 * 60, 7)]
    statuses = ["succeeded" if i % 3 else "pending" for i in range(len(instants))]
    as_instant = pl.DataFrame({"local_status": statuses, "at": [t.astimezone(UTC) for t in instants]},
                              schema={"local_status": pl.String, "at": pl.Datetime("us", "UTC")})
    as_text = as_instant.with_columns(pl.col("at").dt.strftime("%Y-%m-%d %H:%M:%S"))
    for frame in (as_instant, as_text):
        mask = _may_have_succeeded(frame, lo, hi)
        on_day = with_success_date(frame, day)["local_date"] == business_date
        assert on_day.sum() > 0 and not (on_day.fill_null(False) & ~mask).any()
        assert mask.sum() < on_day.sum() * 1.5
