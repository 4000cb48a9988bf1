"""What merchants and operators read from the ledger: balances, entries, and the full check that ties
the books to payments and refunds."""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, text

from gateway.models import Attempt, Payment, Payout, Refund, Split, SplitRelease, SplitReturn
from gateway.resources import iso
from ledger.check import check_ledger
from ledger.core import Entry, Ledger
from ledger.models import LedgerEntry

payments = Payment.__table__
refunds = Refund.__table__
attempts = Attempt.__table__
entries = LedgerEntry.__table__
payouts = Payout.__table__
splits = Split.__table__
split_returns = SplitReturn.__table__
split_releases = SplitRelease.__table__

BALANCE_KINDS = {"merchant_available": "available", "merchant_in_transit": "in_transit",
                 "merchant_frozen": "frozen", "refunds_payable": "refund_pending",
                 "payouts_pending": "payout_pending", "splits_payable": "split_pending",
                 "split_frozen": "split_frozen"}


def merchant_balances(conn: Connection, ledger: Ledger, merchant_id: str) -> list[dict[str, Any]]:
    by_currency: dict[str, dict[str, Any]] = {}
    for balance in ledger.balances(conn, "merchant", merchant_id):
        kind = BALANCE_KINDS.get(balance.account.code)
        if kind is None:
            continue
        row = by_currency.setdefault(balance.account.currency, {
            "currency": balance.account.currency, **{k: 0 for k in BALANCE_KINDS.values()}})
        row[kind] = balance.normal
    return [by_currency[c] for c in sorted(by_currency)]


def entry_object(entry: Entry, owner_id: str) -> dict[str, Any]:
    return {
        "id": entry.id, "object": "ledger_entry", "event_type": entry.event_type, "reference": entry.reference,
        "business_date": entry.business_date.isoformat(), "memo": entry.memo, "reverses": entry.reverses,
        "created_at": iso(entry.created_at),
        # A merchant sees its own side of the entry.
        "postings": [{"account": line.account.code, "currency": line.account.currency, "amount": line.amount,
                      "balance_after": line.balance_after}
                     for line in entry.lines if line.account.owner_id == owner_id],
    }


def cross_check(conn: Connection) -> list[str]:
    """Every succeeded payment and every refund has its entries, and no entry lacks its source."""
    keys = {row.key for row in conn.execute(select(entries.c.key))}
    problems = []
    for p in conn.execute(select(payments.c.id, payments.c.status, payments.c.amount, payments.c.discount_amount,
                                 payments.c.discounts)):
        booked = f"payment:{p.id}:payment.succeeded" in keys
        # A payment the channel kept all of (its coupon) moved none of our money: it has no entry.
        if (p.status == "succeeded" and p.amount > p.discount_amount) != booked:
            problems.append(f"payment {p.id} is {p.status} but its payment.succeeded entry is "
                            f"{'present' if booked else 'missing'}")
        for campaign_id, amount in ((p.discounts or {}).get("campaigns") or {}).items():
            if amount and f"payment:{p.id}:campaign:{campaign_id}:campaign.discount" not in keys:
                problems.append(f"payment {p.id} was paid back {amount} by campaign {campaign_id}, which is not booked")
    expected_by_status = {"processing": ("refund.requested",), "succeeded": ("refund.requested", "refund.succeeded"),
                          "failed": ("refund.requested", "refund.failed")}
    for r in conn.execute(select(refunds.c.id, refunds.c.status, refunds.c.kind, refunds.c.attempt_id,
                                 refunds.c.campaign_refund, refunds.c.amount, refunds.c.discount_refund)):
        expected = expected_by_status[r.status] if r.amount > r.discount_refund else ()
        for campaign_id, amount in (r.campaign_refund or {}).items():
            returned = f"refund:{r.id}:campaign:{campaign_id}:campaign.discount_returned" in keys
            undone = f"refund:{r.id}:campaign:{campaign_id}:campaign.discount_return_failed" in keys
            if amount and (not returned or undone != (r.status == "failed")):
                problems.append(f"refund {r.id} is {r.status} but campaign {campaign_id}'s share of it is "
                                f"{'not booked' if not returned else 'booked wrongly'}")
        if r.kind == "duplicate":  # the money came in as a second payment, not reserved from the merchant
            if r.amount > r.discount_refund and f"attempt:{r.attempt_id}:payment.duplicate_succeeded" not in keys:
                problems.append(f"duplicate refund {r.id} has no payment.duplicate_succeeded entry")
            expected = tuple(e for e in expected if e == "refund.succeeded")
        for event_type in ("refund.requested", "refund.succeeded", "refund.failed"):
            present = f"refund:{r.id}:{event_type}" in keys
            if present != (event_type in expected):
                problems.append(f"refund {r.id} is {r.status} but its {event_type} entry is "
                                f"{'present' if present else 'missing'}")
    # the entries each end books, by status (a returned payout was paid first)
    for table, kind, ends in ((payouts, "payout", {"succeeded": ("payout.succeeded",), "failed": ("payout.failed",),
                                                   "returned": ("payout.succeeded", "payout.returned")}),
                              (splits, "split", {"succeeded": ("split.succeeded",), "failed": ("split.failed",)})):
        for r in conn.execute(select(table.c.id, table.c.status)):
            started = r.status not in ("scheduled", "cancelled") and not (
                kind == "split" and r.status == "failed" and f"split:{r.id}:split.requested" not in keys)
            expected = ({f"{kind}.requested"} if started else set()) | (set(ends[r.status]) if r.status in ends
                                                                        and started else set())
            for event_type in (f"{kind}.requested", *dict.fromkeys(e for end in ends.values() for e in end)):
                present = f"{kind}:{r.id}:{event_type}" in keys
                if present != (event_type in expected):
                    problems.append(f"{kind} {r.id} is {r.status} but its {event_type} entry is "
                                    f"{'present' if present else 'missing'}")
    for r in conn.execute(select(split_returns.c.id, split_returns.c.status)):
        present = f"split_return:{r.id}:split.returned" in keys
        if present != (r.status == "succeeded"):
            problems.append(f"split return {r.id} is {r.status} but its split.returned entry is "
                            f"{'present' if present else 'missing'}")
    for r in conn.execute(select(split_releases.c.id, split_releases.c.status, split_releases.c.amount)):
        present = f"split_release:{r.id}:split.released" in keys
        if present != (r.status == "succeeded" and r.amount > 0):
            problems.append(f"split release {r.id} is {r.status} (amount {r.amount}) but its split.released entry is "
                            f"{'present' if present else 'missing'}")
    payment_ids = {row.id for row in conn.execute(select(payments.c.id))}
    refund_ids = {row.id for row in conn.execute(select(refunds.c.id))}
    attempt_ids = {row.id for row in conn.execute(select(attempts.c.id))}
    known = {"payment": payment_ids, "refund": refund_ids, "attempt": attempt_ids,
             "payout": {row.id for row in conn.execute(select(payouts.c.id))},
             "split": {row.id for row in conn.execute(select(splits.c.id))},
             "split_return": {row.id for row in conn.execute(select(split_returns.c.id))}}
    for e in conn.execute(select(entries.c.id, entries.c.reference)):
        kind, _, ident = (e.reference or "").partition(":")
        if kind in known and ident not in known[kind]:
            problems.append(f"entry {e.id} refers to {e.reference}, which does not exist")
    return problems


def full_check(conn: Connection) -> list[str]:
    """The ledger's own invariants and its agreement with payments, refunds, payouts and splits. Call
    it first in its transaction: on PostgreSQL it reads one snapshot (REPEATABLE READ), so a payment
    settling while the check runs cannot look half-booked (status read before, entry after)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    return check_ledger(conn) + cross_check(conn)
