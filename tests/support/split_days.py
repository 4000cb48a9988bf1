"""A day of splits closed the way an operator closes it: the trade statement reconciled, the statement
of splits reconciled, then settlement, by a gateway of the operator's own on the same settings."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from gateway.logs import get_logger
from gateway.models import Split
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import Settler
from gateway.service import Gateway
from gateway.split_recon import split_reconciler
from ledger.core import AccountRef


def close_day(settings: Any, account: str, day: date, settle: bool = True) -> dict[str, Any]:
    """Reconcile `account`'s trade statement and statement of splits of `day`, then settle day + 1."""
    async def run() -> dict[str, Any]:
        gw = Gateway.build(settings, get_logger(role="reconcile"))
        try:
            trades = await gw.reconciler.reconcile(account, day)
            splits = await split_reconciler(gw).reconcile(account, day)
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
