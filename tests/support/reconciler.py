"""A Reconciler over one channel account and nothing else of the gateway: the host, the rate limiter
and the services it is handed are stand-ins, so a test (or a child process) runs reconciliation alone."""
from __future__ import annotations

from typing import Any

import structlog

from gateway.channel import Capability
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.reconciliation.run import Reconciler
from ledger.booking import Booker
from ledger.chart import load_chart
from ledger.core import Ledger
from ledger.days import BusinessDay


class OneAccount:
    """A plugin host of one channel account, `account_id`, served by `channel` (config: its settings)."""

    def __init__(self, account_id: str, channel: Any, config: Any = None) -> None:
        self.id, self.channel, self.config = account_id, channel, config

    def account(self, account_id: str) -> OneAccount:
        assert account_id == self.id
        return self

    def require(self, account: OneAccount, capability: Capability) -> None:
        assert capability == Capability.STATEMENT


class NoRate:
    async def wait(self, account: str) -> None:
        return None


def one_account_reconciler(db: Database, statement_dir: str, host: OneAccount, timezone: str) -> Reconciler:
    """A Reconciler of host's account on db, keeping statements under statement_dir, the day cut at
    midnight in timezone."""
    return Reconciler(
        settings=Settings(database_url=db.url, statement_dir=statement_dir), db=db, host=host,
        business_day=BusinessDay.of(timezone, 0), booker=Booker(Ledger(load_chart())), rate=NoRate(),
        payments=None, refunds=None, payouts=None, clock=Clock(), log=structlog.get_logger())
