"""Receivers whose money paymux holds, settled like merchants: no channel pays them a split (their
`held_by` is "paymux", or the payment's channel cannot split), so a split leaves them owed in our books
(receiver_in_transit) and, on the receiver's own T+n — `settlement_days` working days after the day the
split succeeded, by the currency's calendar (gateway/workdays.py) — becomes its available balance
(`settlement.receiver`), from which it is paid out like a merchant (a payout with `receiver_id`). No
HTTP, no SQL strings.

Called by `paymux settle` (gateway/reconciliation/settlement.py) for the settle date S: for each
(receiver, channel account, currency, day Y) of held splits whose T+n ends on S, once the account's day
Y is reconciled and clean (as a merchant's day waits for it), what those splits passed to the receiver
that day — no more than it is still owed (returns took some back) — is booked once (a `settlements`
row, kind "receiver", owner "receiver@account"). Made available before the channel pays that day (a
receiver on T+0 at a T+1 channel), it is an advance too, repaid with the channel's day, as a merchant's.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, String, and_, func, literal, select

from gateway.models import Payment, Receiver, Settlement, Split
from ledger.core import AccountRef
from ledger.reads import postings_on

if TYPE_CHECKING:
    from gateway.reconciliation.settlement import SettleReport, Settler

splits = Split.__table__
payments = Payment.__table__
receivers = Receiver.__table__


def settle_receivers(settler: Settler, conn: Connection, report: SettleReport, settle_date: date, now: datetime,
                     force_by: str | None, hold: bool, channel_days: dict[str, int]) -> None:
    """Book what is due on `settle_date` to receivers whose money paymux holds (see the module)."""
    for receiver_id, account_id, currency, day, amount in due(settler, conn, settle_date):
        if account_id in channel_days:
            if settler._reconciled(conn, account_id, day) is None:
                report.skipped.append(f"receiver {receiver_id} via {account_id} {day}: not reconciled")
                continue
            if not settler._clean(conn, report, account_id, day, force_by, hold):
                continue
        owed = settler.booker.ledger.balance(conn, AccountRef("receiver_in_transit", receiver_id, currency))
        amount = min(amount, owed)
        owner = f"{receiver_id}@{account_id}"
        if amount > 0 and settler._book(conn, report, "receiver", owner, day, settle_date, amount, currency, now,
                                        force_by, channel_account=account_id, receiver_id=receiver_id):
            channel_paid_on = settler.workdays.of(currency).add(day, channel_days.get(account_id, 0))
            if channel_paid_on > settle_date:   # available before the channel pays us: an advance, as a merchant's
                settler._book(conn, report, "advance", owner, day, settle_date, amount, currency, now, force_by,
                              channel_account=account_id)


def due(settler: Settler, conn: Connection, settle_date: date) -> list[tuple[str, str, str, date, int]]:
    """(receiver, channel account, currency, day, what held splits passed to it that day) whose T+n ends
    on `settle_date`: one query per settlement cycle the receivers use."""
    found: list[tuple[str, str, str, date, int]] = []
    cycles = [n for (n,) in conn.execute(select(receivers.c.settlement_days).distinct())]
    for n in sorted(cycles):
        for day in settler._days_settling_on(settle_date, n):
            moved = postings_on(("receiver_in_transit",), ("split.succeeded",), day).subquery()
            rows = conn.execute(
                select(moved.c.owner_id, payments.c.channel_account, moved.c.currency, func.sum(moved.c.change))
                .select_from(moved.join(splits, moved.c.reference == literal("split:", String) + splits.c.id)
                             .join(payments, payments.c.id == splits.c.payment_id)
                             .join(receivers, receivers.c.id == splits.c.receiver_id))
                .where(and_(splits.c.held_by == "paymux", receivers.c.settlement_days == n))
                .group_by(moved.c.owner_id, payments.c.channel_account, moved.c.currency)).all()
            found += [(receiver_id, account_id, currency, day, int(amount))
                      for receiver_id, account_id, currency, amount in rows
                      if settler.workdays.of(currency).add(day, n) == settle_date]
    return sorted(found)


def receiver_settlements(conn: Connection, receiver_id: str) -> list[dict[str, Any]]:
    """What was settled to a receiver paymux holds money for: per day, when, through which account."""
    t = Settlement.__table__
    return [{"business_date": r.business_date.isoformat(), "settle_date": r.settle_date.isoformat(),
             "channel": r.channel_account, "amount": int(r.amount), "currency": r.currency}
            for r in conn.execute(select(t).where(and_(t.c.kind == "receiver", t.c.owner.like(f"{receiver_id}@%")))
                                  .order_by(t.c.business_date, t.c.channel_account))]
