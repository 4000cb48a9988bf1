"""The matching engine on hand-made frames: one of every class, and the arithmetic of fees."""
from __future__ import annotations

from datetime import date

import polars as pl

from gateway.channel import STATEMENT_COLUMNS
from gateway.reconciliation.match import CLASSES, classify, excuse, statement_totals, totals_disagree

D = date(2026, 11, 20)
SCHEMA = {name: getattr(pl, kind) for name, kind in STATEMENT_COLUMNS.items()}


def lines(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(["line_no", "kind", "channel_transaction_id", "out_trade_no", "out_refund_no",
                                   "amount", "fee_millis", "status", "time"], row)) for row in rows], schema=SCHEMA)


def local_payments(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(["out_trade_no", "local_status", "local_amount", "local_date"], r)) for r in rows],
                        schema={"out_trade_no": pl.String, "local_status": pl.String, "local_amount": pl.Int64,
                                "local_date": pl.Date})


def local_refunds(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(["out_refund_no", "out_trade_no", "local_status", "local_amount", "local_date"], r))
                         for r in rows], schema={"out_refund_no": pl.String, "out_trade_no": pl.String,
                                                 "local_status": pl.String, "local_amount": pl.Int64,
                                                 "local_date": pl.Date})


STATEMENT = lines(
    (2, "payment", "c1", "T-match", None, 10000, 60000, "succeeded", "t"),
    (3, "payment", "c2", "T-nobody", None, 500, 3000, "succeeded", "t"),        # missing_local
    (4, "payment", "c3", "T-open", None, 700, 4200, "succeeded", "t"),          # status_mismatch (open here)
    (5, "payment", "c4", "T-amount", None, 900, 5400, "succeeded", "t"),        # amount_mismatch (800 here)
    (6, "payment", "c5", "T-fee", None, 1000, 9000, "succeeded", "t"),          # fee_mismatch (6000 expected)
    (7, "payment", "c1", "T-match", None, 10000, 60000, "succeeded", "t"),      # duplicate
    (8, "refund", "c1", "T-match", "R-1", 2500, -15000, "succeeded", "t"),      # matched refund
    (9, "refund", "c6", "T-x", "R-nobody", 100, -600, "succeeded", "t"),        # missing_local refund
)
LOCAL_PAYMENTS = local_payments(
    ("T-match", "succeeded", 10000, D), ("T-open", "pending", 700, None), ("T-amount", "succeeded", 800, D),
    ("T-fee", "succeeded", 1000, D), ("T-absent", "succeeded", 4000, D), ("T-dayafter", "succeeded", 50, date(2026, 11, 21)))
LOCAL_REFUNDS = local_refunds(("R-1", "T-match", "succeeded", 2500, D), ("R-gone", "T-match", "succeeded", 300, D))


def test_every_class_is_found_once() -> None:
    result = classify(STATEMENT, LOCAL_PAYMENTS, LOCAL_REFUNDS, business_date=D, today=D, carry_days=3, fee_bps=60)
    assert set(result.counts) == set(CLASSES)
    assert result.counts == {"matched": 2, "missing_local": 2, "missing_channel": 0, "pending_carryover": 2,
                             "status_mismatch": 1, "amount_mismatch": 1, "fee_mismatch": 1, "duplicate": 1}
    by_ref = {(r["kind"], r["reference"]): r for r in result.items.to_dicts()}
    assert by_ref[("payment", "T-nobody")]["class"] == "missing_local"
    assert by_ref[("payment", "T-open")]["class"] == "status_mismatch"
    assert by_ref[("payment", "T-amount")] | {} and by_ref[("payment", "T-amount")]["channel_effect"] == 900
    assert by_ref[("payment", "T-amount")]["local_effect"] == 800
    assert by_ref[("payment", "T-fee")]["expected_fee_millis"] == 6000
    assert by_ref[("payment", "T-absent")]["class"] == "pending_carryover"
    assert by_ref[("refund", "R-gone")]["local_effect"] == -300 and by_ref[("refund", "R-nobody")]["channel_effect"] == -100
    assert ("payment", "T-dayafter") not in by_ref      # another day's success is that day's business
    assert result.payment_amount == 10000 + 500 + 700 + 900 + 1000 + 10000
    assert result.refund_amount == 2600
    assert result.fee_amount == 60 + 3 + 4 + 5 + 9 + 60 - 15 - 1


def test_after_the_window_an_absent_success_is_missing_and_a_neighbour_statement_excuses_it() -> None:
    late = classify(STATEMENT, LOCAL_PAYMENTS, LOCAL_REFUNDS, business_date=D, today=date(2026, 11, 24),
                    carry_days=3, fee_bps=None)
    assert late.counts["missing_channel"] == 2 and late.counts["pending_carryover"] == 0
    assert late.counts["fee_mismatch"] == 0 and late.counts["matched"] == 3     # no rate configured: no fee check
    neighbour = pl.DataFrame({"kind": ["payment"], "reference": ["T-absent"]})
    excused = excuse(late, neighbour)
    assert excused.counts["missing_channel"] == 1


def test_declared_totals_are_checked_against_the_lines() -> None:
    assert statement_totals(STATEMENT)["rows"] == 8
    assert totals_disagree({"rows": 8, "refund_amount": 2600}, STATEMENT) is None
    assert "rows 9" in totals_disagree({"rows": 9}, STATEMENT)
