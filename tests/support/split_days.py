"""A day of splits closed the way an operator closes it: the trade statement reconciled, the statement
of splits reconciled, then settlement, by a gateway of the operator's own on the same settings."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from gateway.books import full_check
from gateway.logs import get_logger
from gateway.models import Split
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import Settler
from gateway.service import Gateway
from gateway.split_recon import split_reconciler
from ledger.core import AccountRef


def close_day(settings: Any, account: str, day: date, settle: bool = True, splits: bool = True) -> dict[str, Any]:
    """Reconcile `account`'s trade statement and (splits) statement of splits of `day`, then settle day + 1."""
    with_splits = splits

    async def run() -> dict[str, Any]:
        gw = Gateway.build(settings, get_logger(role="reconcile"))
        try:
            trades = await gw.reconciler.reconcile(account, day)
            splits = await split_reconciler(gw).reconcile(account, day) if with_splits else None
            settled = None
            if settle:
                settler = Settler(settings, discover_channel_types(make_plugin_manager()), gw.booker)
                settled = await gw.db.tx(lambda conn: settler.settle(conn, day + timedelta(days=1),
                                                                     gw.clock.now()).as_dict())
            return {"trades": trades, "splits": splits, "settled": settled}
        finally:
            await gw.aclose()

    return asyncio.run(run())


def reconcile_splits(settings: Any, account: str, day: date) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        gw = Gateway.build(settings, get_logger(role="reconcile"))
        try:
            return await split_reconciler(gw).reconcile(account, day)
        finally:
            await gw.aclose()

    return asyncio.run(run())


def balance(gw: Any, code: str, owner: str) -> int:
    with gw.gateway.db.transaction() as conn:
        return gw.gateway.ledger.balance(conn, AccountRef(code, owner, "CNY"))


def split_row(gw: Any, split_id: str) -> Any:
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(Split.__table__).where(Split.__table__.c.id == split_id)).one()


def today(gw: Any) -> date:
    return gw.gateway.ledger.day.date_of(gw.gateway.clock.now())


def assert_day_of_one_split_closed(gw: Any, settings: Any, account: str, receiver_id: str, split_id: str,
                                   amount: int, payment_amount: int) -> dict[str, Any]:
    """Close today at `account` (one payment, one split of `amount` that the channel paid the receiver
    itself) and check where the money ended: confirmed, the receiver owed nothing, the channel's day
    settled less the split, clearing empty, the books clean. Returns close_day's report."""
    day = today(gw)
    closed = close_day(settings, account, day)
    assert closed["splits"]["status"] == "completed" and closed["splits"]["open"] == 0, closed["splits"]
    assert closed["splits"]["summary"]["split_amount"] == amount
    assert balance(gw, "receiver_in_transit", receiver_id) == 0
    assert split_row(gw, split_id).channel_paid_on == day
    [channel] = [b for b in closed["settled"]["booked"] if b["kind"] == "channel"]
    assert channel["amount"] == payment_amount - closed["trades"]["fee_amount"] - amount
    assert balance(gw, "channel_clearing", account) == 0
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
    return closed
