"""Merchant statements: for each merchant and business day, every movement of its money (payments,
refunds, splits, payouts, fees, adjustments, settlements) with paymux's and the channel's references,
and the opening and closing balance of each balance kind (ledger account code and currency).

The close produces a statement (`produce`): one row per merchant holding the balances and the ledger's
last posting id at that moment. The lines are not copied: they are the ledger's postings to the
merchant's accounts dated that day, up to that id, read in pages by posting id (`lines`), so a statement
is the books themselves and reads the same every time. Closing = opening + the day's lines, per kind.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, String, and_, case, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from gateway.models import MerchantStatement, Payment, Payout, Refund, Split
from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

accounts = LedgerAccount.__table__
entries = LedgerEntry.__table__
postings = LedgerPosting.__table__
statements = MerchantStatement.__table__
payments = Payment.__table__
refunds = Refund.__table__
payouts = Payout.__table__
splits = Split.__table__

# The CSV's columns, and each line's fields in the JSON.
COLUMNS = ("line", "booked_at", "kind", "event_type", "balance_kind", "currency", "amount", "reference",
           "merchant_reference", "channel_reference", "memo")
PAGE = 5000   # lines per read when streaming: what a statement holds in memory at once


@dataclass(frozen=True)
class Produced:
    merchants: int
    lines: int


def _normal(amount: Any) -> Any:
    """A posting in the sign its owner reads (merchant accounts are credit-normal, most of them)."""
    return case((accounts.c.normal_side == "debit", amount), else_=-amount)


def produce(conn: Connection, business_date: date, now: datetime) -> Produced:
    """Write (or write again, when a day is run again) every merchant's statement of `business_date`."""
    last = conn.execute(select(func.coalesce(func.max(postings.c.id), 0))).scalar_one()
    on_day = entries.c.business_date == business_date
    rows = conn.execute(
        select(accounts.c.owner_id, accounts.c.code, accounts.c.currency,
               func.coalesce(func.sum(case((entries.c.business_date < business_date, _normal(postings.c.amount)),
                                           else_=0)), 0).label("opening"),
               func.coalesce(func.sum(case((on_day, _normal(postings.c.amount)), else_=0)), 0).label("moved"),
               func.count(case((on_day, postings.c.id))).label("lines"))
        .select_from(accounts.join(postings, postings.c.account_id == accounts.c.id)
                     .join(entries, entries.c.id == postings.c.entry_id))
        .where(accounts.c.owner_type == "merchant", entries.c.business_date <= business_date, postings.c.id <= last)
        .group_by(accounts.c.owner_id, accounts.c.code, accounts.c.currency)).all()
    merchants: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = merchants.setdefault(r.owner_id, {"balances": {}, "lines": 0})
        m["balances"].setdefault(r.code, {})[r.currency] = [int(r.opening), int(r.opening) + int(r.moved)]
        m["lines"] += int(r.lines)
    for merchant_id, m in merchants.items():
        values = dict(last_posting_id=last, lines=m["lines"], balances=m["balances"], produced_at=now)
        updated = conn.execute(update(statements).where(statements.c.merchant_id == merchant_id,
                                                        statements.c.business_date == business_date).values(**values))
        if updated.rowcount == 0:
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(statements)
            conn.execute(insert.values(merchant_id=merchant_id, business_date=business_date, **values)
                         .on_conflict_do_nothing())
    return Produced(len(merchants), sum(m["lines"] for m in merchants.values()))


def header(conn: Connection, merchant_id: str, business_date: date) -> Any:
    """The produced statement's row, or None while the day's close has not produced it."""
    return conn.execute(select(statements).where(statements.c.merchant_id == merchant_id,
                                                 statements.c.business_date == business_date)).first()


def balances(row: Any) -> list[dict[str, Any]]:
    return [{"balance_kind": code, "currency": currency, "opening": pair[0], "closing": pair[1]}
            for code, per in sorted(row.balances.items()) for currency, pair in sorted(per.items())]


def lines(conn: Connection, row: Any, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` lines of a produced statement after line (posting id) `after`, in order."""
    query = (
        select(postings.c.id, entries.c.created_at, entries.c.event_type, accounts.c.code, accounts.c.currency,
               _normal(postings.c.amount).label("amount"), entries.c.reference, entries.c.memo,
               func.coalesce(payments.c.merchant_order_no, refunds.c.merchant_refund_no, payouts.c.merchant_payout_no,
                             splits.c.merchant_split_no).label("merchant_reference"),
               func.coalesce(payments.c.channel_transaction_id, refunds.c.channel_refund_id, payouts.c.channel_payout_id,
                             splits.c.channel_split_id).label("channel_reference"))
        .select_from(postings.join(entries, entries.c.id == postings.c.entry_id)
                     .join(accounts, accounts.c.id == postings.c.account_id)
                     .outerjoin(payments, entries.c.reference == literal("payment:", String) + payments.c.id)
                     .outerjoin(refunds, entries.c.reference == literal("refund:", String) + refunds.c.id)
                     .outerjoin(payouts, entries.c.reference == literal("payout:", String) + payouts.c.id)
                     .outerjoin(splits, entries.c.reference == literal("split:", String) + splits.c.id))
        .where(and_(accounts.c.owner_type == "merchant", accounts.c.owner_id == row.merchant_id,
                    entries.c.business_date == row.business_date, postings.c.id > after,
                    postings.c.id <= row.last_posting_id))
        .order_by(postings.c.id).limit(limit))
    return [{"line": r.id, "booked_at": r.created_at.isoformat(), "kind": r.event_type.split(".")[0],
             "event_type": r.event_type, "balance_kind": r.code, "currency": r.currency, "amount": int(r.amount),
             "reference": r.reference, "merchant_reference": r.merchant_reference,
             "channel_reference": r.channel_reference, "memo": r.memo} for r in conn.execute(query)]

