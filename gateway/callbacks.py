"""Channel callbacks: verified by their plugin, each fact applied once by whoever it ends (an operation
kind by its ChannelEvent.kind, else the payment), every callback recorded with what became of it (the
body redacted), and the channel answered as it expects."""
from __future__ import annotations

from typing import Callable

from sqlalchemy import Connection
from structlog.typing import FilteringBoundLogger

from gateway.channel import Acknowledgement, ChannelEvent, InboundNotification, NotificationRejected, unstorable
from gateway.clock import Clock
from gateway.db import Database
from gateway.metrics import Metrics
from gateway.models import ChannelCallback
from gateway.operations import Operations
from gateway.payment_results import PaymentResults
from gateway.plugins import ChannelAccount
from gateway.redact import redacted_body
from ledger import driver

callbacks = ChannelCallback.__table__
# Prebuilt and sent on the driver's cursor (ledger.driver), its values converted by their columns' types:
# SQLAlchemy's execution layer cost more than the INSERT itself (one per callback).
_RECORD_CALLBACK = ("INSERT INTO channel_callbacks (channel_account, received_at, verified, outcome, detail, reference, "
                    "body) VALUES (:channel_account, :received_at, :verified, :outcome, :detail, :reference, :body)")


def record_callback(conn: Connection, row: dict) -> None:
    """Keep one callback's record (`reference` and `body` may be left out): the last write of its
    transaction, sent with its COMMIT (ledger.driver.at_commit)."""
    driver.at_commit(conn, driver.in_style(_RECORD_CALLBACK, conn.dialect.name),
                     driver.bound(conn, callbacks, {"reference": None, "body": None, **row}))


class Callbacks:
    def __init__(self, db: Database, clock: Clock, log: FilteringBoundLogger, metrics: Metrics,
                 operations: Operations, payments: PaymentResults) -> None:
        self.db, self.clock, self.log, self.metrics = db, clock, log, metrics
        self.operations, self.payments = operations, payments

    async def handle(self, account: ChannelAccount, inbound: InboundNotification) -> Acknowledgement:
        """Verify through the plugin, apply each event once, record the callback, answer as the channel expects."""
        channel = account.channel
        now = self.clock.now()
        try:
            try:
                events = await channel.parse_notification(inbound)
            except NotificationRejected:
                raise
            except Exception as exc:  # noqa: BLE001  a plugin that cannot read a callback has not verified it
                self.log.error("callback.unreadable", channel_account=account.id, error=type(exc).__name__,
                               detail=str(exc)[:200])
                raise NotificationRejected("unreadable", f"the plugin could not read it ({type(exc).__name__})") \
                    from None
            if any(unstorable(event) for event in events):
                raise NotificationRejected("malformed_body", "the callback holds text no record can keep "
                                                             "(a NUL or a lone surrogate)")
        except NotificationRejected as exc:
            self.log.warning("callback.rejected", channel_account=account.id, reason=exc.reason)
            self.metrics.callback_rejections.labels(account.id, exc.reason).inc()
            refused = {"channel_account": account.id, "received_at": now, "verified": False, "outcome": "rejected",
                       "detail": f"{exc.reason}: {exc}"[:500]}
            await self.db.tx(lambda conn: record_callback(conn, refused))
            return channel.acknowledge(False, str(exc))

        # Kept for operators as the console shows it: the payer's and receiver's identifiers never in the clear.
        kept_body = redacted_body(inbound.body).encode()

        def apply(conn) -> list[str]:  # noqa: ANN001
            outcomes = []
            for event in events:
                outcome = self.applier(event.kind)(conn, account.id, event)
                outcomes.append(outcome)
                record_callback(conn, {
                    "channel_account": account.id, "received_at": now, "verified": True, "outcome": outcome,
                    "detail": f"{event.kind} {event.outcome.value}",
                    "reference": event.out_split_no or event.out_refund_no or event.out_trade_no, "body": kept_body})
            return outcomes

        outcomes = await self.db.tx(apply)
        if any(outcome != "applied" for outcome in outcomes):
            # An applied fact is logged by the change it made (payment.state_changed, refund.state_changed…),
            # and every callback's record is kept (channel_callbacks): a line of its own only for the rest.
            self.log.info("callback.processed", channel_account=account.id, outcomes=",".join(outcomes))
        if "mismatch" in outcomes:
            # Amount or currency differs from our attempt: refuse, so the channel keeps the evidence coming
            # while an operator looks; nothing was applied for that event.
            return channel.acknowledge(False, "amount or currency does not match the order")
        return channel.acknowledge(True)

    def applier(self, kind: str) -> Callable[[Connection, str, ChannelEvent], str]:
        """Who applies a verified callback fact of this ChannelEvent.kind: the operation kind it ends, or
        the payments."""
        operation = self.operations.for_event(kind)
        return operation.apply_event if operation is not None else self.payments.apply_event
