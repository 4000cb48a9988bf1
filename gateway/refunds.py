"""Refunds as an operation kind (gateway/operations.py): how the janitor asks about them, how a
callback ends them, and which of them people must look at."""
from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import Connection, Row, and_, or_, select

from gateway.channel import ChannelEvent
from gateway.models import Attempt, Payment, Refund
from gateway.operations import OperationKind, Services
from gateway.payments import PaymentService
from gateway.resources import refund_object

refunds = Refund.__table__
attempts = Attempt.__table__
payments = Payment.__table__


class RefundKind(OperationKind):
    name = "refund"
    table = refunds
    reference = "out_refund_no"
    templates = ("refund.requested", "refund.succeeded", "refund.failed")
    event_kind = "refund"
    stuck_statuses: ClassVar[tuple[str, ...]] = ("processing",)

    def __init__(self, payments_service: PaymentService) -> None:
        self.payments = payments_service
        self.db = payments_service.db

    @classmethod
    def make(cls, services: Services) -> RefundKind:
        return cls(services.payments)

    async def sync(self, row: Row) -> None:
        trade_no = await self.db.tx(lambda conn: conn.execute(
            select(attempts.c.out_trade_no).where(attempts.c.id == row.attempt_id)).scalar_one())
        if row.submitted:
            await self.payments.sync_refund(row, trade_no)
        else:  # one paymux started itself (a duplicate payment's): send it first
            total = await self.db.tx(lambda conn: conn.execute(
                select(payments.c.amount).where(payments.c.id == row.payment_id)).scalar_one())
            await self.payments.submit_refund(row, trade_no, total)

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        return self.payments.apply_event(conn, account_id, event)

    def render(self, row: Row) -> dict[str, Any]:
        return refund_object(row)

    @classmethod
    def stuck(cls, conn: Connection) -> list[dict[str, Any]]:
        """Refunds no answer settled; a duplicate payment's refund the channel refused (that money is still
        owed to the customer); and a refund the channel holds for a person (WeChat Pay ABNORMAL), from the
        moment it said so."""
        found = []
        for r in conn.execute(select(refunds).where(or_(
                and_(refunds.c.exception_at.is_not(None), or_(
                    refunds.c.status == "processing",
                    and_(refunds.c.kind == "duplicate", refunds.c.status == "failed"))),
                and_(refunds.c.status == "processing", refunds.c.attention_code.is_not(None))))):
            held = r.attention_code and r.status == "processing"
            found.append({"kind": "refund", "id": r.id, "out_trade_no": r.out_refund_no,
                          "channel_account": r.channel_account, "merchant_id": r.merchant_id, "amount": r.amount,
                          "status": f"{r.status}: {r.attention_code}" if held else r.status, "queries": r.queries,
                          "since": (r.attention_at if held else r.exception_at).isoformat()})
        return found
