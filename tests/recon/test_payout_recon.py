"""Payouts proven against the channel's statement: every difference class a payout line can have, a
return (退票) on its own line, and a payout we marked failed that the channel paid, found by
reconciliation and resolved by two people against the channel account's position, never clearing."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from gateway.books import full_check
from gateway.channel import Outcome, PayoutResult
from gateway.reconciliation import review
from gateway.reconciliation.match import LOCAL_PAYOUT_COLUMNS, classify
from ledger.core import AccountRef
from tests.recon.test_matching import D, lines, local_payments, local_refunds
from tests.support.payouts import balance, funded, payout, position, sandbox, settings


def local_payouts(*rows: tuple) -> pl.DataFrame:
    return pl.DataFrame([dict(zip(LOCAL_PAYOUT_COLUMNS, r)) for r in rows], schema=LOCAL_PAYOUT_COLUMNS)


PAYOUT_LINES = lines(
    (2, "payout", "p1", "P-match", None, 3000, 0, "succeeded", "t"),
    (3, "payout", "p2", "P-nobody", None, 500, 0, "succeeded", "t"),          # missing_local: not ours
    (4, "payout", "p3", "P-failed", None, 700, 0, "succeeded", "t"),          # status_mismatch: failed here, paid
    (5, "payout", "p4", "P-amount", None, 900, 0, "succeeded", "t"),          # amount_mismatch: 800 here
    (6, "payout", "p1", "P-match", None, 3000, 0, "succeeded", "t"),          # duplicate
    (7, "payout", "p5", "P-back", None, 400, 0, "succeeded", "t"),            # paid that day ...
    (8, "payout", "p5", "P-back", None, 400, 0, "returned", "t"),             # ... and returned: both match
    (9, "payout", "p6", "P-late", None, 600, 0, "returned", "t"),             # returned; still succeeded here
    (10, "payout", "p7", "P-paid-then", None, 250, 0, "succeeded", "t"),      # returned here since: matches
)
LOCAL_PAYOUTS = local_payouts(
    ("P-match", "succeeded", 3000, D, D), ("P-failed", "failed", 700, None, D), ("P-amount", "succeeded", 800, D, D),
    ("P-back", "returned", 400, None, D), ("P-late", "succeeded", 600, date(2026, 11, 17), date(2026, 11, 17)),
    ("P-paid-then", "returned", 250, None, D),
    ("P-absent", "succeeded", 1000, D, D),                                     # pending_carryover
    ("P-in-flight", "processing", 1200, None, D))                              # sent that day, on no line


def test_payout_lines_give_exactly_their_classes() -> None:
    result = classify(PAYOUT_LINES, local_payments(), local_refunds(), business_date=D, today=D, carry_days=3,
                      fee_bps=60, local_payouts=LOCAL_PAYOUTS)
    assert result.counts == {"matched": 4, "missing_local": 1, "missing_channel": 0, "pending_carryover": 2,
                             "status_mismatch": 2, "amount_mismatch": 1, "fee_mismatch": 0, "duplicate": 1}
    found = {(r["reference"], r["class"]): r for r in result.items.to_dicts()}
    assert set(found) == {("P-nobody", "missing_local"), ("P-failed", "status_mismatch"), ("P-amount", "amount_mismatch"),
                          ("P-match", "duplicate"), ("P-late", "status_mismatch"), ("P-absent", "pending_carryover"),
                          ("P-in-flight", "pending_carryover")}
    # What each side says moved the position: a payout takes from it, a return puts it back.
    assert (found[("P-failed", "status_mismatch")]["channel_effect"], found[("P-failed", "status_mismatch")]["local_effect"]) == (-700, 0)
    assert (found[("P-late", "status_mismatch")]["channel_status"], found[("P-late", "status_mismatch")]["channel_effect"]) == ("returned", 600)
    assert (result.payment_amount, result.refund_amount) == (0, 0)   # payouts are in no payment or refund total
    late = classify(PAYOUT_LINES, local_payments(), local_refunds(), business_date=D, today=D + timedelta(days=4),
                    carry_days=3, fee_bps=60, local_payouts=LOCAL_PAYOUTS)
    assert (late.counts["missing_channel"], late.counts["pending_carryover"]) == (2, 0)


@dataclass(frozen=True)
class Person:
    id: str
    name: str


def test_a_payout_we_marked_failed_that_the_channel_paid_is_found_and_resolved_by_two_people(
        gateway_factory, db_url, tmp_path) -> None:  # noqa: ANN001
    from tests.support.unionpay import ShiftedClock, reconcile_days

    gw = gateway_factory(settings(db_url, callback_mode="drop", payout_settle_ms=300).with_changes(
        statement_dir=str(tmp_path / "st")))
    creds, client = funded(gw)
    made = payout(client, amount=30000).json()
    assert made["status"] == "processing"
    # A final "failed" reaches us (a wrong answer, as it turns out) while the bank pays it anyway.
    with gw.gateway.db.transaction() as conn:
        assert gw.gateway.payouts.apply(conn, made["id"], PayoutResult(Outcome.FAILED, error_code="BANK_DOWN"), "query")
    deadline = time.monotonic() + 20
    while not sandbox(gw).paid_count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sandbox(gw).paid_count == {made["out_payout_no"]: 1}
    assert position(gw) == (50000, 0) and balance(client)["available"] == 100000     # all released here
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    statement = tmp_path / "sandbox.statement"
    statement.write_text(sandbox(gw).statement(day.isoformat()))
    clock = ShiftedClock()
    [report] = reconcile_days(gw.settings, clock, [(timedelta(), day)], account="sandbox", files=[statement])
    assert report["counts"]["status_mismatch"] == 1, report
    with gw.gateway.db.transaction() as conn:
        [item] = [i for i in review_items(conn) if i["kind"] == "payout"]
    assert (item["channel_status"], item["local_status"], item["reference"]) == ("succeeded", "failed",
                                                                                  made["out_payout_no"])
    alice, bob = Person("op_alice", "alice"), Person("op_bob", "bob")
    now = gw.gateway.clock.now()
    with gw.gateway.db.transaction() as conn:
        proposal = review.propose(conn, item["id"], "adjust", alice, "the bank paid it: the position paid 30000",
                                  now)["proposal"]["id"]
    with gw.gateway.db.transaction() as conn:   # the maker cannot check their own proposal
        try:
            review.approve(conn, item["id"], proposal, alice, gw.gateway.payments.booker, now)
            raise AssertionError("the proposer approved their own proposal")
        except review.ReconError as exc:
            assert exc.code == "same_person"
    with gw.gateway.db.transaction() as conn:
        done = review.approve(conn, item["id"], proposal, bob, gw.gateway.payments.booker, now)
    assert done["status"] == "resolved"
    # The position is what the channel really holds; the difference waits in suspense; clearing untouched.
    assert position(gw) == (20000, 0) and balance(client)["available"] == 100000
    with gw.gateway.db.transaction() as conn:
        ledger = gw.gateway.ledger
        assert ledger.balance(conn, AccountRef("suspense", "", "CNY")) == 30000
        entry = ledger.entry(conn, f"recon-item:{item['id']}:recon.payout_adjust_loss")
        assert entry is not None and {line.account.code for line in entry.lines} == {"suspense", "channel_position"}
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def review_items(conn) -> list[dict]:  # noqa: ANN001
    from gateway.reports import open_items

    return open_items(conn)

