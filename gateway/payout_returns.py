"""Payouts returned by the receiving bank (退票): a payout that succeeded and came back days later.

The channel says so by callback, by query, or on its statement; whichever comes first moves the payout
`succeeded → returned` once (a conditional UPDATE), and in that transaction `payout.returned` puts the
amount back in the channel account's position and with the merchant (available, or frozen pending
review), gives the fee back or keeps it (`ReturnPolicy`), and a `payout.returned` event is recorded.
The janitor keeps asking about each succeeded payout for `watch_days` (`PayoutReturns.watch`), so a
return the channel tells no one of is still found. Only an answer that says returned (Outcome.RETURNED)
applies one: a channel whose answers have no state for a return may answer a failure about a payout it
paid; that contradicts a verified success, so it is logged (`payout.failed_after_success`) and the
statement decides (docs/payouts.md). No HTTP, no SQL strings.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, and_, select, update

from gateway.channel import Capability, Outcome
from gateway.models import Payout
from gateway.notifier import record_event
from gateway.operations import OperationCore
from gateway.resources import payout_object

payouts = Payout.__table__


@dataclass(frozen=True)
class ReturnPolicy:
    """What a returned payout does (Settings.payout_return_*): how long and how often a succeeded payout
    is asked about, where its amount goes back to ("available" or "frozen", pending review), and whether
    its fee is given back ("refund") or kept ("keep")."""

    watch_days: int = 7
    query_seconds: float = 6 * 3600
    to: str = "available"
    fee: str = "refund"

    def variables(self, amount: int, fee: int, receiver_id: str | None = None) -> dict[str, int]:
        fee_back = fee if self.fee == "refund" else 0
        back = amount + fee_back
        to_available = receiver_id is not None or self.to == "available"   # a receiver's: on to it (returned())
        return {"amount": amount, "fee_back": fee_back, "to_available": back if to_available else 0,
                "to_frozen": 0 if to_available else back}


class PayoutReturns:
    """Applies a payout's return once, and asks the channel about succeeded payouts in the window."""

    def __init__(self, core: OperationCore, policy: ReturnPolicy) -> None:
        self.db, self.host, self.clock, self.log = core.db, core.host, core.clock, core.log
        self.booker, self.calls, self.policy = core.booker, core.calls, policy

    def next_question(self, now: datetime) -> datetime:
        """When a payout that succeeded now is first asked about a return."""
        return now + timedelta(seconds=self.policy.query_seconds)

    def returned(self, conn: Connection, payout_id: str, source: str, code: str | None = None,
                 message: str | None = None) -> bool:
        """`succeeded → returned`, once: the position restored, the amount (and the fee, by policy) back to
        the merchant, a `payout.returned` event. False if it was not succeeded here (already returned,
        or not paid as far as we know)."""
        now = self.clock.now()
        values: dict[str, object] = {"status": "returned", "returned_at": now, "updated_at": now}
        if code:
            values.update(failure_code=code[:64], failure_message=(message or "Returned by the receiving bank")[:500])
        if not conn.execute(update(payouts).where(and_(payouts.c.id == payout_id, payouts.c.status == "succeeded"))
                            .values(**values)).rowcount:
            return False
        row = conn.execute(select(payouts).where(payouts.c.id == payout_id)).one()
        self.booker.book(conn, "payout.returned", f"payout:{row.id}", merchant_id=row.merchant_id,
                         channel_account=row.channel_account, currency=row.currency, now=now,
                         variables=self.policy.variables(row.amount, row.fee, row.receiver_id),
                         memo=f"returned by the receiving bank ({source})")
        if row.receiver_id:   # a receiver's payout: what came back is the receiver's, not the merchant's
            back = self.policy.variables(row.amount, row.fee, row.receiver_id)["to_available"]
            self.booker.book(conn, "payout.returned_to_receiver", f"payout:{row.id}", merchant_id=row.merchant_id,
                             channel_account=row.channel_account, receiver_id=row.receiver_id, currency=row.currency,
                             now=now, variables={"amount": back}, memo="a receiver's payout, back to the receiver")
        record_event(conn, row.merchant_id, "payout.returned", row.id, payout_object(row), row.notify_url, now)
        self.log.warning("payout.returned", payout_id=row.id, out_payout_no=row.out_payout_no, source=source,
                         to=self.policy.to, fee=self.policy.fee)
        return True

    async def watch(self) -> int:
        """The janitor's turn for succeeded payouts still within the return window: ask the channel whether
        the receiving bank sent one back, each at most every `query_seconds`. Returns how many were asked."""
        now = self.clock.now()
        since = now - timedelta(days=self.policy.watch_days)
        due = await self.db.tx(lambda conn: conn.execute(select(payouts).where(and_(
            payouts.c.status == "succeeded", payouts.c.finished_at >= since, payouts.c.next_query_at <= now))
            .order_by(payouts.c.next_query_at).limit(100)).all())
        asked = 0
        for row in due:
            if not await self.db.tx(lambda conn, r=row: self._lease(conn, r, now)):
                continue   # another process asks it
            asked += 1
            try:
                await self.ask(row)
            except Exception as exc:  # noqa: BLE001  one payout's trouble must not stop the others' questions
                self.log.warning("payout.return_query_failed", payout_id=row.id, error=type(exc).__name__,
                                 detail=str(exc)[:200])
        return asked

    def _lease(self, conn: Connection, row: Row, now: datetime) -> bool:
        """Claim a succeeded payout's next question (one process asks it): a conditional update."""
        return bool(conn.execute(update(payouts).where(and_(
            payouts.c.id == row.id, payouts.c.status == "succeeded", payouts.c.next_query_at == row.next_query_at))
            .values(next_query_at=now + timedelta(seconds=self.policy.query_seconds))).rowcount)

    async def ask(self, row: Row) -> bool:
        """Ask the channel about a succeeded payout; a return it reports is applied (once)."""
        account = self.host.account(row.channel_account)
        if not account.supports(Capability.PAYOUT):
            return False
        result = await self.calls.payout(account, "query_payout",
                                         lambda: account.channel.query_payout(row.out_payout_no), row.out_payout_no)
        if result.outcome is Outcome.FAILED:   # not applied: the statement of the day it came back says
            self.log.warning("payout.failed_after_success", payout_id=row.id, out_payout_no=row.out_payout_no,
                             channel_account=row.channel_account, code=result.error_code)
        if result.outcome is not Outcome.RETURNED:
            return False
        return await self.db.tx(lambda conn: self.returned(conn, row.id, "query", result.error_code,
                                                           result.error_message))
