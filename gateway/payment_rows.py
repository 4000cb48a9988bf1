"""A payment's rows as every service reads them: loaded for its merchant, rendered with its latest
attempt, its current and its paid attempt, what is left of it, and the share a channel holds frozen
of it. Plain functions over a connection: no service state, no HTTP."""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, Update, bindparam, func, insert, or_, select, true, update

from gateway.db import owned_row
from gateway.models import Attempt, Merchant, Payment, Refund
from gateway.resources import payment_object, refund_object
from ledger.booking import Booker, PaymentFacts

payments = Payment.__table__
attempts = Attempt.__table__
refunds = Refund.__table__
merchants = Merchant.__table__

OPEN_ATTEMPT = ("created", "pending", "unknown")

# Hot-path statements are built once with bind parameters: building a Core statement on every
# call cost more than executing it (measured with bench/api_create.py).
INSERT_PAYMENT = insert(payments)
INSERT_ATTEMPT = insert(attempts)
# The states a row may move from are part of the statement (`status = 'a' OR status = 'b'`), not an
# expanding IN parameter: SQLAlchemy renders an expanding parameter's SQL again on every execution.
OPEN_OR_ENDED = (*OPEN_ATTEMPT, "closed", "failed")   # where a verified success may take an attempt from


@functools.cache
def move_attempt(from_states: tuple[str, ...], returning: bool = False) -> Update:
    """The attempt's conditional UPDATE; with `returning`, saying which payment and account it belongs to
    (one statement, not an UPDATE and a SELECT)."""
    move = update(attempts).where(attempts.c.id == bindparam("b_attempt_id"),
                                  or_(*(attempts.c.status == state for state in from_states)))
    return move.returning(attempts.c.payment_id, attempts.c.channel_account) if returning else move


@functools.cache
def move_payment_returning(from_states: tuple[str, ...]) -> Update:
    """The payment's conditional UPDATE, returning the payment as it now is: what its event announces,
    without reading it again."""
    return (update(payments).where(payments.c.id == bindparam("b_payment_id"),
                                   or_(*(payments.c.status == state for state in from_states)))
            .returning(*payments.c))


@functools.cache
def move_attempt_and_payment(attempt_keys: tuple[str, ...], from_attempt: tuple[str, ...], payment_keys: tuple[str, ...],
                             from_payment: tuple[str, ...]) -> Select:
    """PostgreSQL: the attempt's and its payment's conditional UPDATEs in one statement (two WITH queries,
    one round trip), binds named a_<column> and p_<column>. No row: the attempt did not move. A row whose
    payment columns are NULL: the attempt moved, the payment did not (a_payment_id says which it is)."""
    moved = (update(attempts).where(attempts.c.id == bindparam("b_attempt_id"),
                                    or_(*(attempts.c.status == state for state in from_attempt)))
             .values({k: bindparam(f"a_{k}", type_=attempts.c[k].type) for k in attempt_keys})
             .returning(attempts.c.payment_id, attempts.c.channel_account).cte("a"))
    paid = (update(payments).where(payments.c.id == moved.c.payment_id,
                                   or_(*(payments.c.status == state for state in from_payment)))
            .values({k: bindparam(f"p_{k}", type_=payments.c[k].type) for k in payment_keys})
            .returning(*payments.c).cte("p"))
    return (select(moved.c.payment_id.label("a_payment_id"), moved.c.channel_account.label("a_channel_account"), paid)
            .select_from(moved.outerjoin(paid, true())))


_LATEST_ATTEMPT = (select(attempts.c.action, attempts.c.out_trade_no)
                   .where(attempts.c.payment_id == bindparam("b_payment_id"))
                   .order_by(attempts.c.created_at.desc(), attempts.c.id.desc()).limit(1).subquery())
RENDER_PAYMENT = (select(payments, _LATEST_ATTEMPT.c.action.label("attempt_action"),
                         _LATEST_ATTEMPT.c.out_trade_no.label("attempt_out_trade_no"))
                  .select_from(payments.outerjoin(_LATEST_ATTEMPT, true()))
                  .where(payments.c.id == bindparam("b_payment_id")))

_attempt = attempts.alias("latest")
_LATEST_TRADE_NO = (select(_attempt.c.out_trade_no).where(_attempt.c.payment_id == payments.c.id)
                    .order_by(_attempt.c.created_at.desc(), _attempt.c.id.desc()).limit(1).scalar_subquery())
# What a callback about an attempt needs, in one read: the attempt's id, its payment, the payment's latest
# out-trade-no (its object shows it) and where the merchant's events go if the payment names no URL.
CALLBACK_LOOKUP = (select(payments, attempts.c.id.label("attempt_id"),
                          _LATEST_TRADE_NO.label("attempt_out_trade_no"),
                          merchants.c.notify_url.label("merchant_notify_url"))
                   .select_from(attempts.join(payments, payments.c.id == attempts.c.payment_id)
                                .join(merchants, merchants.c.id == payments.c.merchant_id))
                   .where(attempts.c.out_trade_no == bindparam("b_out_trade_no"),
                          attempts.c.channel_account == bindparam("b_account")))


class Rendered:
    """A payments row as payment_object reads it, when the latest attempt is known from elsewhere."""

    def __init__(self, row: Row, out_trade_no: str | None) -> None:
        self._row, self.attempt_out_trade_no = row, out_trade_no
        self.attempt_action = None      # shown only while processing; an ended payment has none

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


def unclaimed(p: Any) -> Any:
    """What no refund (done or under way) and no split has taken of a payment: one expression, over its
    columns (`payments.c`, in a conditional UPDATE) or over a row (in a message)."""
    return p.amount - p.refunded_amount - p.refund_pending_amount - p.split_amount


def payment_facts(p: Row) -> PaymentFacts:
    return PaymentFacts(p.id, p.merchant_id, p.channel_account, p.amount, p.currency, p.method)


PAYMENT = select(payments).where(payments.c.id == bindparam("b_payment_id"))
REFUND = select(refunds).where(refunds.c.id == bindparam("b_refund_id"))


def payment(conn: Connection, payment_id: str) -> Row:
    return conn.execute(PAYMENT, {"b_payment_id": payment_id}).one()


def load_payment(conn: Connection, merchant_id: str, payment_id: str) -> Row:
    """The merchant's payment, or 404."""
    return owned_row(conn, payments, merchant_id, "payment", payment_id)


def render_payment(conn: Connection, payment_id: str) -> dict:
    """The payment with its latest attempt's action and out-trade-no, in one query."""
    return payment_object(conn.execute(RENDER_PAYMENT, {"b_payment_id": payment_id}).first())


def render_refund(conn: Connection, refund_id: str) -> dict:
    return refund_object(conn.execute(REFUND, {"b_refund_id": refund_id}).first())


def current_attempt(conn: Connection, payment_id: str) -> Row | None:
    return conn.execute(select(attempts).where(attempts.c.payment_id == payment_id)
                        .order_by(attempts.c.created_at.desc(), attempts.c.id.desc()).limit(1)).first()


def paid_trade_no(conn: Connection, payment_id: str) -> str | None:
    """The out-trade-no of the attempt that was paid: what the channel knows the paid order by."""
    return conn.execute(select(attempts.c.out_trade_no).where(
        attempts.c.payment_id == payment_id, attempts.c.status == "succeeded")
        .order_by(attempts.c.updated_at)).scalar()


def take_frozen(conn: Connection, booker: Booker, payment_id: str, key: str, now: datetime) -> None:
    """Lower the payment's frozen share by what the entry `key` took from it."""
    taken = booker.frozen_part(conn, key)
    if taken:
        conn.execute(update(payments).where(payments.c.id == payment_id).values(
            frozen_amount=payments.c.frozen_amount - taken, updated_at=now))


def give_back_frozen(conn: Connection, booker: Booker, payment_id: str, key: str, now: datetime) -> None:
    """A refund or split that failed gives its payment back the frozen share its entry `key` took."""
    taken = booker.frozen_part(conn, key)
    if taken:
        conn.execute(update(payments).where(payments.c.id == payment_id).values(
            frozen_amount=payments.c.frozen_amount + taken, updated_at=now))


def refunded_before(conn: Connection, payment_id: str) -> tuple[int, int]:
    """What this payment's merchant refunds that have not failed took back through the channel (less
    their share of a kept discount), and the fee they gave back."""
    taken, fee = conn.execute(select(
        func.coalesce(func.sum(refunds.c.amount - refunds.c.discount_refund), 0),
        func.coalesce(func.sum(refunds.c.fee_refund), 0)).where(
        refunds.c.payment_id == payment_id, refunds.c.status != "failed", refunds.c.kind == "merchant")).one()
    return int(taken), int(fee)   # PostgreSQL sums bigints as numeric
