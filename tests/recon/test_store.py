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


def test_the_week_before_is_read_for_the_statements_keys_and_the_days_successes_each_row_once(db_url: str) -> None:
    """Our side's rows outside the business day are kept when their key is on the statement or they
    succeeded on the business day, once each (on SQLite they are read back by key and by time in two
    disjoint reads), and the others are dropped."""
    from datetime import date, timedelta

    import polars as pl
    from sqlalchemy import insert

    from gateway.clock import Clock
    from gateway.merchants import create_merchant
    from gateway.reconciliation.store import attempts, key_hashes, local_parts, payments, sorted_hashes
    from gateway.secretbox import SecretBox

    day = BusinessDay.of("Asia/Shanghai", 0)
    business_date = date(2026, 11, 20)
    lo = day.start(business_date)
    # out_trade_no: (created, updated, status)
    rows = {"H_on_statement": (lo - timedelta(days=3), lo - timedelta(days=3), "succeeded"),
            "H_on_statement_paid_today": (lo - timedelta(days=2), lo + timedelta(hours=1), "succeeded"),
            "H_paid_today": (lo - timedelta(days=1), lo + timedelta(hours=2), "succeeded"),
            "H_paid_just_before": (lo - timedelta(days=1), lo - timedelta(hours=1), "succeeded"),
            "H_pending": (lo - timedelta(days=4), lo - timedelta(days=4), "pending"),
            "H_after_the_day": (lo + timedelta(days=1, hours=5), lo + timedelta(days=1, hours=5), "succeeded"),
            "D_of_the_day": (lo + timedelta(hours=3), lo + timedelta(hours=3), "succeeded")}
    db = Database(db_url)
    try:
        with db.transaction() as conn:
            merchant = create_merchant(conn, SecretBox("test-secret-key-0123456789abcdef"), Clock(), "m").merchant_id
            for i, (number, (created, updated, status)) in enumerate(rows.items()):
                conn.execute(insert(payments).values(
                    id=f"pay_{i}", merchant_id=merchant, merchant_order_no=f"o{i}", amount=100, currency="CNY",
                    subject="s", channel_account="wx", method="native", status=status, refunded_amount=0,
                    refund_pending_amount=0, metadata={}, created_at=created, updated_at=updated))
                conn.execute(insert(attempts).values(
                    id=f"att_{i}", payment_id=f"pay_{i}", amount=100, out_trade_no=number, channel_account="wx",
                    method="native", status=status, queries=0, created_at=created, updated_at=updated))
        on_statement = ["H_on_statement", "H_on_statement_paid_today", "D_of_the_day", "T_unknown"]
        keys = sorted_hashes([key_hashes(pl.DataFrame({"out_trade_no": on_statement, "out_refund_no": [None] * 4},
                                                      schema={"out_trade_no": pl.String, "out_refund_no": pl.String}))])
        parts = local_parts(db, "wx", lo - timedelta(days=7), day.start(business_date + timedelta(days=2)), day,
                            keys=lambda: keys, business_date=business_date)
        read = pl.concat([frame for kind, frame in parts if kind == "payment"])
    finally:
        db.dispose()
    assert sorted(read["out_trade_no"]) == ["D_of_the_day", "H_on_statement", "H_on_statement_paid_today",
                                            "H_paid_today"]
    assert read.filter(pl.col("out_trade_no") == "H_paid_today")["local_date"].to_list() == [business_date]
