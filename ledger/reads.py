"""What the rest of paymux reads from the books, without knowing the ledger's tables or its signs.

Postings are stored debit-positive and an account's `balance` is its net balance; which of the two
signs its owner reads as "more" depends on the account's normal side. That knowledge stays here:
callers get non-negative `debit`/`credit` and a `change` already in the account's normal sign
(positive: its normal balance grew), and balances as their owners read them (Ledger.balance).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Connection, Select, case, func, select

from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from ledger.slots import whole_balance

accounts = LedgerAccount.__table__
entries = LedgerEntry.__table__
postings = LedgerPosting.__table__


def postings_on(codes: Sequence[str], event_types: Sequence[str], business_date: date) -> Select:
    """One row per posting to an account of `codes`, in an entry of `event_types` dated `business_date`:
    reference, event_type, code, owner_id, currency, debit, credit and change (in the account's normal
    sign). A query to join on `reference` (e.g. `payment:{id}`) and aggregate, in one statement."""
    return postings_between(codes, business_date, business_date).where(entries.c.event_type.in_(list(event_types)))


def postings_between(codes: Sequence[str], since: date, until: date) -> Select:
    """As postings_on, for every entry dated `since` to `until` (both included), of any event type."""
    normal = case((accounts.c.normal_side == "debit", postings.c.amount), else_=-postings.c.amount)
    return (select(entries.c.reference, entries.c.event_type, accounts.c.code, accounts.c.owner_id,
                   accounts.c.currency,
                   case((postings.c.amount > 0, postings.c.amount), else_=0).label("debit"),
                   case((postings.c.amount < 0, -postings.c.amount), else_=0).label("credit"),
                   normal.label("change"))
            .select_from(entries.join(postings, postings.c.entry_id == entries.c.id)
                         .join(accounts, accounts.c.id == postings.c.account_id))
            .where(entries.c.business_date >= since, entries.c.business_date <= until,
                   accounts.c.code.in_(list(codes))))


def total_balance(conn: Connection, code: str) -> int:
    """The normal balances of every account of `code` added up, whatever their owner or currency."""
    net = whole_balance()
    normal = case((accounts.c.normal_side == "debit", net), else_=-net)
    return int(conn.execute(select(func.coalesce(func.sum(normal), 0)).where(accounts.c.code == code)).scalar_one())
