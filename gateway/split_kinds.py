"""Splits and split returns as operation kinds (gateway/operations.py): what the channel is sent, and
what an end books. Both are sent under one number, asked about, sent again under it when the channel
never heard of them; a refusal counts only once a query finds no record (ResentOperation).

Money: `split.succeeded` passes the reserved amount to the receiver's in-transit; `split.failed`
reverses the request and gives the payment its room (and frozen share) back; `split.returned` moves a
return from the receiver's in-transit back to the merchant's (`split.channel_returned`: from channel clearing,
once the channel's statement of splits said it paid the receiver: gateway/split_recon.py)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Awaitable

from sqlalchemy import Connection, Row, select, update

from gateway.channel import Channel, ChannelEvent, Outcome, SplitRequest, SplitResult
from gateway.channel import SplitReturn as SplitReturnRequest
from gateway.models import Payment, Receiver, Split, SplitReturn
from gateway.notifier import record_event
from gateway.operations import OperationCore, ResentOperation, Services
from gateway.payment_rows import give_back_frozen, paid_trade_no
from gateway.receivers import receiver_identity
from gateway.resources import iso, split_object
from gateway.secretbox import SecretBox
from gateway.split_releases import release_if_done

payments = Payment.__table__
receivers = Receiver.__table__
splits = Split.__table__
returns = SplitReturn.__table__


def _notify_url(conn: Connection, payment_id: str) -> str | None:
    return conn.execute(select(payments.c.notify_url).where(payments.c.id == payment_id)).scalar()


class SplitKind(ResentOperation):
    name = "split"
    table = splits
    reference = "out_split_no"
    templates = ("split.requested", "split.succeeded", "split.failed", "split.channel_paid")
    event_kind = "split"
    send_operation, query_operation = "split", "query_split"
    what = log_prefix = "split"
    channel_id_column = "channel_split_id"
    resend_event = "split.resend"

    def __init__(self, core: OperationCore, box: SecretBox | None) -> None:
        super().__init__(core)
        self.box = box

    @classmethod
    def make(cls, services: Services) -> SplitKind:
        return services.splits.split_kind

    def request(self, conn: Connection, s: Row) -> SplitRequest:
        pay = conn.execute(select(payments.c.channel_transaction_id).where(payments.c.id == s.payment_id)).first()
        r = conn.execute(select(receivers).where(receivers.c.id == s.receiver_id)).first()
        name, account, bindings = receiver_identity(self.box, r)
        return SplitRequest(s.out_split_no, paid_trade_no(conn, s.payment_id), pay.channel_transaction_id, s.amount,
                            s.currency, r.type, bindings.get(s.channel_account, account), name,
                            s.description or "split")

    def send(self, channel: Channel, request: SplitRequest) -> Awaitable[SplitResult]:
        return channel.split(request)

    def query(self, channel: Channel, request: SplitRequest) -> Awaitable[SplitResult]:
        return channel.query_split(request)

    def event_reference(self, event: ChannelEvent) -> str | None:
        return event.out_split_no

    def ended(self, conn: Connection, s: Row, result: SplitResult, source: str, now: datetime) -> None:
        if result.outcome is Outcome.SUCCEEDED:
            self.booker.split_succeeded(conn, s.id, s.merchant_id, s.receiver_id, s.currency, s.amount, now)
        else:
            give_back_frozen(conn, self.booker, s.payment_id, f"split:{s.id}:split.requested", now)
            self.booker.split_failed(conn, s.id, now)
            conn.execute(update(payments).where(payments.c.id == s.payment_id).values(
                split_amount=payments.c.split_amount - s.amount, updated_at=now))
        record_event(conn, s.merchant_id, f"split.{result.outcome.value}", s.id, split_object(s),
                     _notify_url(conn, s.payment_id), now)
        self.log.info("split.state_changed", split_id=s.id, payment_id=s.payment_id, to_status=s.status, source=source)
        release_if_done(conn, s.payment_id, now)

    def render(self, row: Row) -> dict[str, Any]:
        return split_object(row)


class SplitReturnKind(ResentOperation):
    name = "split_return"
    table = returns
    reference = "out_return_no"
    templates = ("split.returned", "split.channel_returned")
    send_operation, query_operation = "return_split", "query_split_return"
    what, log_prefix = "return", "split"
    channel_id_column = "channel_return_id"
    resend_event = "split.return_resend"

    def __init__(self, core: OperationCore, split_kind: SplitKind) -> None:
        super().__init__(core)
        self.split_kind = split_kind

    @classmethod
    def make(cls, services: Services) -> SplitReturnKind:
        return services.splits.return_kind

    def request(self, conn: Connection, r: Row) -> SplitReturnRequest:
        s = conn.execute(select(splits).where(splits.c.id == r.split_id)).first()
        split = self.split_kind.request(conn, s)
        return SplitReturnRequest(r.out_return_no, s.out_split_no, split.out_trade_no, split.channel_transaction_id,
                                  s.channel_split_id, r.amount, r.currency, split.receiver_type,
                                  split.receiver_account, f"refund {r.for_refund_no}"[:80])

    def send(self, channel: Channel, request: SplitReturnRequest) -> Awaitable[SplitResult]:
        return channel.return_split(request)

    def query(self, channel: Channel, request: SplitReturnRequest) -> Awaitable[SplitResult]:
        return channel.query_split_return(request)

    def ended(self, conn: Connection, r: Row, result: SplitResult, source: str, now: datetime) -> None:
        s = conn.execute(select(splits).where(splits.c.id == r.split_id)).first()
        if result.outcome is Outcome.SUCCEEDED:
            if s.channel_paid_on is not None:   # the channel had paid the receiver (its statement said so)
                self.booker.book(conn, "split.channel_returned", f"split_return:{r.id}", merchant_id=r.merchant_id,
                                 channel_account=r.channel_account, currency=r.currency,
                                 variables={"amount": r.amount}, now=now)
            else:
                self.booker.split_returned(conn, r.id, r.merchant_id, s.receiver_id, r.currency, r.amount, now)
            conn.execute(update(payments).where(payments.c.id == r.payment_id).values(
                split_amount=payments.c.split_amount - r.amount, updated_at=now))
        else:
            conn.execute(update(splits).where(splits.c.id == s.id).values(
                returned_amount=splits.c.returned_amount - r.amount, updated_at=now))
        event = "split.returned" if result.outcome is Outcome.SUCCEEDED else "split.return_failed"
        record_event(conn, r.merchant_id, event, s.id, split_object(
            conn.execute(select(splits).where(splits.c.id == s.id)).first()), _notify_url(conn, r.payment_id), now)
        self.log.info("split.return_state_changed", return_id=r.id, split_id=s.id, to_status=r.status, source=source)
        release_if_done(conn, r.payment_id, now)

    def log_fields(self, row: Row) -> dict[str, Any]:
        return {"return_id": row.id, "out_return_no": row.out_return_no}

    def render(self, row: Row) -> dict[str, Any]:
        return {"id": row.id, "object": "split_return", "split_id": row.split_id, "payment_id": row.payment_id,
                "status": row.status, "amount": row.amount, "currency": row.currency,
                "out_return_no": row.out_return_no, "for_refund_no": row.for_refund_no,
                "failure": {"code": row.failure_code, "message": row.failure_message} if row.failure_code else None,
                "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}
