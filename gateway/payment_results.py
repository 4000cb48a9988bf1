"""What a channel's word does to a payment: believed only if it fits the order, applied once to the
attempt and its payment (a conditional UPDATE), booked and announced in the same transaction; a
second payment of one order is refunded. Used by the payment service's calls and by callbacks."""
from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, insert, select, update

from gateway import discounts
from gateway.channel import ChannelEvent, Outcome, PaymentResult
from gateway.ids import out_trade_no, public_id
from gateway.models import Attempt, Payment, Refund
from gateway.notifier import record_event
from gateway.operations import OperationCore
from gateway.payment_rows import (CALLBACK_LOOKUP, OPEN_ATTEMPT, OPEN_OR_ENDED, Rendered, current_attempt,
                                  move_attempt, move_attempt_and_payment, move_payment_returning, payment,
                                  payment_facts, render_payment, render_refund)
from gateway.resources import payment_object
from gateway.splits import SplitService
from ledger import driver

payments = Payment.__table__
attempts = Attempt.__table__
refunds = Refund.__table__


class MovedAttempt(NamedTuple):
    payment_id: str
    channel_account: str


class PaymentResults:
    def __init__(self, core: OperationCore, splits: SplitService) -> None:
        self.clock, self.log, self.booker = core.clock, core.log, core.booker
        self.splits = splits

    def believable(self, p: Row, result: PaymentResult, source: str) -> bool:
        """A success is applied only if what the channel says was paid fits the order: its amount,
        currency, and discounts that add up (gateway/discounts.py). Otherwise it is logged for a person."""
        if (result.amount is None or result.amount == p.amount) and \
                (result.currency is None or result.currency == p.currency):
            why = discounts.problem(p.amount, result)
            if why is None:
                return True
        else:
            why = f"the channel says {result.amount} {result.currency} was paid"
        self.log.error("channel.amount_mismatch", payment_id=p.id, source=source, channel_amount=result.amount,
                       detail=why)
        return False

    def apply(self, conn: Connection, attempt_id: str, result: PaymentResult, source: str,
              attempt_only: bool = False, found: Row | None = None) -> bool:
        """Move an attempt and its payment per a channel result. True if the payment changed state.
        attempt_only: a close that retires one attempt for another leaves the payment processing
        (a success still moves it: money taken always counts). found: the payment as CALLBACK_LOOKUP
        read it, if the caller has it.

        A success is booked last: its figures (fee, what the channel kept) are worked out first and
        written with the state change, so that the ledger's rows are locked by the transaction's last
        statement of its own (payment_rows, ledger.slots)."""
        now = self.clock.now()
        outcome = result.outcome
        values: dict[str, Any] = {"updated_at": now}
        if result.action is not None:
            values["action"] = dict(result.action)
        if result.channel_transaction_id:
            values["channel_transaction_id"] = result.channel_transaction_id
        if result.error_code:
            values["error_code"], values["error_message"] = result.error_code, (result.error_message or "")[:500]

        values.update(status=outcome.value, b_attempt_id=attempt_id)
        if outcome in (Outcome.PENDING, Outcome.UNKNOWN):
            conn.execute(move_attempt(OPEN_ATTEMPT), values)
            return False

        # A verified success is money taken: it wins over a local close or failure (a late success).
        allowed = OPEN_OR_ENDED if outcome is Outcome.SUCCEEDED else OPEN_ATTEMPT
        # A callback's success on PostgreSQL moves the attempt and the payment in one statement: the payment
        # is known from the lookup, and so are the success's figures, before either moves.
        together = (outcome is Outcome.SUCCEEDED and found is not None and found.attempt_id == attempt_id
                    and conn.dialect.name == "postgresql")
        if not together:
            attempt = conn.execute(move_attempt(allowed, returning=True), values).first()
            if attempt is None or (attempt_only and outcome is not Outcome.SUCCEEDED):
                return False
            if outcome is not Outcome.SUCCEEDED and current_attempt(conn, attempt.payment_id).id != attempt_id:
                return False   # an attempt left behind (failover, new attempt) ends alone; the payment goes on
        pay_values: dict[str, Any] = {"status": outcome.value, "updated_at": now}
        from_states: tuple[str, ...] = ("processing",)
        figures = None
        if outcome is Outcome.SUCCEEDED:
            pay_values.update(paid_at=now, channel_transaction_id=result.channel_transaction_id,
                              failure_code=None, failure_message=None)
            from_states = ("processing", "closed", "failed")
        elif outcome is Outcome.FAILED:
            pay_values.update(failure_code=result.error_code or "channel_declined",
                              failure_message=(result.error_message or "The channel declined the payment")[:500])
        p = found if together or (found is not None and found.id == attempt.payment_id) \
            else payment(conn, attempt.payment_id)
        if outcome is Outcome.SUCCEEDED:
            figures = self.booker.success_figures(payment_facts(p), discounts.facts(result.discounts), conn)
            if not figures.campaigns:   # known before booking: written with the state change
                pay_values.update(fee_amount=figures.fee, fee_rule=figures.fee_rule, discount_amount=figures.discount,
                                  discounts=discounts.stored(result.discounts, figures))
        if together:
            attempt_keys = tuple(k for k in values if k != "b_attempt_id")
            both = driver.first(conn, move_attempt_and_payment(attempt_keys, allowed, tuple(pay_values), from_states), {
                "b_attempt_id": attempt_id, **{f"a_{k}": values[k] for k in attempt_keys},
                **{f"p_{k}": v for k, v in pay_values.items()}})
            if both is None:
                return False
            attempt = MovedAttempt(both.a_payment_id, both.a_channel_account)
            moved = both if both.id is not None else None
        else:
            moved = conn.execute(move_payment_returning(from_states),
                                 {**pay_values, "b_payment_id": attempt.payment_id}).first()
        if moved is None:
            now_is = payment(conn, attempt.payment_id)   # as committed by whoever moved it first
            if outcome is Outcome.SUCCEEDED and now_is.status == "succeeded":
                self._refund_duplicate(conn, attempt_id, now_is, now, result)
            return False
        # Booked in the same transaction as the state change: one never exists without the other. Last,
        # unless a campaign's budget decides what is paid back (read under lock while booking), or splits
        # waiting for this payment take from what it brings.
        last = figures is not None and not figures.campaigns and not p.splittable
        if figures is not None and not last:
            booking = self.booker.payment_succeeded(conn, payment_facts(p), now, discounts.facts(result.discounts),
                                                    figures=figures)
            if figures.campaigns:
                conn.execute(update(payments).where(payments.c.id == p.id).values(
                    fee_amount=booking.fee, fee_rule=booking.fee_rule, discount_amount=booking.discount,
                    discounts=discounts.stored(result.discounts, booking)))
        if p.splittable:   # only a payment made to be split can have splits waiting
            self.splits.payment_ended(conn, p.id, attempt.channel_account, outcome, now)
        # The merchant's notification too: the outbox row commits with the change it announces.
        rendered = (render_payment(conn, p.id) if found is None or (figures is not None and figures.campaigns)
                    else payment_object(Rendered(moved, found.attempt_out_trade_no)))
        record_event(conn, p.merchant_id, f"payment.{outcome.value}", p.id, rendered,
                     p.notify_url or getattr(found, "merchant_notify_url", None), now, look_up=found is None,
                     at_commit=True)
        if last:   # the entry's result is not read: it goes with the COMMIT too (ledger.driver.at_commit)
            self.booker.payment_succeeded(conn, payment_facts(p), now, discounts.facts(result.discounts),
                                          at_commit=True, figures=figures)
        self.log.info("payment.state_changed", payment_id=attempt.payment_id, attempt_id=attempt_id,
                      from_status=p.status, to_status=outcome.value, source=source)
        return True

    def _refund_duplicate(self, conn: Connection, attempt_id: str, p: Row, now: datetime, result: PaymentResult) -> None:
        """Another attempt of this order was paid too: the customer paid twice. Book the money as owed
        back (what the channel pays us for it), and queue a refund of it that the janitor sends."""
        attempt = conn.execute(select(attempts).where(attempts.c.id == attempt_id)).first()
        kept = sum(d.unsettled for d in result.discounts)
        if kept < p.amount:  # else the channel kept all of it: none of our money came in
            self.booker.book(conn, "payment.duplicate_succeeded", f"attempt:{attempt_id}", merchant_id=p.merchant_id,
                             channel_account=attempt.channel_account, currency=p.currency, now=now,
                             variables={"amount": p.amount, "discount": kept}, memo=f"second payment of {p.id}")
        refund_id = public_id("re")
        conn.execute(insert(refunds).values(
            id=refund_id, payment_id=p.id, attempt_id=attempt_id, merchant_id=p.merchant_id,
            merchant_refund_no=f"auto-duplicate-{attempt_id}", out_refund_no=out_trade_no(),
            channel_account=attempt.channel_account, amount=p.amount, currency=p.currency,
            reason="this order was paid twice", status="processing", fee_refund=0, discount_refund=kept,
            kind="duplicate",
            submitted=False, next_query_at=now, queries=0, created_at=now, updated_at=now))
        record_event(conn, p.merchant_id, "payment.duplicate", p.id,
                     {**render_payment(conn, p.id), "duplicate_refund": render_refund(conn, refund_id)},
                     p.notify_url, now)
        self.log.warning("payment.duplicate", payment_id=p.id, attempt_id=attempt_id, refund_id=refund_id)

    def apply_event(self, conn: Connection, account_id: str, event: ChannelEvent) -> str:
        """Apply a verified callback fact about a payment. Returns the outcome recorded for the callback."""
        found = driver.first(conn, CALLBACK_LOOKUP, {"b_out_trade_no": event.out_trade_no, "b_account": account_id})
        if found is None:
            return "unknown_reference"
        result = PaymentResult(event.outcome, channel_transaction_id=event.channel_transaction_id,
                               amount=event.amount, currency=event.currency, discounts=event.discounts,
                               payer_amount=event.payer_amount, settled_amount=event.settled_amount)
        if not self.believable(found, result, "callback"):
            return "mismatch"
        return "applied" if self.apply(conn, found.attempt_id, result, "callback", found=found) else "duplicate"
